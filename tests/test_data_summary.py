"""The data summary: class counts per split, and a warning that names the fix when classes are imbalanced."""

import logging

import numpy as np
import tensorflow as tf

from tfx_transfer.data.base import DataSplits
from tfx_transfer.data_summary import class_count_table, imbalance_warning, log_data_summary, split_class_counts


def _splits(labels_by_split, class_names, report=None):
    def dataset(labels):
        return tf.data.Dataset.from_tensor_slices((np.zeros((len(labels), 2), "float32"), np.asarray(labels)))

    return DataSplits(
        train=dataset(labels_by_split["train"]), validation=dataset(labels_by_split["validation"]), test=None,
        class_names=class_names, report=report or {},
    )


def test_counts_come_from_the_datasets_when_the_loader_reported_none():
    splits = _splits({"train": [0, 0, 0, 1, 2, 0], "validation": [1, 0]}, ["a", "b", "c"])
    assert split_class_counts(splits) == {"train": {"a": 4, "b": 1, "c": 1}, "validation": {"a": 1, "b": 1, "c": 0}}


def test_multi_hot_labels_count_each_class_they_carry():
    splits = _splits({"train": [[1, 1], [0, 1]], "validation": [[1, 0]]}, ["x", "y"])
    assert split_class_counts(splits)["train"] == {"x": 1, "y": 2}


def test_the_loaders_report_is_used_when_present():
    report = {"counts": {"train": {"a": 9, "b": 1}, "test": {"a": 2, "b": 1}}}
    assert split_class_counts(_splits({"train": [0], "validation": [0]}, ["a", "b"], report)) == report["counts"]


def test_warns_at_three_times_and_names_the_setting(caplog):
    counts = {"train": {"neg": 633, "mixed": 256, "pos": 90}, "test": {"neg": 100, "mixed": 40, "pos": 15}}
    with caplog.at_level(logging.INFO, logger="tfx_transfer"):
        warning = log_data_summary(counts)
    assert "neg has 633 examples, pos 90 (7.0x)" in warning and "class_weight: auto" in warning
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.WARNING]
    assert "pos       90    15" in caplog.records[0].getMessage()
    assert imbalance_warning({"a": 30, "b": 10}) is not None
    assert imbalance_warning({"a": 29, "b": 10}) is None
    assert "b none" in imbalance_warning({"a": 3, "b": 0})


def test_no_warning_when_class_weights_are_already_set():
    assert log_data_summary({"train": {"a": 100, "b": 1}}, class_weight_set=True) is None


def test_table_has_a_total_row():
    table = class_count_table({"train": {"a": 1200, "b": 3}})
    assert table.splitlines()[-1].split() == ["total", "1,203"]
