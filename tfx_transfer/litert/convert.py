"""Keras model -> LiteRT flatbuffer on the decoded input, with optional quantization.

The converted model has one signature, `serving_default`, whose inputs are the
Keras model's inputs (an image model's `image` as `uint8` or `float32` pixels
0..255 at the backbone's size; an audio model's `waveform`; a text model's
token tensors) and whose outputs are `probabilities` float32
`[batch, num_classes]` (binary heads: `[1 - p, p]`) and `class_id` int32.

Example:

```python
import keras
inputs = keras.Input((8, 8, 3), name="image")
outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
conversion = convert_to_litert(keras.Model(inputs, outputs), "dynamic_range")
len(conversion.flatbuffer) > 0  # True
```
"""

import dataclasses
import tempfile

import keras
import tensorflow as tf
from tensorflow.lite.python.convert_phase import ConverterError  # not exported under tf.lite in TF 2.21

from tfx_transfer import head_kinds
from tfx_transfer.litert.interpreter import as_input_dtype
from tfx_transfer.log import logger

QUANTIZATIONS = ("none", "float16", "dynamic_range", "int8")


@dataclasses.dataclass
class Conversion:
    """A converted model: the `.tflite` bytes, and whether int8 had to keep some ops in float."""

    flatbuffer: bytes
    quantization: str
    float_fallback: bool = False


def litert_input_specs(model: keras.Model, image_input: str = "float32") -> dict[str, tf.TensorSpec]:
    """The LiteRT signature's inputs: the model's named inputs; an image input may be uint8."""
    specs = {}
    for tensor in keras.tree.flatten(model.input):
        dtype = tf.as_dtype(tensor.dtype)
        if tensor.name == "image" and image_input == "uint8":
            dtype = tf.uint8
        specs[tensor.name] = tf.TensorSpec(tensor.shape, dtype, name=tensor.name)
    return specs


def convert_to_litert(
    model: keras.Model,
    quantization: str = "none",
    head_kind: str = "multiclass",
    image_input: str = "float32",
    representative_inputs=None,
) -> Conversion:
    """The `.tflite` flatbuffer of `model` on its decoded inputs.

    `representative_inputs` (needed for `int8`) is an iterable of dicts
    `{input name: array with batch dimension 1}` drawn from the training split.
    Full int8 tries integer-only kernels first; when an op has none, it keeps
    that op in float and says so in the log.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"LiteRT quantization must be one of {QUANTIZATIONS}, received {quantization!r}.")
    if quantization == "int8" and representative_inputs is None:
        raise ValueError("LiteRT int8 quantization needs representative_inputs drawn from the training split.")
    specs = litert_input_specs(model, image_input)
    structure = model.input

    def serve(inputs):
        named = {name: tf.cast(inputs[name], tf.as_dtype(t.dtype)) for name, t in _named_inputs(model).items()}
        model_inputs = keras.tree.pack_sequence_as(structure, [named[t.name] for t in keras.tree.flatten(structure)])
        probabilities = tf.cast(head_kinds.head_kind(head_kind).class_probabilities(model(model_inputs, training=False)), tf.float32)
        return {"probabilities": probabilities, "class_id": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    # Converted from a SavedModel written by ExportArchive, as the SavedModel export is: in TF 2.21
    # `from_concrete_functions` on this function kept the variables as uninitialised resource
    # variables (READ_VARIABLE ops, NaN outputs), and `from_keras_model` cannot change the inputs.
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=[specs])
    with tempfile.TemporaryDirectory(prefix="tfx-transfer-litert-") as saved_model_dir:
        archive.write_out(saved_model_dir, verbose=False)
        return _convert(saved_model_dir, quantization, representative_inputs, specs)


def _named_inputs(model) -> dict:
    return {t.name: t for t in keras.tree.flatten(model.input)}


def _convert(saved_model_dir: str, quantization: str, representative_inputs, specs) -> Conversion:
    def converter(integer_only: bool = False):
        conv = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
        if quantization != "none":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            conv.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            conv.representative_dataset = lambda: (
                {name: as_input_dtype(sample[name], spec.dtype.as_numpy_dtype) for name, spec in specs.items()}
                for sample in representative_inputs
            )
            if integer_only:
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return conv

    if quantization != "int8":
        return Conversion(converter().convert(), quantization)
    try:
        return Conversion(converter(integer_only=True).convert(), quantization)
    except ConverterError as e:
        logger.info("LiteRT int8: some ops have no integer kernel, keeping them in float (%s)", _first_line(e))
        return Conversion(converter().convert(), quantization, float_fallback=True)


def _first_line(error) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
