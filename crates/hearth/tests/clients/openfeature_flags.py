"""Reads Hearth's feature flags with the official OpenFeature Python SDK and its OFREP
provider, unchanged: typed evaluations, targeting, details with reasons and variants, and the
SDK's own fallback for a flag that does not exist.

    python openfeature_flags.py BASE_URL

Every check raises on failure, so the script exits non-zero with a traceback naming the first
thing that differed; the Rust test (tests/it/python_clients.rs) prints that output.
"""

import sys

import httpx
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main(base_url):
    admin = httpx.Client(base_url=base_url, timeout=30)
    for flag in [
        {"key": "dark-mode", "rules": [{"when": [{"attribute": "beta", "op": "in", "values": [True]}],
                                        "variant": "on"}]},
        {"key": "checkout", "type": "string",
         "variants": {"classic": "classic", "express": "express"}, "default_variant": "classic",
         "rules": [{"when": [{"attribute": "email", "op": "ends_with", "values": ["@acme.com"]}],
                    "variant": "express"}],
         "metadata": {"owner": "payments"}},
        {"key": "max-items", "type": "number", "variants": {"few": 3, "many": 50},
         "default_variant": "few", "split": [{"variant": "many", "weight": 50},
                                             {"variant": "few", "weight": 50}]},
        {"key": "limits", "type": "object", "variants": {"base": {"rpm": 60, "models": ["a"]}},
         "default_variant": "base"},
    ]:
        made = admin.post("/v1/flags", json=flag)
        check(made.status_code == 201, f"define {flag['key']}: {made.status_code} {made.text}")

    api.set_provider(OFREPProvider(base_url=base_url))
    client = api.get_client()

    check(client.get_boolean_value("dark-mode", True) is False, "dark-mode off by default")
    beta = EvaluationContext(targeting_key="user-1", attributes={"beta": True})
    check(client.get_boolean_value("dark-mode", False, beta) is True, "dark-mode on for beta")

    staff = EvaluationContext(targeting_key="user-2", attributes={"email": "ada@acme.com"})
    details = client.get_string_details("checkout", "fallback", staff)
    check(details.value == "express", f"checkout for staff: {details}")
    check(details.reason == Reason.TARGETING_MATCH, f"reason {details.reason}")
    check(details.variant == "express", f"variant {details.variant}")
    check(details.flag_metadata.get("owner") == "payments", f"metadata {details.flag_metadata}")
    other = client.get_string_details("checkout", "fallback", EvaluationContext("user-3"))
    check((other.value, other.reason) == ("classic", Reason.DEFAULT), f"checkout: {other}")

    # A split is sticky per targeting key, and divides users.
    values = [client.get_integer_value("max-items", 0, EvaluationContext(f"user-{n}"))
              for n in range(200)]
    again = [client.get_integer_value("max-items", 0, EvaluationContext(f"user-{n}"))
             for n in range(200)]
    check(values == again, "the same user gets the same variant")
    check(set(values) == {3, 50}, f"both variants served: {set(values)}")
    check(60 < values.count(50) < 140, f"about half get many: {values.count(50)} of 200")
    split = client.get_integer_details("max-items", 0, EvaluationContext("user-1"))
    check(split.reason == Reason.SPLIT, f"split reason {split.reason}")
    # Without a targeting key, a split cannot place the user: the SDK's default, with the error.
    unplaced = client.get_integer_details("max-items", 7)
    check(unplaced.value == 7 and unplaced.error_code == ErrorCode.TARGETING_KEY_MISSING,
          f"no targeting key: {unplaced}")

    limits = client.get_object_value("limits", {})
    check(limits == {"rpm": 60, "models": ["a"]}, f"object flag: {limits}")

    missing = client.get_boolean_details("no-such-flag", True)
    check(missing.value is True, f"missing flag falls back: {missing}")
    check(missing.error_code == ErrorCode.FLAG_NOT_FOUND, f"error code {missing.error_code}")

    # The kill switch.
    switched = admin.patch("/v1/flags/checkout", json={"enabled": False})
    check(switched.status_code == 200, switched.text)
    off = client.get_string_details("checkout", "fallback", staff)
    check((off.value, off.reason) == ("classic", Reason.DISABLED), f"switched off: {off}")
    print("openfeature: boolean, string, integer, object flags, splits and the kill switch")


if __name__ == "__main__":
    main(sys.argv[1])
