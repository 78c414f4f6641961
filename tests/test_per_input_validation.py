"""Validation per input: with texts cut into windows, each epoch's val_* metrics are those of whole texts."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness.text import per_text_validation_report, windowed_topics_recipe
from tfx_transfer.best_epoch import monitor_metrics
from tfx_transfer.evaluate import average_per_group, classification_report
from tfx_transfer.head_kinds import BINARY, MULTICLASS
from tfx_transfer.recipe import recipe_from_dict
from tfx_transfer.training.validation import PerInputValidation


def fixed_model(outputs_per_example):
    """A model that returns row `i` of `outputs_per_example` for the input `[i]`."""
    table = np.asarray(outputs_per_example, np.float32)
    inputs = keras.Input((1,), dtype="int32")
    lookup = keras.layers.Embedding(*table.shape)
    model = keras.Model(inputs, keras.layers.Reshape(table.shape[1:])(lookup(inputs)))
    lookup.set_weights([table])
    return model


def validate(model, labels, groups, kind=MULTICLASS, num_classes=2):
    windows = tf.data.Dataset.from_tensor_slices((np.arange(len(labels), dtype=np.int32)[:, None], labels))
    callback = PerInputValidation(
        windows, groups, batch_size=2, loss=kind.loss(),
        metrics=kind.metrics(num_classes) + monitor_metrics("val_macro_f1", kind.name, num_classes),
        encode_targets=lambda y: kind.encode_targets(y, num_classes),
    )
    callback.set_model(model)
    logs = {"loss": 0.3}
    callback.on_epoch_end(0, logs)
    return logs


def test_each_input_is_judged_on_the_mean_of_its_windows():
    # Text 0 is class 0 with one misleading window; text 1 is class 1 in both its windows.
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    labels, groups = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])
    logs = validate(fixed_model(probabilities), labels, groups)

    per_text, text_labels = average_per_group(probabilities, labels, groups)
    expected = classification_report(per_text, text_labels, ["a", "b"])
    assert logs["val_accuracy"] == pytest.approx(1.0) == expected["accuracy"]
    assert logs["val_loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert logs["val_macro_f1"] == pytest.approx(expected["macro_f1"])
    assert logs["loss"] == 0.3  # training values stay
    assert list(logs) == ["loss", "val_accuracy", "val_loss", "val_macro_f1"]
    # Judged per window, the misleading window would count as an error.
    per_window = classification_report(probabilities, labels, ["a", "b"])
    assert per_window["accuracy"] == 0.75


def test_binary_heads_average_their_sigmoid_per_input():
    outputs = np.array([[0.2], [0.9], [0.7], [0.1]])  # texts of 1, 2 and 1 windows
    labels, groups = np.array([1, 0, 0, 1]), np.array([5, 7, 7, 9])  # any ids, not only 0..n-1
    logs = validate(fixed_model(outputs), labels, groups, kind=BINARY)
    # Per text: 0.2 (label 1), 0.8 (label 0), 0.1 (label 1): every text wrong.
    assert logs["val_accuracy"] == 0.0
    assert logs["val_loss"] == pytest.approx(-np.mean(np.log([0.2, 0.2, 0.1])), rel=1e-4)


def test_a_windowed_run_selects_epochs_on_whole_texts(tmp_path):
    from tfx_transfer.pipeline import train

    recipe = recipe_from_dict(windowed_topics_recipe(
        tmp_path, [{"name": "head", "epochs": 2, "learning_rate": 0.05, "monitor": "val_macro_f1"}]
    ))
    result = train(recipe)
    per_text = per_text_validation_report(recipe, result.model)
    phase = result.metrics["phases"][0]
    kept = phase["best_epoch"]["kept_epoch"]
    assert phase["history"]["val_accuracy"][kept - 1] == pytest.approx(per_text["accuracy"])
    assert phase["history"]["val_macro_f1"][kept - 1] == pytest.approx(per_text["macro_f1"], abs=1e-6)
    assert phase["history"]["val_loss"][kept - 1] == pytest.approx(per_text["loss"], rel=1e-4)
