"""SavedModel export for TF Serving: raw-input signatures, labels, warm-up requests, atomic versions.

Example:

```python
path = export_saved_model(model, preprocessor, ["cat", "dog"], "saved_models", "pets")
# saved_models/pets/1/ with signatures `serving_default` (image_bytes) and `serve_tensor` (image)
```
"""

import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from tfx_transfer.heads import class_probabilities
from tfx_transfer.locks import reserve_export_version

SIGNATURE_RAW = "serving_default"
SIGNATURE_TENSOR = "serve_tensor"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def export_saved_model(
    model: keras.Model,
    preprocessor,
    class_names,
    export_base: str,
    model_name: str,
    head_kind: str = "multiclass",
    version: int | None = None,
    recipe_yaml: str | None = None,
    warmup_requests: bool = True,
) -> str:
    """Writes `<export_base>/<model_name>/<version>/` and returns its path.

    The directory is written under a temporary name beside its final place and
    renamed when complete, so a TF Serving instance polling `export_base` never
    loads half a model. `version` defaults to one more than the highest
    existing or reserved version; concurrent exports get distinct versions
    (`tfx_transfer.locks.reserve_export_version`).
    """
    class_names = [str(c) for c in class_names]
    if any("\n" in c for c in class_names):
        raise ValueError(f"Class names must not contain newlines: {class_names}.")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", model_name):
        raise ValueError(
            f"export.model_name must use letters, digits, '_', '-' or '.', received {model_name!r}."
        )
    model_dir = os.path.join(export_base, model_name)
    archive = build_archive(model, preprocessor, class_names, head_kind)
    reservation = reserve_export_version(model_dir, version)  # two concurrent exports get two versions
    version = reservation.version
    final = os.path.join(model_dir, str(version))
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    try:
        archive.write_out(tmp, verbose=False)
        assets = os.path.join(tmp, "assets")
        os.makedirs(assets, exist_ok=True)
        with open(os.path.join(assets, "labels.txt"), "w", encoding="utf-8") as f:
            f.write("".join(f"{c}\n" for c in class_names))
        if recipe_yaml is not None:
            with open(os.path.join(assets, "recipe.yaml"), "w", encoding="utf-8") as f:
                f.write(recipe_yaml)
        if warmup_requests:
            write_warmup_requests(tmp, model_name, preprocessor)
        os.rename(tmp, final)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        reservation.release()
    return final


def build_archive(model, preprocessor, class_names, head_kind) -> keras.export.ExportArchive:
    """An `ExportArchive` with the two contract signatures on `model` and `preprocessor`.

    A preprocessor with `windows` (long audio clips) cuts each input into
    windows; the signatures average the windows' probabilities per input.
    """
    labels = tf.constant(class_names)

    def predict(inputs, clip_ids=None, num_clips=None):
        probabilities = tf.cast(class_probabilities(model(inputs, training=False), head_kind), tf.float32)
        if clip_ids is not None:
            probabilities = tf.math.unsorted_segment_mean(probabilities, clip_ids, num_clips)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "class_id": class_id,
            "label": tf.gather(labels, class_id),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    for trackable in getattr(preprocessor, "trackables", ()):
        archive.track(trackable)
    windows = getattr(preprocessor, "windows", False)

    def serve_raw(raw):
        if windows:
            return predict(*preprocessor.raw_to_windows(raw), tf.shape(raw)[0])
        return predict(preprocessor.raw_to_inputs(raw))

    def serve_tensor(tensor):
        if windows:
            return predict(*preprocessor.tensor_to_windows(tensor), tf.shape(tensor)[0])
        return predict(preprocessor.tensor_to_inputs(tensor))

    tensor_spec = preprocessor.tensor_spec
    archive.add_endpoint(
        SIGNATURE_RAW, serve_raw, input_signature=[tf.TensorSpec([None], tf.string, name=preprocessor.raw_key)]
    )
    archive.add_endpoint(
        SIGNATURE_TENSOR,
        serve_tensor,
        input_signature=[tf.TensorSpec(tensor_spec.shape, tensor_spec.dtype, name=preprocessor.tensor_key)],
    )
    return archive


def next_version(model_dir: str) -> int:
    versions = [int(n) for n in os.listdir(model_dir) if n.isdigit()] if os.path.isdir(model_dir) else []
    return max(versions, default=0) + 1


def write_warmup_requests(export_dir: str, model_name: str, preprocessor) -> bool:
    """Writes `assets.extra/tf_serving_warmup_requests`, which TF Serving replays at load time.

    Needs `tensorflow-serving-api` for the `PredictionLog` protos and an
    `example_raw_input()` from the preprocessor; returns False when either is missing.
    """
    example = getattr(preprocessor, "example_raw_input", None)
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        return False
    if example is None:
        return False
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE_RAW)
    )
    request.inputs[preprocessor.raw_key].CopyFrom(tf.make_tensor_proto([example()], dtype=tf.string))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    os.makedirs(os.path.join(export_dir, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(export_dir, WARMUP_FILE)) as writer:
        writer.write(log.SerializeToString())
    return True


PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


def graph_ops(export_dir: str) -> set[str]:
    """Every op type in a SavedModel's graph and functions: what TF Serving must be able to run."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    return {node.op for node in graph.node} | {n.op for f in graph.library.function for n in f.node_def}


def load_labels(export_dir: str) -> list[str]:
    with open(os.path.join(export_dir, "assets", "labels.txt"), encoding="utf-8") as f:
        return f.read().splitlines()


def resolve_export_dir(path: str) -> str:
    """`path` itself if it holds a SavedModel, else its highest integer version sub-directory."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    version = next_version(path) - 1
    if version < 1:
        raise FileNotFoundError(
            f"{path!r} holds no saved_model.pb and no integer version directory. Pass an export "
            "directory such as saved_models/<name>/<version>."
        )
    return os.path.join(path, str(version))
