"""The SavedModel contract every modality's export keeps (DESIGN.md), as one reusable check."""

import numpy as np
import tensorflow as tf

from tfx_transfer import storage
from tfx_transfer.export import PYTHON_OPS, SIGNATURE_RAW, SIGNATURE_TENSOR, WARMUP_FILE, graph_ops, load_labels

RAW_KEYS = {"image": "image_bytes", "text": "text", "audio": "audio_wav"}
TENSOR_KEYS = {"image": "image", "text": "text", "audio": "waveform"}


def check_export_contract(export_dir, model, preprocessor, class_names, modality, raw_examples, atol=1e-4):
    """Asserts signatures, labels, no Python ops, warm-up replay and Keras-vs-export parity.

    `raw_examples` are raw requests (bytes or str); the exported `serving_default`
    must give the probabilities that `model` gives on `preprocessor.raw_to_inputs`.
    """
    loaded = tf.saved_model.load(export_dir)
    raw_signature = loaded.signatures[SIGNATURE_RAW]
    tensor_signature = loaded.signatures[SIGNATURE_TENSOR]
    assert list(raw_signature.structured_input_signature[1]) == [RAW_KEYS[modality]]
    (raw_spec,) = raw_signature.structured_input_signature[1].values()
    assert raw_spec.dtype == tf.string and raw_spec.shape.as_list() == [None]
    assert list(tensor_signature.structured_input_signature[1]) == [TENSOR_KEYS[modality]]
    for signature in (raw_signature, tensor_signature):
        outputs = signature.structured_outputs
        assert set(outputs) == {"probabilities", "class_id", "label"}
        assert (outputs["probabilities"].dtype, outputs["class_id"].dtype, outputs["label"].dtype) == (
            tf.float32, tf.int64, tf.string)

    assert load_labels(export_dir) == list(class_names)
    assert not graph_ops(export_dir) & PYTHON_OPS, "TF Serving cannot run Python ops"

    raw = tf.constant(raw_examples, tf.string)
    served = raw_signature(**{RAW_KEYS[modality]: raw})
    expected = np.asarray(model(preprocessor.raw_to_inputs(raw), training=False))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=atol)
    labels = [class_names[i] for i in served["class_id"].numpy()]
    assert [label.decode() for label in served["label"].numpy()] == labels

    from tensorflow_serving.apis import prediction_log_pb2

    warmup = storage.join(export_dir, WARMUP_FILE)
    records = list(tf.data.TFRecordDataset(warmup).as_numpy_iterator())
    assert len(records) == 1
    request = prediction_log_pb2.PredictionLog.FromString(records[0]).predict_log.request
    assert request.model_spec.signature_name == SIGNATURE_RAW
    replay = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
    replayed = raw_signature(**{key: tf.constant(value) for key, value in replay.items()})
    assert replayed["probabilities"].shape == (1, len(class_names))
