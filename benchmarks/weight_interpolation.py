"""WiSE-FT probe: mixes a run's frozen-phase weights with its fine-tuned weights and scores each mix.

`(1 - a) * frozen + a * fine_tuned` for a grid of `a`, scored on the validation and test splits the
recipe draws (same seed and overrides as the two runs). The frozen-phase model is the `model.keras`
of a run of the recipe with only its first phase. Prints a Markdown table for `benchmarks/RESULTS.md`.

    PYTHONPATH=. .venv/bin/python benchmarks/weight_interpolation.py recipes/text_classifier.yaml \\
        HEAD_RUN/model.keras RUN/model.keras --set data.path=data.csv --set seed=42
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from tfx_transfer.evaluate import classification_report, predict_probabilities  # noqa: E402
from tfx_transfer.pipeline import prepare  # noqa: E402
from tfx_transfer.recipe import load_recipe  # noqa: E402

MIXES = (0.0, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("frozen_model", help="model.keras of a run with the recipe's first phase only")
    parser.add_argument("fine_tuned_model", help="model.keras of a run of the whole recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    recipe = load_recipe(args.recipe, args.overrides)
    prepared = prepare(recipe)
    splits = prepared.splits
    frozen = keras.saving.load_model(args.frozen_model).get_weights()
    fine_tuned = keras.saving.load_model(args.fine_tuned_model).get_weights()
    print("| a | val accuracy | val macro-F1 | test accuracy | test macro-F1 |\n|---|---|---|---|---|")
    for mix in MIXES:
        prepared.model.set_weights([(1 - mix) * f + mix * t for f, t in zip(frozen, fine_tuned)])
        cells = []
        for dataset, groups in ((splits.validation, None), (splits.test, splits.test_groups)):
            probabilities, labels = predict_probabilities(
                prepared.model, dataset, recipe.data.batch_size, recipe.head.kind, groups,
                length_buckets=splits.length_buckets,
            )
            report = classification_report(probabilities, labels, splits.class_names, recipe.head.kind)
            cells += [f"{report['accuracy']:.4f}", f"{report['macro_f1']:.4f}"]
        print(f"| {mix} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
