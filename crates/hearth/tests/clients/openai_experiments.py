"""An experiment seen from the official `openai` Python client, unchanged: chat requests on a
model that an experiment splits by user, the variant's parameters applied, feedback sent by the
request id every answer carries, and the results read back.

    python openai_experiments.py BASE_URL

Every check raises on failure, so the script exits non-zero with a traceback naming the first
thing that differed; the Rust test (tests/it/python_clients.rs) prints that output.
"""

import sys

import httpx
import openai

CHAT_MODEL = "gemma3:270m"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main(base_url):
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    api = httpx.Client(base_url=base_url, timeout=60)

    # Two arms on the sample model: as asked, and one that stops after 3 tokens.
    experiment = {
        "name": "length",
        "target": {"model": CHAT_MODEL},
        "variants": [{"name": "control", "weight": 1},
                     {"name": "short", "weight": 1, "parameters": {"max_tokens": 3}}],
        "metrics": [{"name": "helpful", "kind": "boolean"}],
    }
    made = api.post("/v1/experiments", json=experiment)
    check(made.status_code == 201, f"define: {made.status_code} {made.text}")
    started = api.post("/v1/experiments/length/start")
    check(started.json()["status"] == "running", started.text)

    lengths = {}
    for user in range(8):
        raw = client.chat.completions.with_raw_response.create(
            model=CHAT_MODEL, user=f"user-{user}", max_tokens=12, temperature=0,
            messages=[{"role": "user", "content": "Count from 1 to 10."}])
        completion = raw.parse()
        tokens = completion.usage.completion_tokens
        lengths.setdefault(tokens <= 3, []).append(user)
        request_id = raw.headers["x-request-id"]
        sent = api.post("/v1/feedback", json={"request_id": request_id, "metric": "helpful",
                                              "value": tokens > 3})
        check(sent.status_code == 201, f"feedback: {sent.status_code} {sent.text}")
        check(sent.json()["variant"] == ("short" if tokens <= 3 else "control"),
              f"feedback joined {sent.json()} for {tokens} tokens")
    check(len(lengths) == 2, f"both arms served someone: {lengths}")

    results = api.get("/v1/experiments/length/results").json()
    units = {row["variant"]: row["units"] for row in results["exposures"]}
    check(sum(units.values()) == 8, f"units {units}")
    completion = next(m for m in results["metrics"] if m["name"] == "completion_tokens")
    means = {row["variant"]: row["mean"] for row in completion["variants"]}
    check(means["short"] <= 3 < means["control"], f"completion tokens {means}")
    helpful = next(m for m in results["metrics"] if m["name"] == "helpful")
    check(helpful["variants"][0]["mean"] == 1.0 and helpful["variants"][1]["mean"] == 0.0,
          f"helpful {helpful}")
    print(f"experiment results: units {units}, completion tokens {means}")


if __name__ == "__main__":
    main(sys.argv[1])
