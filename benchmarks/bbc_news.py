"""BBC News topic accuracy: MiniLM phase 1 only, MiniLM two-phase, and TF-IDF + logistic regression.

All three use the same seeded, stratified 70/15/15 split of the 2,225 articles
(the split `recipes/bbc_news_minilm.yaml` makes), and each reports test
accuracy and wall time. Prints a Markdown table for `benchmarks/RESULTS.md`.

    nice -n 10 .venv/bin/python benchmarks/bbc_news.py [--recipe recipes/bbc_news_minilm.yaml] [--set key=value ...]
"""

import argparse
import dataclasses
import os
import tempfile
import time

from tfx_transfer.data.text import Skipped, bbc_news_dir, encode_labels, read_class_folders, split_examples
from tfx_transfer.pipeline import train
from tfx_transfer.recipe import load_recipe


def tfidf_baseline(recipe) -> tuple[float, float]:
    """Test accuracy and seconds of TF-IDF (word 1-2 grams, sublinear tf) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    parts = {"all": read_class_folders(bbc_news_dir(), recipe.data.text.file_pattern, Skipped())}
    labels, _ = encode_labels(parts, recipe.head.kind, None)
    splits = split_examples(parts, labels, recipe.data, recipe.seed)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    train_x = vectorizer.fit_transform(splits["train"][0])
    classifier = LogisticRegression(C=10.0, max_iter=2000).fit(train_x, splits["train"][1])
    accuracy = float((classifier.predict(vectorizer.transform(splits["test"][0])) == splits["test"][1]).mean())
    return accuracy, time.perf_counter() - start


def run(recipe, name: str, work_dir: str) -> tuple[float, float, dict]:
    recipe = dataclasses.replace(
        recipe,
        run_dir=os.path.join(work_dir, name),
        export=dataclasses.replace(recipe.export, base_dir=os.path.join(work_dir, "exports")),
    )
    start = time.perf_counter()
    result = train(recipe)
    return result.metrics["test"]["accuracy"], time.perf_counter() - start, result.metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=os.path.join(os.path.dirname(__file__), "..", "recipes", "bbc_news_minilm.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--work-dir", default=None, help="where runs and exports go (default: a temporary dir)")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.overrides)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bbc_news_bench_")

    rows = []
    accuracy, seconds = tfidf_baseline(recipe)
    rows.append(("TF-IDF (1-2 grams) + logistic regression", accuracy, seconds))
    phase_one = dataclasses.replace(recipe, phases=recipe.phases[:1])
    accuracy, seconds, _ = run(phase_one, "phase1_only", work_dir)
    rows.append((f"MiniLM-L6 frozen + head (phase 1 only), {recipe.backbone.sequence_length} tokens", accuracy, seconds))
    accuracy, seconds, metrics = run(recipe, "two_phase", work_dir)
    tuned = metrics["phases"][-1]["trainable_blocks"]
    rows.append((f"MiniLM-L6 two-phase (fine-tunes {', '.join(tuned)})", accuracy, seconds))

    print(f"\nruns and exports in {work_dir}")
    print("| model | test accuracy | wall time (s) |")
    print("|---|---|---|")
    for name, accuracy, seconds in rows:
        print(f"| {name} | {accuracy:.4f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
