"""scikit-learn's 8x8 handwritten digits on EfficientNet-Lite0: the Fashion-MNIST recipe on a second image set.

    nice -n 10 env PYTHONPATH=. .venv/bin/python benchmarks/digits.py [--work-dir DIR] [--set KEY=VALUE ...]

Writes the 1,797 images of `sklearn.datasets.load_digits` (shipped with scikit-learn: no
download) as 8x8 grey PNGs into `<work-dir>/digits/<class>/<n>.png`; the toolkit's folder source
makes them RGB and resizes them to the recipe's 64x64. Then, on one seeded, stratified 70/15/15
split drawn by the toolkit, it measures (each in its own process, as `benchmarks/fashion_mnist.py`
and `benchmarks/peers.py` do, whose functions it uses):

- two-phase: `recipes/fashion_mnist_efficientnet_lite0.yaml` as written, pointed at the folder;
- frozen features (phase 1 only): the recipe's first phase alone (the head on cached features);
- frozen features + logistic regression: `peers.py`'s `features_logreg` on the two-phase run's
  `splits.csv`, C chosen on validation.

and prints a table of test accuracy, macro-F1, phase 1's test accuracy and wall seconds.
`--set` overrides go to both toolkit runs and the logistic regression's recipe.
"""

import argparse
import json
import pathlib
import sys
import tempfile

import numpy as np

from fashion_mnist import RECIPE, TARGET_GAIN, run_variant, variants
from peers import run_peer

DATA_OVERRIDES = [
    "name=digits_efficientnet_lite0",
    "data.source=folder",
    "data.max_train_examples=null",
    "data.validation_fraction=0.15",
    "data.test_fraction=0.15",
]


def write_digits(root: pathlib.Path) -> pathlib.Path:
    """Writes scikit-learn's digits as 8x8 grey PNGs `root/<digit>/<n>.png` (n: index in `load_digits`); returns root."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)  # 0..16 -> 0..255: white ink on black
    for n, (image, label) in enumerate(zip(pixels, digits.target)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{n}.png")
    return root


def table(rows) -> str:
    def cell(value):
        return "" if value is None else f"{value:.4f}"

    lines = ["| variant | test accuracy | macro-F1 | phase-1 test accuracy | wall s |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['test_accuracy']:.4f} | {cell(r.get('macro_f1'))} | "
            f"{cell(r.get('phase_1_test_accuracy'))} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default=None, help="where the PNGs and run directories go (default: a new temp dir)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    work_dir = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="digits_bench_")).resolve()
    common = [*DATA_OVERRIDES, f"data.path={write_digits(work_dir / 'digits')}", *args.overrides]
    runs = [run_variant(label, extra, RECIPE, work_dir, common) for label, extra in variants(RECIPE, common)[:2]]
    if len({pathlib.Path(r["split_manifest"]).read_text() for r in runs}) != 1:
        raise SystemExit("digits.py: the two toolkit runs drew different splits; see their splits.csv files.")
    context = {"recipe": str(RECIPE), "overrides": common, "manifest": runs[0]["split_manifest"]}
    logreg = run_peer("features_logreg", context, str(work_dir))
    rows = [*runs, {"variant": logreg.label, "test_accuracy": logreg.accuracy, "seconds": logreg.wall_seconds}]

    two_phase = runs[0]
    print("\n" + table(rows))
    over_logreg = two_phase["test_accuracy"] - logreg.accuracy
    over_phase_1 = two_phase["test_accuracy"] - two_phase["phase_1_test_accuracy"]
    print(
        f"\ntwo-phase {100 * over_logreg:+.1f} points over frozen features + logistic regression "
        f"(target >= {100 * TARGET_GAIN:.0f}), {100 * over_phase_1:+.1f} over its own phase 1 (target >= 0)"
    )
    (work_dir / "results.json").write_text(json.dumps(rows, indent=2))
    met = over_logreg >= TARGET_GAIN and over_phase_1 >= 0
    print("targets met" if met else "TARGETS NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
