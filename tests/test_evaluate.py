"""Test-set predictions: one pass over the data, windows of one clip averaged into one row."""

import keras
import numpy as np
import tensorflow as tf

from tfx_transfer.evaluate import predict_probabilities


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
