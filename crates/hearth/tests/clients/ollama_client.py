"""Drives a running Hearth with the official `ollama` Python client, as an app developer would.

    python ollama_client.py BASE_URL

BASE_URL is the server's root (http://127.0.0.1:PORT). Every check raises on failure, so the
script exits non-zero with a traceback naming the first thing that differed; the Rust test
(tests/it/python_clients.rs) prints that output.
"""

import math
import sys

import ollama

CHAT_MODEL = "gemma3:270m"
EMBEDDING_MODEL = "all-minilm:l6-v2"
# Short greedy generations keep the run to seconds and make the outputs reproducible.
GREEDY = {"temperature": 0, "num_predict": 8}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def cosine(left, right):
    dot = sum(a * b for a, b in zip(left, right))
    return dot / (math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right)))


def main(base_url):
    client = ollama.Client(host=base_url, timeout=60)

    names = sorted(model.model for model in client.list().models)
    check(names == [EMBEDDING_MODEL, CHAT_MODEL], f"list gave {names}")

    shown = client.show(CHAT_MODEL)
    check(shown.details.format == "gguf", f"show details {shown.details}")
    check(shown.details.family == "gemma3", f"show family {shown.details.family!r}")
    check("completion" in (shown.capabilities or []), f"show capabilities {shown.capabilities}")
    check(bool(shown.template), "show gave no chat template")

    messages = [{"role": "user", "content": "Count from 1 to 5: 1, 2,"}]
    chat = client.chat(model=CHAT_MODEL, messages=messages, options=GREEDY)
    text = chat.message.content
    check(chat.done, f"chat not done: {chat}")
    check(chat.message.role == "assistant", f"role {chat.message.role!r}")
    check(bool(text), f"empty chat: {chat}")
    check(0 < chat.eval_count <= 8, f"eval_count {chat.eval_count}")
    print(f"chat: {text!r}")

    parts = list(client.chat(model=CHAT_MODEL, messages=messages, options=GREEDY, stream=True))
    streamed = "".join(part.message.content or "" for part in parts)
    check(streamed == text, f"streamed {streamed!r}, not {text!r}")
    check(parts[-1].done and not any(part.done for part in parts[:-1]), "only the last part is done")
    check(parts[-1].eval_count == chat.eval_count, f"stream eval_count {parts[-1].eval_count}")

    generated = client.generate(model=CHAT_MODEL, prompt="The capital of France is", options=GREEDY)
    check(generated.done and bool(generated.response), f"generate: {generated}")
    print(f"generate: {generated.response!r}")

    sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market fell sharply today.",
    ]
    embedded = client.embed(model=EMBEDDING_MODEL, input=sentences)
    vectors = embedded.embeddings
    check(len(vectors) == 3 and all(len(vector) == 384 for vector in vectors), "three 384-d vectors")
    similar, unrelated = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
    check(similar > unrelated, f"similar sentences at {similar:.3f}, unrelated at {unrelated:.3f}")
    print(f"embed: similar {similar:.3f} > unrelated {unrelated:.3f}")

    # Both models were used above, so both are loaded.
    running = sorted(model.model for model in client.ps().models)
    check(running == [EMBEDDING_MODEL, CHAT_MODEL], f"ps gave {running}")

    try:
        client.chat(model="no-such-model:1", messages=messages, options=GREEDY)
    except ollama.ResponseError as error:
        check(error.status_code == 404, f"unknown model answered {error.status_code}")
        print(f"unknown model: {error.status_code}")
    else:
        raise AssertionError("an unknown model did not raise ollama.ResponseError")

    print("ollama client: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
