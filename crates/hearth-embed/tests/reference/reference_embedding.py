#!/usr/bin/env python3
"""Reference embedding of one fixed sentence, computed without the Rust code under test.

An independent all-MiniLM-L6-v2 forward pass: a hand-written BERT basic tokenizer + WordPiece
over vocab.txt, then the BERT encoder in numpy straight from model.safetensors, mean pooling
and L2 normalization (the sentence-transformers pipeline of this model). It writes
expected.json next to this script; the integration test `reference` compares against it.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy safetensors
    /tmp/venv/bin/python crates/hearth-embed/tests/reference/reference_embedding.py [MODEL_DIR]

MODEL_DIR defaults to $HEARTH_MODEL_CACHE/all-minilm-l6-v2 or ~/.cache/hearth/models/...
(run scripts/fetch-sample-models first). numpy 2.4.6 and safetensors 0.8.0 produced the
committed expected.json.
"""

import json
import math
import os
import sys
import unicodedata

import numpy as np
from safetensors.numpy import load_file

SENTENCE = "Hearth keeps your memories close, warm and private."
FIRST_VALUES = 8


def model_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    cache = os.environ.get("HEARTH_MODEL_CACHE") or os.path.expanduser("~/.cache/hearth/models")
    return os.path.join(cache, "all-minilm-l6-v2")


def is_punctuation(char):
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def basic_tokens(text):
    """Lower-cases, strips accents and splits on whitespace and punctuation (BERT uncased)."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words, current = [], ""
    for char in text:
        if char.isspace():
            if current:
                words.append(current)
            current = ""
        elif is_punctuation(char):
            if current:
                words.append(current)
            words.append(char)
            current = ""
        else:
            current += char
    if current:
        words.append(current)
    return words


def wordpiece(word, vocab):
    """Greedy longest-match-first WordPiece, as BERT's tokenizer does."""
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                pieces.append(vocab[piece])
                break
            end -= 1
        if end == start:
            return [vocab["[UNK]"]]
        start = end
    return pieces


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * weight + bias


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def main():
    directory = model_dir()
    with open(os.path.join(directory, "config.json")) as file:
        config = json.load(file)
    with open(os.path.join(directory, "vocab.txt"), encoding="utf-8") as file:
        vocab = {line.rstrip("\n"): index for index, line in enumerate(file)}
    weights = {name: value.astype(np.float64) for name, value in
               load_file(os.path.join(directory, "model.safetensors")).items()}
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

    def w(name):
        return weights[prefix + name]

    ids = [vocab["[CLS]"]]
    for word in basic_tokens(SENTENCE):
        ids.extend(wordpiece(word, vocab))
    ids.append(vocab["[SEP]"])
    n_tokens = len(ids)

    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    hidden_size = config["hidden_size"]
    head_size = hidden_size // heads

    x = (w("embeddings.word_embeddings.weight")[ids]
         + w("embeddings.position_embeddings.weight")[:n_tokens]
         + w("embeddings.token_type_embeddings.weight")[0])
    x = layer_norm(x, w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"), eps)

    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."

        def linear(inputs, name):
            return inputs @ w(p + name + ".weight").T + w(p + name + ".bias")

        def split_heads(t):
            return t.reshape(n_tokens, heads, head_size).transpose(1, 0, 2)

        q = split_heads(linear(x, "attention.self.query"))
        k = split_heads(linear(x, "attention.self.key"))
        v = split_heads(linear(x, "attention.self.value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head_size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities = scores / scores.sum(-1, keepdims=True)
        context = (probabilities @ v).transpose(1, 0, 2).reshape(n_tokens, hidden_size)
        attention = layer_norm(linear(context, "attention.output.dense") + x,
                               w(p + "attention.output.LayerNorm.weight"),
                               w(p + "attention.output.LayerNorm.bias"), eps)
        intermediate = gelu(linear(attention, "intermediate.dense"))
        x = layer_norm(linear(intermediate, "output.dense") + attention,
                       w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"), eps)

    pooled = x.mean(0)
    embedding = pooled / np.linalg.norm(pooled)

    expected = {
        "sentence": SENTENCE,
        "token_ids": ids,
        "first_values": [round(float(value), 6) for value in embedding[:FIRST_VALUES]],
        "produced_by": "reference_embedding.py (numpy float64 BERT forward)",
    }
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "expected.json")
    with open(out_path, "w") as file:
        json.dump(expected, file, indent=2)
        file.write("\n")
    print(json.dumps(expected, indent=2))


if __name__ == "__main__":
    main()
