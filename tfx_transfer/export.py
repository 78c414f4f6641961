"""SavedModel export for TF Serving: raw-input signatures, labels, warm-up requests, atomic versions.

Example:

```python
path = export_saved_model(model, preprocessor, ["cat", "dog"], "saved_models", "pets")
# saved_models/pets/1/ with signatures `serving_default` (image_bytes) and `serve_tensor` (image)
```
"""

import re
import uuid

import keras
import tensorflow as tf

from tfx_transfer import head_kinds, storage
from tfx_transfer.data.base import ServingPreprocessor
from tfx_transfer.data.windows import mean_per_group
from tfx_transfer.locks import highest_version, reserve_export_version
from tfx_transfer.log import logger

SIGNATURE_RAW = "serving_default"
SIGNATURE_TENSOR = "serve_tensor"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"


def export_saved_model(
    model: keras.Model,
    preprocessor: ServingPreprocessor,
    class_names,
    export_base: str,
    model_name: str,
    head_kind: str = "multiclass",
    version: int | None = None,
    recipe_yaml: str | None = None,
    warmup_requests: bool = True,
) -> str:
    """Writes `<export_base>/<model_name>/<version>/` and returns its path.

    `export_base` is any `tf.io.gfile` path (local, `gs://`, `ram://`). The version
    is written under a temporary name beside its final place and renamed when
    complete. On a local disk the rename is atomic, so a TF Serving instance
    polling `export_base` never loads half a model. On an object store (GCS, S3)
    a directory rename copies object by object and is not atomic: a server
    polling there can briefly see a partial version; point it at the version only
    after this function returns (see `tfx_transfer.storage`). `version` defaults
    to one more than the highest existing or reserved version; concurrent exports
    to a local directory get distinct versions (`tfx_transfer.locks.reserve_export_version`).
    """
    class_names = [str(c) for c in class_names]
    if any("\n" in c for c in class_names):
        raise ValueError(f"Class names must not contain newlines: {class_names}.")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", model_name):
        raise ValueError(
            f"export.model_name must use letters, digits, '_', '-' or '.', received {model_name!r}."
        )
    model_dir = storage.join(export_base, model_name)
    archive = build_archive(model, preprocessor, class_names, head_kind)
    reservation = reserve_export_version(model_dir, version)
    version = reservation.version
    final = storage.join(model_dir, str(version))
    tmp = storage.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex[:8]}")  # ignored by TF Serving and highest_version
    try:
        archive.write_out(tmp, verbose=False)
        storage.write_text_atomic(storage.join(tmp, "assets", "labels.txt"), "".join(f"{c}\n" for c in class_names))
        if recipe_yaml is not None:
            storage.write_text_atomic(storage.join(tmp, "assets", "recipe.yaml"), recipe_yaml)
        if warmup_requests:
            write_warmup_requests(tmp, model_name, preprocessor)
        storage.move_dir(tmp, final)
    finally:
        storage.rmtree(tmp)
        reservation.release()
    return final


def build_archive(model, preprocessor, class_names, head_kind) -> keras.export.ExportArchive:
    """An `ExportArchive` with the two contract signatures on `model` and `preprocessor`.

    A preprocessor with `windows` (long audio clips) cuts each input into
    windows; the signatures average the windows' probabilities per input with
    `windows.mean_per_group`, as evaluation does.
    """
    labels = tf.constant(class_names)
    kind = head_kinds.head_kind(head_kind)

    def predict(inputs, group_ids=None, num_groups=None):
        probabilities = tf.cast(kind.class_probabilities(model(inputs, training=False)), tf.float32)
        if group_ids is not None:
            probabilities = mean_per_group(probabilities, group_ids, num_groups)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "class_id": class_id,
            "label": tf.gather(labels, class_id),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    for trackable in preprocessor.trackables:
        archive.track(trackable)
    windows = preprocessor.windows

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


def write_warmup_requests(export_dir: str, model_name: str, preprocessor) -> bool:
    """Writes `assets.extra/tf_serving_warmup_requests`, which TF Serving replays at load time.

    Needs `tensorflow-serving-api` for the `PredictionLog` protos; returns False
    (and logs why) when it is not installed.
    """
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        logger.info("no warm-up requests written: install tensorflow-serving-api to write them")
        return False
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE_RAW)
    )
    example = preprocessor.example_raw_input()
    request.inputs[preprocessor.raw_key].CopyFrom(tf.make_tensor_proto([example], dtype=tf.string))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    storage.makedirs(storage.join(export_dir, "assets.extra"))
    with tf.io.TFRecordWriter(storage.join(export_dir, WARMUP_FILE)) as writer:
        writer.write(log.SerializeToString())
    return True


PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


def graph_ops(export_dir: str) -> set[str]:
    """Every op type in a SavedModel's graph and functions: what TF Serving must be able to run."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(storage.read_bytes(storage.join(export_dir, "saved_model.pb")))
    graph = proto.meta_graphs[0].graph_def
    return {node.op for node in graph.node} | {n.op for f in graph.library.function for n in f.node_def}


def load_labels(export_dir: str) -> list[str]:
    """The class names of an export, in class-id order (`assets/labels.txt`)."""
    return storage.read_text(storage.join(export_dir, "assets", "labels.txt")).splitlines()


def resolve_export_dir(path: str) -> str:
    """`path` itself if it holds a SavedModel, else its highest integer version sub-directory."""
    if storage.exists(storage.join(path, "saved_model.pb")):
        return path
    version = highest_version(path)
    if version < 1:
        raise FileNotFoundError(
            f"{path!r} holds no saved_model.pb and no integer version directory. Pass an export "
            "directory such as saved_models/<name>/<version>."
        )
    return storage.join(path, str(version))
