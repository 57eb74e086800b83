"""Drives Hearth's Responses API with the official `openai` Python client, unchanged, against
the sample chat model.

    python openai_responses.py BASE_URL

Every check raises on failure, so the script exits non-zero with a traceback naming the first
thing that differed; the Rust test (tests/it/python_clients.rs) prints that output.
"""

import json
import sys

import openai

CHAT_MODEL = "gemma3:270m"
# Short greedy generations keep the run to seconds and make the outputs reproducible.
GREEDY = {"max_output_tokens": 12, "temperature": 0}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main(base_url):
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)

    # A plain text input, answered whole.
    asked = {"model": CHAT_MODEL, "input": "Count from 1 to 5: 1, 2,",
             "instructions": "Answer with numbers only.", **GREEDY}
    response = client.responses.create(**asked)
    check(response.object == "response", f"object {response.object!r}")
    check(response.id.startswith("resp_"), f"id {response.id!r}")
    check(response.status in ("completed", "incomplete"), f"status {response.status!r}")
    check(response.output[0].type == "message", f"output {response.output}")
    check(bool(response.output_text), f"empty output: {response}")
    check(0 < response.usage.output_tokens <= 12, f"usage {response.usage}")
    check(response.usage.total_tokens
          == response.usage.input_tokens + response.usage.output_tokens, f"{response.usage}")
    print(f"responses.create: {response.output_text!r}")

    # The same request streamed: the typed events the client's helper assembles, and the same
    # greedy text.
    deltas, kinds = [], []
    with client.responses.stream(**asked) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            last = event
        # The helper's final response needs `response.completed`; a response cut by
        # max_output_tokens ends with `response.incomplete`, as OpenAI's do.
        final = stream.get_final_response() if last.type == "response.completed" else last.response
    check(final.status == response.status, f"status {final.status!r} != {response.status!r}")
    check(kinds[0] == "response.created", f"first event {kinds[:3]}")
    check(kinds[-1] in ("response.completed", "response.incomplete"), f"last event {kinds[-3:]}")
    check("".join(deltas) == response.output_text,
          f"streamed {''.join(deltas)!r} != {response.output_text!r}")
    check(final.output_text == response.output_text, f"final {final.output_text!r}")
    check(final.id != response.id, "each response has its own id")
    print(f"responses.stream: {len(deltas)} deltas, {len(kinds)} events")

    # Stored responses: retrieved as answered, their input items listed.
    retrieved = client.responses.retrieve(response.id)
    check(retrieved.output_text == response.output_text, f"retrieved {retrieved}")
    items = client.responses.input_items.list(response.id)
    texts = [part.text for item in items.data for part in item.content]
    check(texts == ["Count from 1 to 5: 1, 2,"], f"input items {items.data}")

    # previous_response_id continues the conversation: the second turn reads the first.
    first = client.responses.create(model=CHAT_MODEL, input="Remember the word pineapple.",
                                    **GREEDY)
    second = client.responses.create(model=CHAT_MODEL, input="Which word did I ask you to remember?",
                                     previous_response_id=first.id, **GREEDY)
    check(second.previous_response_id == first.id, f"previous {second.previous_response_id!r}")
    carried = first.usage.input_tokens + first.usage.output_tokens
    check(second.usage.input_tokens > carried,
          f"the second turn read {second.usage.input_tokens} tokens, the first turn alone is {carried}")
    print(f"continued: {second.output_text!r} ({second.usage.input_tokens} input tokens)")

    # Deleted, it is gone: neither retrievable nor continuable.
    deleted = client.responses.delete(first.id)
    check(deleted is None or getattr(deleted, "deleted", True), f"delete {deleted}")
    for attempt in (lambda: client.responses.retrieve(first.id),
                    lambda: client.responses.create(model=CHAT_MODEL, input="And now?",
                                                    previous_response_id=first.id, **GREEDY)):
        try:
            attempt()
        except openai.NotFoundError:
            pass
        else:
            raise AssertionError("a deleted response was still found")

    # store=false keeps nothing.
    unstored = client.responses.create(store=False, **asked)
    try:
        client.responses.retrieve(unstored.id)
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("a response made with store=false was stored")

    # A function tool: the model must call it; its output continues the conversation.
    weather = {"type": "function", "name": "get_weather", "description": "The weather in a city",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                              "required": ["city"]}}
    called = client.responses.create(model=CHAT_MODEL, input="What is the weather in Paris?",
                                     tools=[weather], tool_choice="required",
                                     max_output_tokens=64, temperature=0)
    call = called.output[0]
    check(call.type == "function_call" and call.name == "get_weather", f"output {called.output}")
    check(isinstance(json.loads(call.arguments)["city"], str), f"arguments {call.arguments!r}")
    answered = client.responses.create(
        model=CHAT_MODEL, previous_response_id=called.id, tools=[weather],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}],
        **GREEDY)
    check(answered.output[0].type == "message" and answered.output_text, f"{answered.output}")
    print(f"tool: {call.arguments} -> {answered.output_text!r}")

    truncation(client)
    file_search(client)
    chat_memory(client, base_url)
    conversation_memory(client, base_url)
    graph_memory(client, base_url)

    # Bad input is a 400 naming the field.
    try:
        client.responses.create(model=CHAT_MODEL, input=[{"role": "robot", "content": "hi"}])
    except openai.BadRequestError as error:
        check(error.param == "input[0].role", f"error param {error.param!r}")
    else:
        raise AssertionError("an unknown role was accepted")
    print("ok")


def chat_memory(client, base_url):
    """Chat completions with Hearth's `memory` field: the question is answered from a collection
    (a fact the model cannot know) and the citations name the passage that was placed."""
    import httpx

    api = httpx.Client(base_url=f"{base_url}/v1", timeout=60)
    created = api.post("/collections", json={"name": "almanac"})
    check(created.status_code in (200, 201), f"collection: {created.status_code} {created.text}")
    stored = api.post("/collections/almanac/documents", json={"documents": [
        {"id": "lighthouse", "text": "The keeper of the Zorvath lighthouse is named Miriel Quandt. "
                                     "She has kept the light since 1987 and feeds two grey cats."},
        {"id": "soup", "text": "Tomato soup with basil is best served hot, with bread on the side."},
    ]})
    check(stored.status_code == 200, f"documents: {stored.status_code} {stored.text}")

    question = [{"role": "user", "content": "Who is the keeper of the Zorvath lighthouse?"}]
    memory = {"memory": {"collections": ["almanac"], "top_k": 2}}
    chat = client.chat.completions.create(model=CHAT_MODEL, messages=question, max_tokens=48,
                                          temperature=0, extra_body=memory)
    text = chat.choices[0].message.content
    citations = chat.model_extra.get("citations")
    print(f"memory: {text!r} citing {citations}")
    check("Quandt" in text or "Miriel" in text, f"the answer did not come from memory: {text!r}")
    check(citations and [c["document_id"] for c in citations] == ["lighthouse"],
          f"citations {citations}")
    check(citations[0]["collection"] == "almanac" and "Zorvath" in citations[0]["text"],
          f"citation {citations[0]}")

    # Streamed, the choice's last chunk carries the citations.
    stream = client.chat.completions.create(model=CHAT_MODEL, messages=question, max_tokens=48,
                                            temperature=0, stream=True, extra_body=memory)
    pieces, streamed = [], None
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
        streamed = (chunk.model_extra or {}).get("citations") or streamed
    check("".join(pieces) == text, f"streamed {''.join(pieces)!r}")
    check(streamed == citations, f"streamed citations {streamed}")

    # Open WebUI's way to attach a collection works the same.
    webui = client.chat.completions.create(
        model=CHAT_MODEL, messages=question, max_tokens=48, temperature=0,
        extra_body={"files": [{"type": "collection", "id": "almanac"}]})
    check(webui.choices[0].message.content == text, f"files gave {webui.choices[0].message.content!r}")

    # Ollama's chat takes the same field; the last line carries the citations.
    ollama = api.post(f"{base_url}/api/chat", json={
        "model": CHAT_MODEL, "messages": question, "stream": False,
        "options": {"temperature": 0, "num_predict": 48}, **memory}).json()
    # (Ollama's sampling defaults differ from OpenAI's, so the text may too.)
    check("Quandt" in ollama["message"]["content"], f"/api/chat gave {ollama}")
    check(ollama["citations"] == citations, f"/api/chat citations {ollama.get('citations')}")

    # A collection the caller does not have is a 404 naming the field.
    try:
        client.chat.completions.create(model=CHAT_MODEL, messages=question, max_tokens=8,
                                       extra_body={"memory": {"collections": ["nowhere"]}})
    except openai.NotFoundError as error:
        check(error.param == "memory.collections", f"error param {error.param!r}")
    else:
        raise AssertionError("a missing collection was searched")


def conversation_memory(client, base_url):
    """`memory.remember`: each exchange is kept in its user's memory and recalled for that user
    only; a user's memory is exported and deleted through /v1/memories/{user}."""
    import httpx

    api = httpx.Client(base_url=f"{base_url}/v1", timeout=60)

    def chat(user, text, stream=False):
        asked = dict(model=CHAT_MODEL, messages=[{"role": "user", "content": text}],
                     max_tokens=24, temperature=0, user=user,
                     extra_body={"memory": {"remember": True}})
        if not stream:
            answer = client.chat.completions.create(**asked)
            return answer.choices[0].message.content, answer.model_extra["retrieval"]
        pieces, retrieval = [], None
        for chunk in client.chat.completions.create(stream=True, **asked):
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
            retrieval = (chunk.model_extra or {}).get("retrieval") or retrieval
        return "".join(pieces), retrieval

    def turns(user):
        exported = api.get(f"/memories/{user}")
        check(exported.status_code == 200, f"export: {exported.status_code} {exported.text}")
        return exported.json()["data"]

    _, first = chat("alice", "Remember this: my cat is called Zorvath.")
    check(first["placed"] == [], f"nothing was remembered yet, but {first}")
    chat("bob", "I repair old bicycles for a living.")
    alice_turns = turns("alice")
    check(len(alice_turns) == 1 and alice_turns[0]["text"].startswith(
        "User: Remember this: my cat is called Zorvath.\nAssistant:"), f"alice: {alice_turns}")

    question = "What is my cat called?"
    text, recalled = chat("alice", question)
    print(f"remember: alice asked {question!r}, got {text!r}, placed {recalled['placed']}")
    check([(p["source"], p["document_id"]) for p in recalled["placed"]]
          == [("conversation", alice_turns[0]["id"])], f"alice recalled {recalled}")
    # Whether the 270M base model then names the cat is its own affair: its greedy text differs
    # between CPUs' kernels (an AVX-512 EPYC answers with a made-up "Sources:" list where a
    # Xeon said "Zorvath"), so the check is what reached its prompt: alice's turn, placed.

    # Bob asks the same, streamed: only Bob's own turns are ever placed.
    text, recalled = chat("bob", question, stream=True)
    bob_ids = {turn["id"] for turn in turns("bob")}
    check(recalled["placed"] and all(p["source"] == "conversation" and p["document_id"] in bob_ids
                                     for p in recalled["placed"]), f"bob recalled {recalled}")
    check("Zorvath" not in text, f"bob was told about alice's cat: {text!r}")
    # The streamed exchange was kept once the stream ended.
    check(len(turns("bob")) == 2, f"bob: {turns('bob')}")

    # Ollama's chat names the user in the memory field.
    ollama = api.post(f"{base_url}/api/chat", json={
        "model": CHAT_MODEL, "messages": [{"role": "user", "content": question}], "stream": False,
        "options": {"temperature": 0, "num_predict": 24},
        "memory": {"remember": True, "user": "alice"}}).json()
    check(any(p["document_id"] == alice_turns[0]["id"] for p in ollama["retrieval"]["placed"]),
          f"/api/chat recalled {ollama.get('retrieval')}")

    # Deleting Alice's memory leaves nothing of hers to recall, and Bob's untouched.
    deleted = api.delete("/memories/alice").json()
    check(deleted == {"object": "memory.deleted", "user": "alice", "deleted": 3}, f"{deleted}")
    _, recalled = chat("alice", question)
    check(recalled["placed"] == [], f"a deleted memory was recalled: {recalled}")
    check(len(turns("bob")) == 2, "bob's memory went with alice's")

    # Without a key issued to a user, the request must say whose memory it is.
    try:
        client.chat.completions.create(model=CHAT_MODEL, max_tokens=4,
                                       messages=[{"role": "user", "content": "Hi"}],
                                       extra_body={"memory": {"remember": True}})
    except openai.BadRequestError as error:
        check(error.param == "memory.user", f"error param {error.param!r}")
    else:
        raise AssertionError("a remembered chat without a user was accepted")


def truncation(client):
    """`truncation: auto` leaves out the oldest items of a conversation longer than the context;
    without it, the request fails naming the problem."""
    filler = " ".join(f"word{i}" for i in range(120))
    long = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"{i}: {filler}"}
            for i in range(16)]
    long.append({"role": "user", "content": "Count from 1 to 5: 1, 2,"})
    try:
        client.responses.create(model=CHAT_MODEL, input=long, **GREEDY)
    except openai.BadRequestError as error:
        check(error.code == "context_length_exceeded", f"error code {error.code!r}")
    else:
        raise AssertionError("a conversation longer than the context was accepted")
    fitted = client.responses.create(model=CHAT_MODEL, input=long, truncation="auto", **GREEDY)
    check(fitted.truncation == "auto" and fitted.output_text, f"{fitted}")
    print(f"truncation: auto answered {fitted.output_text!r} from {fitted.usage.input_tokens} "
          "input tokens")


def graph_memory(client, base_url):
    """`memory.graphs`: a graph's nodes are searched like passages, and a hit's neighbours along
    the chosen relations are placed with it, naming the relation."""
    import httpx

    api = httpx.Client(base_url=f"{base_url}/v1", timeout=60)
    check(api.post("/graphs", json={"name": "family"}).status_code == 201, "graph")
    nodes = api.post("/graphs/family/nodes", json={"nodes": [
        {"id": "miriel", "type": "person", "title": "Miriel Quandt",
         "content": "The keeper of the Zorvath lighthouse."},
        {"id": "tomas", "type": "person", "title": "Tomas Quandt",
         "content": "A fisherman who mends nets."},
        {"id": "soup", "type": "recipe", "title": "Tomato soup", "content": "Serve hot."},
    ]})
    check(nodes.status_code == 200, f"nodes: {nodes.text}")
    relations = api.post("/graphs/family/relations", json={"relations": [
        {"source": "miriel", "type": "married_to", "target": "tomas"}]})
    check(relations.status_code == 200, f"relations: {relations.text}")

    question = [{"role": "user", "content": "Who is the keeper of the Zorvath lighthouse married to?"}]
    chat = client.chat.completions.create(
        model=CHAT_MODEL, messages=question, max_tokens=24, temperature=0,
        extra_body={"memory": {"top_k": 1, "graphs": [
            {"graph": "family", "expand": {"types": ["married_to"], "depth": 1}}]}})
    placed = [(p["source"], p["graph"], p["document_id"]) for p in chat.model_extra["retrieval"]["placed"]]
    print(f"graph memory: {chat.choices[0].message.content!r} placed {placed}")
    check(placed == [("graph", "family", "miriel"), ("graph", "family", "tomas")], f"placed {placed}")

    try:
        client.chat.completions.create(model=CHAT_MODEL, messages=question, max_tokens=4,
                                       extra_body={"memory": {"graphs": [{"graph": "nowhere"}]}})
    except openai.NotFoundError as error:
        check(error.param == "memory.graphs", f"error param {error.param!r}")
    else:
        raise AssertionError("a missing graph was searched")


def file_search(client):
    """The file_search tool over a vector store: Hearth searches, places the passages in the
    prompt as numbered sources, and the answer's annotations cite the file they came from."""
    # A fact the model cannot know, in one file among others.
    secret = client.files.create(file=("lighthouse.md", b"# The Zorvath lighthouse\n\n"
                                       b"The keeper of the Zorvath lighthouse is named Miriel Quandt. "
                                       b"She has kept the light since 1987 and feeds two grey cats."),
                                 purpose="assistants")
    other = client.files.create(file=("soup.md", b"# Soup\n\nTomato soup with basil is best served "
                                      b"hot, with bread on the side."), purpose="assistants")
    store = client.vector_stores.create(name="facts", file_ids=[secret.id, other.id])
    for file in (secret, other):
        done = client.vector_stores.files.poll(file.id, vector_store_id=store.id, poll_interval_ms=100)
        check(done.status == "completed", f"{file.filename} not read: {done}")

    tool = {"type": "file_search", "vector_store_ids": [store.id], "max_num_results": 2}
    question = "Who is the keeper of the Zorvath lighthouse?"
    response = client.responses.create(model=CHAT_MODEL, input=question, tools=[tool],
                                       include=["file_search_call.results"],
                                       max_output_tokens=48, temperature=0)
    call, message = response.output[0], response.output[1]
    check(call.type == "file_search_call" and call.status == "completed", f"output {response.output}")
    check(call.queries == [question], f"queries {call.queries}")
    check(call.results and call.results[0].file_id == secret.id, f"results {call.results}")
    check(call.results[0].filename == "lighthouse.md", f"result {call.results[0]}")
    text = message.content[0].text
    annotations = message.content[0].annotations
    check(annotations, f"no citations in {message}")
    check(all(a.type == "file_citation" for a in annotations), f"annotations {annotations}")
    check([(a.file_id, a.filename) for a in annotations] == [(secret.id, "lighthouse.md")],
          f"the citations name {annotations}, not only the file the answer came from")
    check(all(0 <= a.index <= len(text) for a in annotations), f"indexes {annotations}")
    print(f"file_search: {text!r} citing {[a.filename for a in annotations]}")
    check("Quandt" in text or "Miriel" in text, f"the answer did not come from the file: {text!r}")

    # Streamed: the search's events, then the text, the citations and the same final output.
    kinds = []
    with client.responses.stream(model=CHAT_MODEL, input=question, tools=[tool],
                                 max_output_tokens=48, temperature=0) as stream:
        for event in stream:
            kinds.append(event.type)
            last = event
    final = last.response
    for kind in ("response.file_search_call.searching", "response.file_search_call.completed",
                 "response.output_text.annotation.added"):
        check(kind in kinds, f"no {kind} in {kinds}")
    check(final.output[0].type == "file_search_call" and final.output[0].results is None,
          f"results are only shown when included: {final.output[0]}")
    check(final.output[1].content[0].text == text, f"streamed {final.output[1].content[0].text!r}")

    # Another tenant's store, or none, is a 404 naming the tool.
    try:
        client.responses.create(model=CHAT_MODEL, input=question,
                                tools=[{"type": "file_search", "vector_store_ids": ["vs_missing"]}])
    except openai.NotFoundError as error:
        check(error.param == "tools[0].vector_store_ids", f"error param {error.param!r}")
    else:
        raise AssertionError("a missing vector store was searched")


if __name__ == "__main__":
    main(sys.argv[1])
