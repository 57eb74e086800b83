"""Plugin tools in chat with the official `openai` Python client, unchanged: the server
offers the installed `calculator` plugin's tool to the sample model, runs the model's call in
the sandbox and asks the model again with the result.

    python openai_plugins.py BASE_URL

The Rust test (tests/it/python_clients.rs) installs the plugin first. Every check raises on
failure, so the script exits non-zero with a traceback naming the first thing that differed.
"""

import json
import sys

import openai

CHAT_MODEL = "gemma3:270m"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main(base_url):
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    question = [{"role": "user", "content": "How many miles are 5 kilometres?"}]

    # The first step must call a tool (the client's tool_choice); the last may not, so the
    # model answers with the tool's result in its prompt. The base model writes long numbers:
    # 128 tokens let its forced call finish.
    completion = client.chat.completions.create(
        model=CHAT_MODEL, messages=question, tool_choice="required", max_tokens=128,
        temperature=0, extra_body={"plugins": {"tools": ["calculator"], "max_steps": 2}})
    calls = completion.model_extra.get("plugin_calls")
    check(calls and len(calls) == 1, f"plugin_calls {calls!r}")
    call = calls[0]
    check((call["step"], call["plugin"], call["tool"]) == (1, "calculator", "convert"), f"{call}")
    check(isinstance(call["arguments"], dict), f"arguments {call['arguments']!r}")
    check(call["duration_ms"] >= 0, f"{call}")
    if "output" in call:
        output = json.loads(call["output"])
        check(output["unit"] == call["arguments"]["to"], f"{call}")
    else:
        # The schema's enums make every unit real; a dimension mismatch is the tool's answer.
        check(call["error"]["code"] == "tool_error", f"{call}")
    choice = completion.choices[0]
    check(choice.message.tool_calls is None, f"the answer still calls tools: {choice.message}")
    check(choice.message.content, f"no answer: {choice.message}")
    check(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason!r}")
    # Two generations: the usage counts both prompts and both replies.
    check(completion.usage.completion_tokens > 1, f"usage {completion.usage}")
    check(completion.usage.total_tokens
          == completion.usage.prompt_tokens + completion.usage.completion_tokens,
          f"usage {completion.usage}")
    print(f"plugin call: {call['arguments']} -> {call.get('output') or call['error']}")
    print(f"answer: {choice.message.content!r}")

    # A plugin that is not installed is named in the error.
    try:
        client.chat.completions.create(model=CHAT_MODEL, messages=question,
                                       extra_body={"plugins": {"tools": ["abacus"]}})
        raise AssertionError("an unknown plugin was accepted")
    except openai.NotFoundError as error:
        check(error.body["param"] == "plugins.tools[0]", f"{error.body}")

    # Streamed: the steps run whole, then the answer comes as chunks, plugin_calls on the
    # last one with a finish reason, and the usage chunk when asked for.
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=question, tool_choice="required", max_tokens=128,
        temperature=0, stream=True, stream_options={"include_usage": True},
        extra_body={"plugins": {"tools": ["calculator.convert"], "max_steps": 2}})
    text, finish, streamed_calls, usage = "", None, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for streamed in chunk.choices:
            text += streamed.delta.content or ""
            if streamed.finish_reason:
                finish = streamed.finish_reason
                streamed_calls = chunk.model_extra.get("plugin_calls")
    check(text, "no streamed answer")
    check(finish in ("stop", "length"), f"finish_reason {finish!r}")
    check(streamed_calls and streamed_calls[0]["tool"] == "convert", f"{streamed_calls!r}")
    check(usage is not None and usage.completion_tokens > 1, f"usage {usage}")
    print(f"streamed answer: {text!r}")
    print("refusals: ok")


if __name__ == "__main__":
    main(sys.argv[1])
