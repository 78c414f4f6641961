"""Head kinds: one object per kind decides outputs, loss, metrics, targets, probabilities and class counts."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_resnet
from tfx_transfer.head_kinds import BINARY, MULTICLASS, MULTILABEL, head_kind
from tfx_transfer.model import build_model
from tfx_transfer.recipe import HeadConfig


@pytest.mark.parametrize("kind, units, activation", [(MULTICLASS, 3, "softmax"), (MULTILABEL, 3, "sigmoid")])
def test_built_head_uses_the_kinds_units_and_activation(kind, units, activation):
    model, head = build_model(tiny_resnet(), 3, HeadConfig(kind=kind.name))
    dense = head.get_layer("probabilities")
    assert (dense.units, dense.activation.__name__, model.output.dtype) == (units, activation, "float32")


def test_targets_match_each_kinds_loss():
    ids = tf.constant([0, 1])
    np.testing.assert_array_equal(MULTICLASS.encode_targets(ids, 2), [[1, 0], [0, 1]])
    np.testing.assert_array_equal(BINARY.encode_targets(ids, 2), [[0.0], [1.0]])
    assert MULTILABEL.encode_targets(tf.constant([[1, 0]]), 2).dtype == tf.float32
    assert MULTICLASS.loss(0.1).get_config()["label_smoothing"] == pytest.approx(0.1)
    assert BINARY.loss().name == MULTILABEL.loss().name == "binary_crossentropy"
    assert [m.name for m in MULTILABEL.metrics(3)] == ["accuracy", "auc"]
    assert [m.name for m in MULTICLASS.metrics(3)] == ["accuracy"]


def test_binary_probabilities_become_two_columns():
    np.testing.assert_allclose(BINARY.class_probabilities(tf.constant([[0.2]])), [[0.8, 0.2]])
    np.testing.assert_allclose(MULTILABEL.class_probabilities(tf.constant([[0.2, 0.9]])), [[0.2, 0.9]])


@pytest.mark.parametrize(
    "kind, num_classes, message",
    [(MULTICLASS, 1, "at least 2 classes, the data has 1"), (BINARY, 3, "'binary' needs exactly 2 classes, the data has 3")],
)
def test_class_count_checks_name_the_problem(kind, num_classes, message):
    with pytest.raises(ValueError, match=message):
        kind.check_class_count(num_classes)


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"head.kind must be one of \('multiclass', 'binary', 'multilabel'\), received 'ordinal'"):
        head_kind("ordinal")
    assert not MULTILABEL.takes_class_weight and MULTICLASS.takes_class_weight
