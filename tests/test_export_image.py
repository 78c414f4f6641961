"""The exported SavedModel: contract signatures, same answers as Keras, no PyFunc, TF-Serving-style runs."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from harness import tiny_resnet
from tfx_transfer.data.image import ImagePreprocessor
from tfx_transfer.export import PYTHON_OPS, WARMUP_FILE, export_saved_model, graph_ops, load_labels
from tfx_transfer.model import build_model
from tfx_transfer.recipe import HeadConfig

CLASSES = ["cat", "dog", "fox"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    backbone = tiny_resnet(image_size=(16, 16))
    model, _ = build_model(backbone, 3, HeadConfig(dropout=0.0))
    preprocessor = ImagePreprocessor((16, 16))
    path = export_saved_model(model, preprocessor, CLASSES, str(base), "pets", recipe_yaml="name: pets\n")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((20, 30), (16, 16), (40, 12))]
    return {"base": str(base), "path": path, "model": model, "preprocessor": preprocessor, "images": images}


def test_layout_labels_recipe_and_version_numbering(exported):
    assert exported["path"] == os.path.join(exported["base"], "pets", "1")
    assert load_labels(exported["path"]) == CLASSES
    assert open(os.path.join(exported["path"], "assets", "recipe.yaml")).read() == "name: pets\n"
    assert not [n for n in os.listdir(os.path.join(exported["base"], "pets")) if n.startswith(".tmp")]
    second = export_saved_model(
        exported["model"], exported["preprocessor"], CLASSES, exported["base"], "pets", warmup_requests=False
    )
    assert second.endswith(os.path.join("pets", "2"))
    with pytest.raises(FileExistsError, match="already exists"):
        export_saved_model(exported["model"], exported["preprocessor"], CLASSES, exported["base"], "pets", version=1)


def test_signatures_follow_the_contract(exported):
    loaded = tf.saved_model.load(exported["path"])
    raw = loaded.signatures["serving_default"]
    tensor = loaded.signatures["serve_tensor"]
    (raw_spec,) = raw.structured_input_signature[1].values()
    assert list(raw.structured_input_signature[1]) == ["image_bytes"]
    assert raw_spec.dtype == tf.string and raw_spec.shape.as_list() == [None]
    (tensor_spec,) = tensor.structured_input_signature[1].values()
    assert list(tensor.structured_input_signature[1]) == ["image"]
    assert tensor_spec.dtype == tf.float32 and tensor_spec.shape.as_list() == [None, 16, 16, 3]
    for signature in (raw, tensor):
        outputs = signature.structured_outputs
        assert set(outputs) == {"probabilities", "class_id", "label"}
        assert outputs["probabilities"].dtype == tf.float32
        assert outputs["probabilities"].shape.as_list() == [None, 3]
        assert outputs["class_id"].dtype == tf.int64 and outputs["label"].dtype == tf.string


def test_no_python_ops_in_the_graph(exported):
    ops = graph_ops(exported["path"])
    assert not ops & PYTHON_OPS
    assert "DecodeImage" in ops or "DecodeJpeg" in ops or "DecodePng" in ops


def test_fresh_process_jpeg_and_png_bytes_match_keras(exported, tmp_path):
    """Tolerance: PNG is lossless, so 1e-5 on probabilities; JPEG is compared on the decoded JPEG pixels."""
    pre = exported["preprocessor"]
    files = {}
    for i, image in enumerate(exported["images"]):
        for fmt, encode in (("png", tf.io.encode_png), ("jpg", lambda x: tf.io.encode_jpeg(x, quality=90))):
            path = tmp_path / f"{i}.{fmt}"
            path.write_bytes(encode(image).numpy())
            files[str(path)] = pre.prepare(pre.decode(path.read_bytes())).numpy()
    expected = exported["model"].predict(np.stack(list(files.values())), verbose=0)
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        loaded = tf.saved_model.load({exported['path']!r})
        files = {list(files)!r}
        raw = [open(f, 'rb').read() for f in files]
        out = loaded.signatures['serving_default'](image_bytes=tf.constant(raw))
        print(json.dumps({{'p': out['probabilities'].numpy().tolist(),
                          'label': [l.decode() for l in out['label'].numpy()],
                          'modules': sorted(m for m in sys.modules if m.startswith(('keras', 'tfx_transfer')))}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert not [m for m in payload["modules"] if m.startswith("tfx_transfer")]
    np.testing.assert_allclose(payload["p"], expected, atol=1e-5)
    assert payload["label"] == [CLASSES[i] for i in np.argmax(expected, axis=1)]


def test_serve_tensor_matches_keras(exported):
    loaded = tf.saved_model.load(exported["path"])
    batch = np.random.default_rng(1).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    out = loaded.signatures["serve_tensor"](image=tf.constant(batch))
    np.testing.assert_allclose(out["probabilities"].numpy(), exported["model"].predict(batch, verbose=0), atol=1e-5)


def test_tf_serving_session_run_with_predict_request_and_warmup(exported):
    """Runs the SignatureDef the way TF Serving does: a TF1 session fed from a PredictRequest proto."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    record = next(iter(tf.data.TFRecordDataset(os.path.join(exported["path"], WARMUP_FILE))))
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    assert log.predict_log.request.model_spec.signature_name == "serving_default"

    request = predict_pb2.PredictRequest()
    request.inputs["image_bytes"].CopyFrom(
        tf.make_tensor_proto([tf.io.encode_png(exported["images"][0]).numpy()], dtype=tf.string)
    )
    for req in (log.predict_log.request, request):
        with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], exported["path"])
            signature = meta.signature_def["serving_default"]
            feed = {signature.inputs[k].name: tf.make_ndarray(v) for k, v in req.inputs.items()}
            fetch = {k: v.name for k, v in signature.outputs.items()}
            out = sess.run(fetch, feed)
        assert out["probabilities"].shape == (1, 3)
        assert out["label"][0].decode() in CLASSES


def test_corrupt_bytes_give_an_invalid_argument_error_not_a_crash(exported):
    loaded = tf.saved_model.load(exported["path"])
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["serving_default"](image_bytes=tf.constant([b"not an image"]))


def test_binary_head_exports_two_class_probabilities(tmp_path):
    backbone = tiny_resnet(image_size=(16, 16))
    model, _ = build_model(backbone, 2, HeadConfig(kind="binary", dropout=0.0))
    path = export_saved_model(model, ImagePreprocessor((16, 16)), ["no", "yes"], str(tmp_path), "b",
                              head_kind="binary", warmup_requests=False)
    batch = np.random.default_rng(2).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    out = tf.saved_model.load(path).signatures["serve_tensor"](image=tf.constant(batch))
    p = model.predict(batch, verbose=0)[:, 0]
    np.testing.assert_allclose(out["probabilities"].numpy(), np.stack([1 - p, p], axis=1), atol=1e-6)
    np.testing.assert_array_equal(out["class_id"].numpy(), (p > 0.5).astype(int))
