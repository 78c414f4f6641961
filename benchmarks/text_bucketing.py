"""Fine-tuning MiniLM on length-bucketed batches against batches padded to `sequence_length`.

For each data set, fits from the same start (seed 42, the same pretrained
weights and head initialisation), one per batching variant:
- `fixed`: batches of 32 padded to 128 tokens;
- `pow2`: `tfx_transfer.data.bucketing.batches_by_length` batches cut to the
  smallest of 16/32/64/128 tokens that holds their longest text (what the
  toolkit uses under `distribute.jit_compile`);
- `step8`: the same with a bucket every 8 tokens (the toolkit's default, without XLA).
Each fit trains what `recipes/text_classifier.yaml`'s fine-tuning phase trains
(every layer, AdamW 5e-5, weight decay 0.01) on the recipe's seeded 70/15/15
split and is evaluated on the test split with the same batching. `--xla`
compiles every variant with XLA (the first epoch then includes one compile per
batch shape). Reported: token positions computed per training epoch (and real
tokens among them), seconds of each epoch, test accuracy. Data sets: `fortunes`
(short texts, `tfx-transfer datasets make-fortunes`) and `bbc` (BBC News, long
articles: bucketing cannot shorten them, so this checks it costs nothing there).

    PYTHONPATH=. .venv/bin/python benchmarks/text_bucketing.py --fortunes-csv data/fortunes/fortunes.csv \\
        [--datasets fortunes bbc] [--variants fixed step8] [--epochs 2] [--xla]
"""

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfx_transfer.backbones.packaged import build_packaged
from tfx_transfer.data.bucketing import TEXT_BUCKET_STEP, batches_by_length, bucket_lengths, token_counts
from tfx_transfer.data.sources import SkippedReport
from tfx_transfer.data.text import (
    TextOptions, TextPreprocessor, bbc_news_dir, label_ids, read_class_folders, read_table, split_examples,
    tokenized_dataset,
)
from tfx_transfer.model import build_model
from tfx_transfer.recipe import DataConfig, HeadConfig

SEED = 42
SEQUENCE_LENGTH = 128
BATCH_SIZE = 32
VARIANTS = {
    "fixed": ("fixed 128", None),
    "pow2": ("bucketed 16/32/64/128", bucket_lengths(SEQUENCE_LENGTH)),
    "step8": (f"bucketed every {TEXT_BUCKET_STEP}", bucket_lengths(SEQUENCE_LENGTH, step=TEXT_BUCKET_STEP)),
}


class EpochSeconds(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def read_split(name, fortunes_csv):
    """`({split: (texts, labels)}, class_names)` on the recipes' seeded stratified 70/15/15 split."""
    if name == "bbc":
        parts = {"all": read_class_folders(bbc_news_dir(), "*.txt", SkippedReport())}
    else:
        parts = {"all": read_table(fortunes_csv, TextOptions(), SkippedReport())}
    labels, class_names = label_ids(parts, "multiclass", None)
    config = DataConfig(validation_fraction=0.15, test_fraction=0.15)
    splits, _ = split_examples(parts, labels, class_names, config, SEED)
    return {s: (split.texts, split.labels) for s, split in splits.items()}, class_names


def batched(dataset, lengths, training):
    if training:
        dataset = dataset.shuffle(4096, seed=SEED, reshuffle_each_iteration=True)
    if lengths:
        return batches_by_length(dataset, BATCH_SIZE, lengths).prefetch(2)
    return dataset.batch(BATCH_SIZE).prefetch(2)


def fine_tune(splits, num_classes, lengths, epochs, learning_rate, xla):
    """`(epoch seconds, test accuracy, positions computed in one epoch, real tokens)` of one fit."""
    keras.utils.set_random_seed(SEED)
    backbone = build_packaged("minilm_l6", sequence_length=SEQUENCE_LENGTH, pooling="mean")
    model, _ = build_model(backbone, num_classes, HeadConfig(dropout=0.1))
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=xla,
    )
    preprocessor = TextPreprocessor(backbone.preprocessor, backbone.input_config["inputs"])
    train = tokenized_dataset(*splits["train"], preprocessor).cache()
    test = tokenized_dataset(*splits["test"], preprocessor).cache()
    positions, real = token_counts(batched(train, lengths, training=True))
    timer = EpochSeconds()
    model.fit(batched(train, lengths, training=True), epochs=epochs, callbacks=[timer], verbose=2)
    _, accuracy = model.evaluate(batched(test, lengths, training=False), verbose=0)
    return timer.seconds, accuracy, positions, real


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fortunes-csv", default="data/fortunes/fortunes.csv")
    parser.add_argument("--datasets", nargs="+", default=["fortunes", "bbc"], choices=["fortunes", "bbc"])
    parser.add_argument("--variants", nargs="+", default=["fixed", "step8"], choices=sorted(VARIANTS))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--xla", action="store_true", help="compile every fit with XLA")
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        splits, class_names = read_split(name, args.fortunes_csv)
        results = {}
        for variant in args.variants:
            label, lengths = VARIANTS[variant]
            results[variant] = fine_tune(splits, len(class_names), lengths, args.epochs, args.learning_rate, args.xla)
            seconds, accuracy, positions, real = results[variant]
            print(f"{name} {label}: epochs {[round(s, 1) for s in seconds]} s, test accuracy "
                  f"{accuracy:.4f}, {positions} positions ({real} real tokens) per epoch", flush=True)
        for variant in args.variants:
            seconds, accuracy, positions, real = results[variant]
            speedup = np.asarray(results[args.variants[0]][0]) / np.asarray(seconds)
            rows.append((
                f"{name} ({len(splits['train'][0])} train texts)", VARIANTS[variant][0] + (", XLA" if args.xla else ""),
                f"{positions:,} ({real / positions:.0%} real)", " / ".join(f"{s:.0f}" for s in seconds),
                " / ".join(f"{x:.2f}x" for x in speedup), f"{accuracy:.4f}",
            ))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    print("| data set | batches | token positions per epoch | seconds per epoch (1st / 2nd ...) "
          f"| speed-up vs {args.variants[0]} | test accuracy |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
