"""Uses a prompt template from the official `openai` Python client, unchanged: the Responses
API's own `prompt` parameter, and chat completions with `prompt` in the body, against the
sample chat model.

    python openai_prompts.py BASE_URL

Every check raises on failure, so the script exits non-zero with a traceback naming the first
thing that differed; the Rust test (tests/it/python_clients.rs) prints that output.
"""

import sys
import time

import httpx
import openai

CHAT_MODEL = "gemma3:270m"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main(base_url):
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    api = httpx.Client(base_url=base_url, timeout=60)

    # Two versions of a template; `production` stays on the first.
    first = {
        "name": "counter",
        "messages": [
            {"role": "system", "content": "Answer with numbers only."},
            {"role": "user", "content": "Count from 1 to {{ upto }}: 1, 2,"},
        ],
        "variables": {"upto": {"type": "integer", "default": 5}},
        "model": CHAT_MODEL,
        "parameters": {"temperature": 0, "max_tokens": 10},
        "labels": ["production"],
    }
    pushed = api.post("/v1/prompts", json=first)
    check(pushed.status_code == 201, f"push: {pushed.status_code} {pushed.text}")
    check(pushed.json()["version"] == 1, pushed.text)
    second = dict(first, labels=[], messages=first["messages"] + [
        {"role": "assistant", "content": "{{ upto }}"}])
    check(api.post("/v1/prompts", json=second).json()["version"] == 2, "second version")

    # The Responses API's own parameter: no model, no input, the template's defaults.
    response = client.responses.create(
        prompt={"id": "counter", "version": "1", "variables": {"upto": 6}})
    check(response.status in ("completed", "incomplete"), f"status {response.status!r}")
    check(bool(response.output_text), f"empty output: {response}")
    check(response.model == CHAT_MODEL, f"model {response.model!r}")
    check(0 < response.usage.output_tokens <= 10, f"the prompt's max_tokens: {response.usage}")
    print(f"responses.create(prompt=...): {response.output_text!r}")

    # Chat completions take the same reference in the body, here by label; the request's own
    # messages come after the template's.
    completion = client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Go on."}],
        extra_body={"prompt": {"id": "counter", "label": "production"}})
    text = completion.choices[0].message.content
    check(bool(text), f"empty chat answer: {completion}")
    check(completion.usage.completion_tokens <= 10, f"usage {completion.usage}")
    print(f"chat.completions.create(prompt=...): {text!r}")

    # A wrong variable is the client's BadRequestError naming it.
    try:
        client.responses.create(prompt={"id": "counter", "variables": {"up_to": 3}})
        raise AssertionError("an unknown variable was accepted")
    except openai.BadRequestError as error:
        check(error.body["param"] == "prompt.variables.up_to", f"param {error.body}")
    try:
        client.responses.create(prompt={"id": "counter", "variables": {"upto": "six"}})
        raise AssertionError("a mistyped variable was accepted")
    except openai.BadRequestError as error:
        check(error.body["param"] == "prompt.variables.upto", f"param {error.body}")
    try:
        client.responses.create(prompt={"id": "no-such-prompt"})
        raise AssertionError("an unknown prompt was accepted")
    except openai.NotFoundError as error:
        check(error.body["param"] == "prompt.id", f"param {error.body}")

    # Usage is kept per prompt version (written in batches: wait for it).
    deadline = time.time() + 10
    while True:
        groups = api.get("/admin/v1/usage", params={"group_by": "prompt"}).json()["data"]
        versions = {(group.get("prompt_id"), group.get("prompt_version")): group["requests"]
                    for group in groups}
        if versions.get(("counter", 1)) == 2 or time.time() > deadline:
            break
        time.sleep(0.2)
    check(versions.get(("counter", 1)) == 2, f"usage per prompt version: {groups}")
    print(f"usage by prompt: {versions}")


if __name__ == "__main__":
    main(sys.argv[1])
