"""What every modality's input pipeline hands to training and export."""

import dataclasses
from typing import Any, Protocol

import numpy as np
import tensorflow as tf


class Preprocessor(Protocol):
    """One modality's preprocessing, shared by the tf.data pipeline and the serving signatures.

    `raw_to_inputs` and `tensor_to_inputs` run inside the exported graph, so they
    use core TensorFlow ops only (no `tf.py_function`, no tensorflow-io).
    """

    raw_key: str  # serving_default input name: "image_bytes" | "text" | "audio_wav"
    tensor_key: str  # serve_tensor input name: "image" | "text" | "waveform"

    @property
    def tensor_spec(self) -> tf.TensorSpec:
        """Batched spec of the decoded input taken by `serve_tensor`."""

    def raw_to_inputs(self, raw: tf.Tensor) -> Any:
        """tf.string `[B]` of raw encoded examples -> batched model inputs."""

    def tensor_to_inputs(self, tensor: tf.Tensor) -> Any:
        """Batched decoded input (`tensor_spec`) -> batched model inputs."""


@dataclasses.dataclass
class DataSplits:
    """Unbatched `(model_inputs, label)` datasets and what was learned while reading them.

    Labels are int32 class ids for multi-class and binary tasks, and float32
    multi-hot vectors `[num_classes]` for multi-label tasks.
    `report` is JSON-serialisable: example counts per split and class, and every
    input that was skipped with the reason (corrupt file, empty text, ...).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset | None
    class_names: list[str]
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    # For inputs cut into windows (long audio clips): the source clip of each test example,
    # so that test metrics average the windows' predictions per clip as the export does.
    test_clip_ids: np.ndarray | None = None
