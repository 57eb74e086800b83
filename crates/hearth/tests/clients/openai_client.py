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

    vector_stores(client)

    print("openai client: all checks passed")


def vector_stores(client):
    """Vector stores: files attached, read in the background, searched, detached, deleted."""
    cats = client.files.create(
        file=("cats.md", b"# Cats\n\nThe cat slept all afternoon on the warm windowsill, purring."),
        purpose="assistants",
    )
    soup = client.files.create(
        file=("soup.txt", b"Simmer the tomatoes with garlic and basil, then blend into a soup."),
        purpose="assistants",
    )
    match = client.files.create(
        file=("final.html", b"<html><body><p>The football team won the final in extra time.</p></body></html>"),
        purpose="assistants",
    )
    store = client.vector_stores.create(
        name="handbook",
        file_ids=[cats.id],
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}},
        metadata={"team": "docs"},
        expires_after={"anchor": "last_active_at", "days": 7},
    )
    check(store.object == "vector_store" and store.id.startswith("vs_"), f"create {store}")
    check(store.file_counts.total == 1 and store.metadata == {"team": "docs"}, f"create {store}")
    check(store.expires_after.days == 7 and store.expires_at is not None, f"expiry {store}")
    # Its collection is the store's to delete: the collections API refuses.
    refused = client._client.delete(f"{client.base_url}collections/{store.id}")
    check(refused.status_code == 409 and "vector store" in refused.text,
          f"deleting the store's collection: {refused.status_code} {refused.text}")
    first = client.vector_stores.files.poll(cats.id, vector_store_id=store.id, poll_interval_ms=100)
    check(first.status == "completed", f"cats.md not read: {first}")
    check(first.chunking_strategy.static.max_chunk_size_tokens == 200, f"chunking {first}")

    batch = client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id, file_ids=[soup.id], poll_interval_ms=100
    )
    check(batch.object == "vector_store.files_batch" and batch.status == "completed", f"batch {batch}")
    check(batch.file_counts.completed == 1, f"batch counts {batch.file_counts}")
    attached = client.vector_stores.files.create_and_poll(
        match.id, vector_store_id=store.id, attributes={"sport": True, "year": 2024}, poll_interval_ms=100
    )
    check(attached.status == "completed" and attached.attributes["sport"] is True, f"attach {attached}")
    done = client.vector_stores.retrieve(store.id)
    check(done.status == "completed" and done.file_counts.completed == 3, f"retrieve {done}")
    check(done.usage_bytes > 0, f"usage_bytes {done.usage_bytes}")

    results = list(client.vector_stores.search(store.id, query="a cat dozing in the sunshine", max_num_results=3))
    check(results and results[0].file_id == cats.id, f"search gave {results}")
    check(results[0].filename == "cats.md" and 0 < results[0].score <= 1, f"search hit {results[0]}")
    check("windowsill" in results[0].content[0].text, f"search content {results[0].content}")
    sport = list(
        client.vector_stores.search(
            store.id,
            query="who won",
            filters={"type": "and", "filters": [
                {"key": "sport", "type": "eq", "value": True},
                {"key": "year", "type": "gte", "value": 2020},
            ]},
        )
    )
    check([hit.file_id for hit in sport] == [match.id], f"filtered search gave {sport}")
    check(sport[0].attributes == {"sport": True, "year": 2024}, f"attributes {sport[0].attributes}")

    content = list(client.vector_stores.files.content(cats.id, vector_store_id=store.id))
    check("purring" in "".join(part.text for part in content), f"content {content}")
    listed = [file.id for file in client.vector_stores.files.list(store.id, filter="completed")]
    check(sorted(listed) == sorted([cats.id, soup.id, match.id]), f"files.list gave {listed}")
    check(store.id in [item.id for item in client.vector_stores.list()], "vector_stores.list")
    renamed = client.vector_stores.update(store.id, name="renamed")
    check(renamed.name == "renamed", f"update {renamed}")

    detached = client.vector_stores.files.delete(soup.id, vector_store_id=store.id)
    check(detached.deleted and detached.object == "vector_store.file.deleted", f"detach {detached}")
    after = list(client.vector_stores.search(store.id, query="tomato soup with basil"))
    check(all(hit.file_id != soup.id for hit in after), f"a detached file was found: {after}")
    try:
        client.vector_stores.create(file_ids=["file-00000000000000000000000000000000"])
    except openai.BadRequestError as error:
        check(error.param == "file_ids[0]", f"error param {error.param!r}")
    else:
        raise AssertionError("an unknown file was attached")
    deleted = client.vector_stores.delete(store.id)
    check(deleted.deleted and deleted.object == "vector_store.deleted", f"delete {deleted}")
    try:
        client.vector_stores.retrieve(store.id)
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("a deleted vector store is still there")
    print(f"vector stores: 3 files read, searched and filtered in {store.id}")


if __name__ == "__main__":
    main(sys.argv[1])
