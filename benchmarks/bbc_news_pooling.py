"""Pooling long BBC News articles read in 128-token windows: mean of window embeddings or of window probabilities.

Embeds every 128-token window of every article with the frozen MiniLM
(`bbc_news_context.chunk_embeddings`: windows without overlap, each with its
`[CLS]`/`[SEP]`), then compares, on the recipe's seeded 70/15/15 split with
logistic regression standing in for the head (C chosen on validation):

- embedding pooling: one feature per article, the mean of its windows'
  embeddings; train and predict on articles;
- probability pooling: train on windows (each labelled with its article's
  class), predict every window, average the probabilities per article;

each for at most 1, 2, 4, 8 or all windows per article (the first ones: what
`data.text.max_windows` keeps). Accuracy and log loss are per article. The
window embeddings are saved to `--cache` so a re-run skips the encoder.
Prints a Markdown table for `benchmarks/RESULTS.md`.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/bbc_news_pooling.py --cache /tmp/bbc_windows.npz
"""

import argparse
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from bbc_news_context import SEED, chunk_embeddings
from tfx_transfer.data.splits import stratified_split
from tfx_transfer.data.sources import SkippedReport
from tfx_transfer.data.text import bbc_news_dir, label_ids, read_class_folders

GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
WINDOW_BOUNDS = (1, 2, 4, 8, None)


def window_embeddings(texts, cache):
    """`(embeddings [windows, 384], article index per window, seconds)`, from `cache` when it exists."""
    if cache and os.path.exists(cache):
        saved = np.load(cache)
        return saved["embeddings"], saved["article"], float(saved["seconds"])
    start = time.perf_counter()
    embeddings, article, _ = chunk_embeddings(texts)
    seconds = time.perf_counter() - start
    if cache:
        np.savez(cache, embeddings=embeddings, article=article, seconds=seconds)
    return embeddings, article, seconds


def first_windows(article, bound):
    """Boolean mask of the windows kept when each article keeps at most its first `bound` windows."""
    position = np.arange(len(article)) - np.searchsorted(article, article)
    return np.ones(len(article), bool) if bound is None else position < bound


def mean_per_article(values, article, num_articles):
    total = np.zeros((num_articles, values.shape[1]))
    np.add.at(total, article, values)
    return total / np.bincount(article, minlength=num_articles)[:, None]


def best_on_validation(fit_predict, y, split):
    """`(test accuracy, test log loss, C)` for the C whose article-level validation accuracy is best."""
    _, val, test = split
    best = None
    for c in GRID:
        probabilities = fit_predict(c)
        val_accuracy = float(np.mean(probabilities[val].argmax(1) == y[val]))
        if best is None or val_accuracy > best[0]:
            test_accuracy = float(np.mean(probabilities[test].argmax(1) == y[test]))
            best = (val_accuracy, test_accuracy, log_loss(y[test], probabilities[test], labels=np.unique(y)), c)
    return best[1:]


def embedding_pooling(embeddings, article, y, split):
    features = mean_per_article(embeddings, article, len(y))
    train = split[0]

    def fit_predict(c):
        return LogisticRegression(C=c, max_iter=5000).fit(features[train], y[train]).predict_proba(features)

    return best_on_validation(fit_predict, y, split)


def probability_pooling(embeddings, article, y, split):
    in_train = np.isin(article, split[0])

    def fit_predict(c):
        classifier = LogisticRegression(C=c, max_iter=5000).fit(embeddings[in_train], y[article[in_train]])
        return mean_per_article(classifier.predict_proba(embeddings), article, len(y))

    return best_on_validation(fit_predict, y, split)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default="", help="npz file for the window embeddings (read if present)")
    args = parser.parse_args()
    examples = read_class_folders(bbc_news_dir(), "*.txt", SkippedReport())
    labels, _ = label_ids({"all": examples}, "multiclass", None)
    y = labels["all"]
    split = stratified_split(y, 0.15, 0.15, SEED)
    embeddings, article, seconds = window_embeddings(examples.texts, args.cache)
    windows_per_article = np.bincount(article)
    print(f"{len(y)} articles, {len(embeddings)} windows of 128 tokens (median {np.median(windows_per_article):.0f}, "
          f"max {windows_per_article.max()} per article), embedded in {seconds:.0f} s")
    print("| windows per article (at most) | windows | embedding pooling: test accuracy / log loss (C) "
          "| probability pooling: test accuracy / log loss (C) |")
    print("|---|---|---|---|")
    for bound in WINDOW_BOUNDS:
        kept = first_windows(article, bound)
        rows = [pool(embeddings[kept], article[kept], y, split) for pool in (embedding_pooling, probability_pooling)]
        cells = " | ".join(f"{accuracy:.4f} / {loss:.4f} ({c:g})" for accuracy, loss, c in rows)
        print(f"| {bound or 'all'} | {int(kept.sum())} | {cells} |")


if __name__ == "__main__":
    main()
