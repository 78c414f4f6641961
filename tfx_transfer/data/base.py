"""What every modality's input pipeline hands to training and export."""

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

from tfx_transfer.data.split_manifest import SplitManifest


class ServingPreprocessor:
    """One modality's preprocessing, shared by the tf.data pipeline and the serving signatures.

    A subclass sets `raw_key` and `tensor_key` (the input names of `serving_default`
    and `serve_tensor`) and implements `tensor_spec`, `raw_to_inputs`,
    `tensor_to_inputs` and `example_raw_input`. The `*_to_*` methods run inside the
    exported graph, so they use core TensorFlow ops only (no `tf.py_function`, no
    tensorflow-io).

    A preprocessor that cuts one input into several model inputs (the windows of
    a long audio clip, the chunks of a long document) sets `windows` to True and
    implements `raw_to_windows` / `tensor_to_windows`; the export then averages the
    windows' probabilities per input (`tfx_transfer.data.windows.mean_per_group`).

    >>> from tfx_transfer.data.image import ImagePreprocessor
    >>> isinstance(ImagePreprocessor((8, 8)), ServingPreprocessor)
    True
    """

    raw_key: str  # serving_default input name: "image_bytes" | "text" | "audio_wav"
    tensor_key: str  # serve_tensor input name: "image" | "text" | "waveform"
    windows: bool = False

    @property
    def tensor_spec(self) -> tf.TensorSpec:
        """Batched spec of the decoded input taken by `serve_tensor`."""
        raise NotImplementedError

    @property
    def trackables(self) -> tuple:
        """Objects the SavedModel must track besides the model (tokenizer tables, vocabularies)."""
        return ()

    def raw_to_inputs(self, raw: tf.Tensor) -> Any:
        """tf.string `[B]` of raw encoded examples -> batched model inputs."""
        raise NotImplementedError

    def tensor_to_inputs(self, tensor: tf.Tensor) -> Any:
        """Batched decoded input (`tensor_spec`) -> batched model inputs."""
        raise NotImplementedError

    def raw_to_windows(self, raw: tf.Tensor) -> tuple[Any, tf.Tensor]:
        """tf.string `[B]` -> (model inputs of every window `[N, ...]`, index of its input `[N]`)."""
        raise NotImplementedError(f"{type(self).__name__} does not cut inputs into windows.")

    def tensor_to_windows(self, tensor: tf.Tensor) -> tuple[Any, tf.Tensor]:
        """Batched decoded input -> (model inputs of every window `[N, ...]`, index of its input `[N]`)."""
        raise NotImplementedError(f"{type(self).__name__} does not cut inputs into windows.")

    def example_raw_input(self) -> bytes:
        """One valid raw request, replayed by TF Serving at load time (the warm-up file)."""
        raise NotImplementedError


@dataclasses.dataclass
class DataSplits:
    """Unbatched `(model_inputs, label)` datasets and what was learned while reading them.

    Labels are int32 class ids for multi-class and binary tasks, and float32
    multi-hot vectors `[num_classes]` for multi-label tasks.
    `report` is JSON-serialisable: example counts per split and class, and every
    input that was skipped with the reason (corrupt file, empty text, ...).
    `manifest` lists every input the data source read with its portable
    source (a file path relative to `data.path`, `table.csv:row N`,
    `tfds:name/split[i]`), its label and its split, each split in dataset order
    and one row per input (not per window); the run writes it as `splits.csv`.
    Under `multi_worker`, `train` holds this worker's share of the training split
    only (`data.shares`); `report` and `manifest` still describe whole splits.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset | None
    class_names: list[str]
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    # For inputs cut into windows (long texts, long audio clips): the input each validation and test
    # example belongs to, so that validation and test metrics average the windows' predictions per
    # input as the export does.
    test_groups: np.ndarray | None = None
    validation_groups: np.ndarray | None = None
    manifest: SplitManifest | None = None
    # For token inputs: the `LengthBuckets` their batches are cut to (`data.text.bucket_by_length`).
    length_buckets: Any = None

    @property
    def sources(self) -> dict[str, list[str]]:
        """`{split: [source of each input, in dataset order]}` for the splits that have inputs."""
        if self.manifest is None:
            return {}
        by_split = {split: self.manifest.sources(split) for split in ("train", "validation", "test")}
        return {split: sources for split, sources in by_split.items() if sources}
