"""Cached outputs of frozen layers, per split, under typed keys.

A phase whose inputs never change from epoch to epoch (no augmentation) computes what its
frozen layers output once and trains on that: the pooled features of a frozen backbone
(`POOLED_FEATURES`), or the outputs of the frozen blocks before the first trainable one
(`FrozenBlockOutputs`).

>>> FrozenBlockOutputs(("stem", "block_1")) == FrozenBlockOutputs(("stem", "block_1"))
True
"""

import dataclasses

import tensorflow as tf

from tfx_transfer.evaluate import predict_dataset
from tfx_transfer.training.datasets import SPLITS


@dataclasses.dataclass(frozen=True)
class PooledFeatures:
    """Cache key: the backbone's pooled outputs, the input of the head after its pooling."""

    def __str__(self):
        return "backbone features"


@dataclasses.dataclass(frozen=True)
class FrozenBlockOutputs:
    """Cache key: the tensors that leave the frozen blocks `blocks` (the backbone's first blocks)."""

    blocks: tuple[str, ...]

    def __str__(self):
        return f"outputs of the frozen blocks {self.blocks[0]}..{self.blocks[-1]}"


POOLED_FEATURES = PooledFeatures()


class FeatureCache:
    """`(outputs, labels)` arrays per `(split, key)`, computed once with an extractor model."""

    def __init__(self, strategy, batch_size: int, jit_compile):
        self._strategy = strategy
        self._batch_size = batch_size
        self._jit_compile = jit_compile
        self._entries = {}

    def compute(self, key, make_extractor, inputs: dict, length_buckets=None) -> list:
        """The train and validation datasets under `key`; each missing one is `make_extractor()`'s outputs
        on `inputs[split]` (a dataset, or None for a split the data does not have), in batches cut to
        `length_buckets` when given (token inputs). Outputs with a token axis are then stored at each
        example's bucket length (`predict_dataset`), and their dataset's examples have that length."""
        for split in SPLITS:
            if inputs[split] is not None and (split, key) not in self._entries:
                with self._strategy.scope():
                    extractor = make_extractor()
                self._entries[(split, key)] = predict_dataset(
                    extractor, inputs[split], self._batch_size, self._jit_compile, f"caching {key} ({split} split)",
                    length_buckets,
                )
        return [self.dataset(split, key) for split in SPLITS]

    def datasets(self, key) -> dict:
        """`{split: dataset or None}` under `key`, as `inputs` for a `compute` through these outputs."""
        return {split: self.dataset(split, key) for split in SPLITS}

    def dataset(self, split: str, key):
        if (split, key) not in self._entries:
            return None
        outputs, labels = self._entries[(split, key)]
        outputs = tuple(outputs) if isinstance(outputs, list) else outputs  # tf.data stacks lists
        dataset = tf.data.Dataset.from_tensor_slices((outputs, labels))
        if any(isinstance(t, tf.RaggedTensor) for t in tf.nest.flatten(outputs)):
            dataset = dataset.map(lambda x, y: (x, y))  # rows of a ragged tensor come back as plain tensors
        return dataset

    def keep_only(self, keys) -> None:
        """Frees every entry whose key is not in `keys` (frozen-block outputs can be large)."""
        for stale in [entry for entry in self._entries if entry[1] not in keys]:
            del self._entries[stale]
