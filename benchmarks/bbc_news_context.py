"""How much of a BBC News article the frozen MiniLM needs: its first 128 tokens or all of it.

Embeds every 128-token chunk of every article with the frozen encoder (mean
pooling, XLA), then fits logistic regression on (a) the first chunk's embedding,
what a 128-token recipe sees, and (b) the token-weighted mean of all chunks'
embeddings; TF-IDF + logistic regression for reference. Reports 5-fold
cross-validated accuracy over all articles, and test accuracy on the recipe's
own seeded 70/15/15 split (C chosen on its validation split). Prints a Markdown
table for `benchmarks/RESULTS.md`.

    nice -n 10 .venv/bin/python benchmarks/bbc_news_context.py
"""

import time

import numpy as np
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from tfx_transfer.backbones.packaged import build_packaged
from tfx_transfer.data.splits import stratified_split
from tfx_transfer.data.sources import SkippedReport
from tfx_transfer.data.text import bbc_news_dir, label_ids, read_class_folders

CHUNK = 128
SEED = 42


def chunk_embeddings(texts, batch_size=32):
    """`(embeddings [chunks, 384], article index, real tokens)` for every 128-token chunk of every text."""
    backbone = build_packaged("minilm_l6", sequence_length=CHUNK, pooling="mean")
    tokenizer = backbone.preprocessor.tokenizer
    rows, article = [], []
    for index, ids in enumerate(tokenizer(tf.constant(texts))):
        ids = [int(i) for i in ids]
        for start in range(0, max(1, len(ids)), CHUNK - 2):
            piece = [tokenizer.cls_token_id, *ids[start:start + CHUNK - 2], tokenizer.sep_token_id]
            rows.append(piece + [0] * (CHUNK - len(piece)))
            article.append(index)
    token_ids = np.asarray(rows, np.int32)
    mask = (token_ids != 0).astype(np.int32)
    encode = tf.function(
        lambda t, m: backbone.model({"token_ids": t, "padding_mask": m, "segment_ids": tf.zeros_like(t)}),
        jit_compile=True,
    )
    embeddings = [encode(token_ids[i:i + batch_size], mask[i:i + batch_size]).numpy()
                  for i in range(0, len(token_ids), batch_size)]
    return np.concatenate(embeddings), np.asarray(article), mask.sum(axis=1)


def accuracies(make_classifier, x, y, split, grid):
    """5-fold CV accuracy over all examples, and test accuracy with the grid value best on validation."""
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    train, val, test = split
    best = None
    for value in grid:
        classifier = make_classifier(value).fit(x[train], y[train])
        scores = [float(np.mean(classifier.predict(x[s]) == y[s])) for s in (val, test)]
        if best is None or scores[0] > best[0]:
            best = (*scores, value)
    cv = float(np.mean(cross_val_predict(make_classifier(best[2]), x, y, cv=folds) == y))
    return cv, best[1], best[2]


def main():
    examples = read_class_folders(bbc_news_dir(), "*.txt", SkippedReport())
    labels, _ = label_ids({"all": examples}, "multiclass", None)
    y = labels["all"]
    split = stratified_split(y, 0.15, 0.15, SEED)
    start = time.perf_counter()
    embeddings, article, tokens = chunk_embeddings(examples.texts)
    seconds = time.perf_counter() - start
    first = embeddings[np.r_[0, np.flatnonzero(np.diff(article)) + 1]]
    whole = np.zeros((len(y), embeddings.shape[1]))
    np.add.at(whole, article, embeddings * tokens[:, None])
    whole /= np.bincount(article, weights=tokens)[:, None]

    def logistic(c):
        return LogisticRegression(C=c, max_iter=5000)

    def tfidf(c):
        return make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2), LogisticRegression(C=c, max_iter=5000))

    grid = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    rows = [
        ("frozen MiniLM, first 128 tokens, logistic regression", *accuracies(logistic, first, y, split, grid)),
        ("frozen MiniLM, whole article (mean over 128-token chunks), logistic regression",
         *accuracies(logistic, whole, y, split, grid)),
        ("TF-IDF (unigrams), logistic regression",
         *accuracies(tfidf, np.asarray(examples.texts, dtype=object), y, split, (1.0, 10.0, 100.0))),
    ]
    print(f"{len(y)} articles, {len(embeddings)} chunks of {CHUNK} tokens "
          f"(mean {np.bincount(article, weights=tokens).mean():.0f} tokens per article), embedded in {seconds:.0f} s")
    print("| features | 5-fold CV accuracy (all articles) | test accuracy (recipe split) | C |")
    print("|---|---|---|---|")
    for name, cv, test, c in rows:
        print(f"| {name} | {cv:.4f} | {test:.4f} | {c:g} |")


if __name__ == "__main__":
    main()
