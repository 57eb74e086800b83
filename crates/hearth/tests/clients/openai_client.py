"""Drives a running Hearth with the official `openai` Python client, as an app developer would.

    python openai_client.py BASE_URL

BASE_URL is the server's root (http://127.0.0.1:PORT). Every check raises on failure, so the
script exits non-zero with a traceback naming the first thing that differed; the Rust test
(tests/it/python_clients.rs) prints that output.
"""

import math
import sys

import openai

CHAT_MODEL = "gemma3:270m"
EMBEDDING_MODEL = "all-minilm:l6-v2"
# Short greedy generations keep the run to seconds and make the outputs reproducible.
GREEDY = {"max_tokens": 8, "temperature": 0}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def cosine(left, right):
    dot = sum(a * b for a, b in zip(left, right))
    return dot / (math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right)))


def main(base_url):
    # No retries: a retried failure would hide the status the server first answered.
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)

    ids = sorted(model.id for model in client.models.list())
    check(ids == [EMBEDDING_MODEL, CHAT_MODEL], f"models.list gave {ids}")
    check(client.models.retrieve(CHAT_MODEL).id == CHAT_MODEL, "models.retrieve")

    messages = [{"role": "user", "content": "Count from 1 to 5: 1, 2,"}]
    chat = client.chat.completions.create(model=CHAT_MODEL, messages=messages, **GREEDY)
    text = chat.choices[0].message.content
    check(chat.object == "chat.completion", f"object {chat.object!r}")
    check(chat.choices[0].message.role == "assistant", f"role {chat.choices[0].message.role!r}")
    check(bool(text), f"empty chat completion: {chat}")
    check(chat.choices[0].finish_reason in ("stop", "length"), f"finish {chat.choices[0].finish_reason!r}")
    check(0 < chat.usage.completion_tokens <= 8, f"usage {chat.usage}")
    print(f"chat: {text!r}")

    # Streaming with usage: the same greedy text, chunk by chunk, then a usage-only chunk.
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **GREEDY,
    )
    pieces, usage, finish_reason = [], None, None
    for chunk in stream:
        check(chunk.object == "chat.completion.chunk", f"chunk object {chunk.object!r}")
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish_reason = choice.finish_reason or finish_reason
        if chunk.usage is not None:
            check(not chunk.choices, f"the usage chunk has choices: {chunk}")
            usage = chunk.usage
    check("".join(pieces) == text, f"streamed {''.join(pieces)!r}, not {text!r}")
    check(finish_reason == chat.choices[0].finish_reason, f"stream finish {finish_reason!r}")
    check(usage is not None, "no usage chunk although include_usage was set")
    check(usage.completion_tokens == chat.usage.completion_tokens, f"stream usage {usage}")
    check(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, f"stream usage {usage}")

    completion = client.completions.create(model=CHAT_MODEL, prompt="The capital of France is", **GREEDY)
    check(completion.object == "text_completion", f"object {completion.object!r}")
    check(bool(completion.choices[0].text), f"empty completion: {completion}")
    print(f"completion: {completion.choices[0].text!r}")

    sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market fell sharply today.",
    ]
    embeddings = client.embeddings.create(model=EMBEDDING_MODEL, input=sentences)
    vectors = [item.embedding for item in sorted(embeddings.data, key=lambda item: item.index)]
    check(len(vectors) == 3 and all(len(vector) == 384 for vector in vectors), "three 384-d vectors")
    similar, unrelated = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
    check(similar > unrelated, f"similar sentences at {similar:.3f}, unrelated at {unrelated:.3f}")
    check(embeddings.usage.prompt_tokens > 0, f"embedding usage {embeddings.usage}")
    print(f"embeddings: similar {similar:.3f} > unrelated {unrelated:.3f}")

    try:
        client.chat.completions.create(model="no-such-model:1", messages=messages, **GREEDY)
    except openai.NotFoundError as error:
        check(error.code == "model_not_found", f"error code {error.code!r}")
        print(f"unknown model: {error.status_code} {error.code}")
    else:
        raise AssertionError("an unknown model did not raise openai.NotFoundError")

    # Files: upload, list, retrieve, download, delete.
    content = b"Hearth keeps its files whole.\nA second line.\n"
    uploaded = client.files.create(file=("notes.txt", content), purpose="assistants")
    check(uploaded.object == "file" and uploaded.id.startswith("file-"), f"upload {uploaded}")
    check(uploaded.bytes == len(content) and uploaded.filename == "notes.txt", f"upload {uploaded}")
    check(uploaded.purpose == "assistants" and uploaded.status == "processed", f"upload {uploaded}")
    second = client.files.create(file=("data.jsonl", b'{"a": 1}\n'), purpose="batch")
    listed = [file.id for file in client.files.list()]
    check(listed == [second.id, uploaded.id], f"files.list gave {listed}, newest first expected")
    only_batch = [file.id for file in client.files.list(purpose="batch")]
    check(only_batch == [second.id], f"files.list(purpose=batch) gave {only_batch}")
    check(client.files.retrieve(uploaded.id).filename == "notes.txt", "files.retrieve")
    check(client.files.content(uploaded.id).content == content, "files.content differs")
    deleted = client.files.delete(uploaded.id)
    check(deleted.deleted and deleted.id == uploaded.id, f"files.delete {deleted}")
    try:
        client.files.retrieve(uploaded.id)
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("a deleted file is still there")
    try:
        client.files.create(file=("x.txt", b"x"), purpose="no-such-purpose")
    except openai.BadRequestError as error:
        check(error.param == "purpose", f"error param {error.param!r}")
    else:
        raise AssertionError("an unknown purpose was accepted")
    print(f"files: uploaded, listed, read back and deleted {uploaded.id}")

    print("openai client: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
