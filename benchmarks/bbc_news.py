"""BBC News topic accuracy: MiniLM phase 1 only, MiniLM two-phase, and TF-IDF + logistic regression.

One two-phase run gives both MiniLM rows: the phase-1-only row evaluates the
run's own checkpoint taken at the end of phase 1 (the model a phase-1-only run
with the same seed would export), and its time is the run's time minus phase 2.

All three use the same seeded, stratified 70/15/15 split of the 2,225 articles
(the split `recipes/bbc_news_minilm.yaml` makes), and each reports test
accuracy, wall time and the CPU time of this process (all threads; on a
machine shared with other jobs, CPU time / cores is what the wall time would
be on an idle machine). Prints a Markdown table for `benchmarks/RESULTS.md`.

    nice -n 10 .venv/bin/python benchmarks/bbc_news.py [--recipe recipes/bbc_news_minilm.yaml] [--set key=value ...]
"""

import argparse
import dataclasses
import os
import tempfile
import time

from tfx_transfer.data.text import read_text_splits
from tfx_transfer.evaluate import classification_report, predict_probabilities
from tfx_transfer.pipeline import prepare, train
from tfx_transfer.recipe import load_recipe


class Timer:
    """Wall and process CPU seconds of a `with` block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def tfidf_baseline(recipe) -> tuple[float, str]:
    """Test accuracy of TF-IDF + logistic regression on the recipe's split (see `tfidf_logistic_regression`)."""
    return tfidf_logistic_regression(read_text_splits(recipe).splits)


def tfidf_logistic_regression(splits) -> tuple[float, str]:
    """Test accuracy of TF-IDF + logistic regression, its settings chosen on the validation split.

    `splits`: `{"train"|"validation"|"test": LabelledTexts}`.
    Grid: word unigrams or 1-2 grams (sublinear tf, min_df 2) x C in {1, 10, 100}.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    best = None
    for ngrams in ((1, 1), (1, 2)):
        vectorizer = TfidfVectorizer(ngram_range=ngrams, sublinear_tf=True, min_df=2)
        train_x = vectorizer.fit_transform(splits["train"].texts)
        for c in (1.0, 10.0, 100.0):
            classifier = LogisticRegression(C=c, max_iter=3000).fit(train_x, splits["train"].labels)

            def accuracy(split):
                texts, y = splits[split].texts, splits[split].labels
                return float((classifier.predict(vectorizer.transform(texts)) == y).mean())

            candidate = (accuracy("validation"), accuracy("test"), f"{ngrams[0]}-{ngrams[1]} grams, C={c:g}")
            if best is None or candidate[0] > best[0]:
                best = candidate
    return best[1], best[2]


def run(recipe, work_dir: str):
    recipe = dataclasses.replace(
        recipe,
        run_dir=os.path.join(work_dir, "two_phase"),
        export=dataclasses.replace(recipe.export, base_dir=os.path.join(work_dir, "exports")),
    )
    return train(recipe).metrics, recipe


def phase_one_accuracy(recipe) -> float:
    """Test accuracy of the full model with the weights checkpointed at the end of phase 1."""
    prepared = prepare(recipe)
    first = recipe.phases[0].name
    prepared.model.load_weights(os.path.join(recipe.resolved_run_dir, "checkpoints", f"{first}.weights.h5"))
    probabilities, labels = predict_probabilities(
        prepared.model, prepared.splits.test, recipe.data.batch_size, recipe.head.kind
    )
    return classification_report(probabilities, labels, prepared.splits.class_names, recipe.head.kind)["accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=os.path.join(os.path.dirname(__file__), "..", "recipes", "bbc_news_minilm.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--work-dir", default=None, help="where runs and exports go (default: a temporary dir)")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.overrides)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bbc_news_bench_")

    rows = []
    with Timer() as timer:
        accuracy, settings = tfidf_baseline(recipe)
    rows.append((f"TF-IDF + logistic regression ({settings}, chosen on validation)", accuracy,
                 f"{timer.wall:.0f}", f"{timer.cpu:.0f}", ""))
    with Timer() as timer:
        metrics, recipe = run(recipe, work_dir)
    length, phases = recipe.backbone.sequence_length, metrics["phases"]
    later = sum(p["seconds"] for p in phases[1:])
    rows.append((
        f"MiniLM-L6, {length} tokens, phase 1 only (frozen, head on cached features)",
        phase_one_accuracy(recipe), f"~{timer.wall - later:.0f}", "", f"{phases[0]['name']} {phases[0]['seconds']:.0f}",
    ))
    rows.append((
        f"MiniLM-L6, {length} tokens, two-phase (fine-tunes {', '.join(phases[-1]['trainable_blocks'])})",
        metrics["test"]["accuracy"], f"{timer.wall:.0f}", f"{timer.cpu:.0f}",
        ", ".join(f"{p['name']} {p['seconds']:.0f}" for p in phases),
    ))

    print(f"\nruns and exports in {work_dir}; load average at the end: {os.getloadavg()[0]:.1f}")
    print("| model | test accuracy | wall time (s) | CPU time (s) | phase seconds |")
    print("|---|---|---|---|---|")
    for name, accuracy, wall, cpu, phase_seconds in rows:
        print(f"| {name} | {accuracy:.4f} | {wall} | {cpu} | {phase_seconds} |")


if __name__ == "__main__":
    main()
