"""Test-set predictions (one pass over the data, windows of one clip averaged into one row) and the report."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import f1_score, recall_score

from tfx_transfer.evaluate import classification_report, predict_probabilities


def test_windows_of_one_clip_are_averaged_into_one_row_with_its_label():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Softmax()])
    logits = np.log(np.array([[1, 1, 2], [1, 3, 0], [2, 1, 1], [1, 1, 1], [0.5, 0.5, 3]], "float32") + 1e-9)
    labels = np.array([2, 2, 0, 1, 1], "int32")
    dataset = tf.data.Dataset.from_tensor_slices((logits, labels))
    windows = model.predict(logits, verbose=0)

    probabilities, clip_labels = predict_probabilities(model, dataset, 2, "multiclass", group_ids=[0, 0, 1, 2, 2])

    np.testing.assert_allclose(
        probabilities, [windows[:2].mean(0), windows[2], windows[3:].mean(0)], rtol=1e-6
    )
    assert clip_labels.tolist() == [2, 0, 1]
    unaveraged, all_labels = predict_probabilities(model, dataset, 2, "multiclass")
    np.testing.assert_allclose(unaveraged, windows, rtol=1e-6)
    assert all_labels.tolist() == labels.tolist()


def test_report_adds_macro_f1_and_recall_by_class_as_scikit_learn_computes_them():
    rng = np.random.default_rng(3)
    labels = rng.choice(3, size=80, p=[0.7, 0.25, 0.05])
    probabilities = rng.dirichlet([4.0, 1.0, 0.2], size=80)
    report = classification_report(probabilities, labels, ["big", "mid", "rare"])
    predicted = probabilities.argmax(1)
    assert report["macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert list(report["recall"]) == ["big", "mid", "rare"]
    np.testing.assert_allclose(
        list(report["recall"].values()), recall_score(labels, predicted, average=None, labels=[0, 1, 2], zero_division=0)
    )
    assert {"accuracy", "loss", "examples", "per_class", "confusion_matrix"} <= set(report)


def test_multilabel_report_has_macro_f1_and_recall_too():
    truth = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    probabilities = np.array([[0.9, 0.2], [0.7, 0.3], [0.1, 0.8], [0.6, 0.1]])
    report = classification_report(probabilities, truth, ["x", "y"], kind="multilabel")
    assert report["macro_f1"] == pytest.approx(f1_score(truth, probabilities >= 0.5, average="macro"))
    assert report["recall"] == {"x": 1.0, "y": 0.5}
