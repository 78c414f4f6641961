"""TFDS datasets by name, offline-safe: an explicit `data_dir` and `download` flag, never a silent hang."""

import numpy as np
import tensorflow as tf

from tfx_transfer.config import ConfigError


def load_tfds_splits(config, decode_inputs: bool = True):
    """`({"train": ds, "validation": ds|None, "test": ds|None}, info)` of supervised `(x, y)` pairs.

    Split names come from `data.tfds_splits` (e.g. `{train: "train[:80%]", test:
    "test"}`); by default the dataset's own `train`/`validation`/`test` are used
    and missing ones are sliced off `train` by `data.validation_fraction` and
    `data.test_fraction`. With `decode_inputs=False`, `x` is left encoded (e.g.
    image bytes; decode it with `info.features[info.supervised_keys[0]]`).
    """
    import tensorflow_datasets as tfds

    if not config.tfds_name:
        raise ConfigError("data.tfds_name: a TFDS dataset name is required for data.source 'tfds'.")
    try:
        builder = tfds.builder(config.tfds_name, data_dir=config.data_dir)
        if config.download:
            builder.download_and_prepare()
        elif not builder.is_prepared():
            raise ConfigError(
                f"TFDS dataset {config.tfds_name!r} is not prepared under data_dir "
                f"{builder.data_dir_root!r} and data.download is false. Set data.download: true "
                "(needs internet) or point data.data_dir at a prepared copy."
            )
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"TFDS dataset {config.tfds_name!r} could not be loaded: {e}") from e
    splits = split_specs(config, builder.info)
    unknown = set(splits) - {"train", "validation", "test"}
    if unknown or "train" not in splits:
        raise ConfigError(
            f"data.tfds_splits: keys must be train, validation, test (train required), received {sorted(splits)}."
        )
    decoders = None if decode_inputs else {builder.info.supervised_keys[0]: tfds.decode.SkipDecoding()}
    datasets = {
        name: builder.as_dataset(split=spec, as_supervised=True, shuffle_files=False, decoders=decoders)
        for name, spec in splits.items()
    }
    return {s: datasets.get(s) for s in ("train", "validation", "test")}, builder.info


def split_specs(config, info) -> dict[str, str]:
    """`{"train": "train[:80%]", ...}`: the TFDS split each of our splits reads."""
    return dict(config.tfds_splits) or _default_splits(info.splits, config)


def example_sources(config, info, split: str, size: int) -> list[str]:
    """`["tfds:name/train[i]", ...]` for the `size` examples our `split` reads, `i` the index in the whole TFDS split.

    Indices in the whole TFDS split do not depend on the fractions that carve
    validation and test out of `train`, so a split manifest matches across
    recipes. A split whose size TFDS does not record (`tfds.testing.mock_data`)
    keeps indices within its spec instead: `tfds:name/train[:70%][i]`.
    """
    import tensorflow_datasets as tfds

    spec = split_specs(config, info)[split]
    try:
        instructions = tfds.core.ReadInstruction.from_spec(spec).to_absolute(info.splits)
    except ValueError:  # a split TFDS has no size for
        instructions = []
    sources = []
    for instruction in instructions:
        total = info.splits[instruction.splitname].num_examples
        start, stop, _ = slice(instruction.from_, instruction.to).indices(total)
        sources += [f"tfds:{config.tfds_name}/{instruction.splitname}[{i}]" for i in range(start, stop)]
    if len(sources) != size:
        return [f"tfds:{config.tfds_name}/{spec}[{i}]" for i in range(size)]
    return sources


def select_examples(datasets, sizes, indices) -> tf.data.Dataset:
    """The examples at sorted `indices` of `datasets` (of `sizes` examples) taken as one, in order.

    A dataset wholly selected is used as it is; from the others the examples
    are filtered by position, before anything downstream (decoding) runs.
    """
    indices = np.asarray(indices)
    parts, start = [], 0
    for dataset, size in zip(datasets, sizes):
        local = indices[(indices >= start) & (indices < start + size)] - start
        start += size
        if len(local) == size:
            parts.append(dataset)
        elif len(local):
            keep = tf.constant(np.isin(np.arange(size), local))
            parts.append(dataset.enumerate().filter(lambda i, example: keep[i]).map(lambda i, example: example))
    selected = parts[0]
    for part in parts[1:]:
        selected = selected.concatenate(part)
    return selected.apply(tf.data.experimental.assert_cardinality(len(indices)))


def _default_splits(available, config) -> dict[str, str]:
    splits = {"train": "train"}
    carve = []
    for name, fraction in (("validation", config.validation_fraction), ("test", config.test_fraction)):
        if name in available:
            splits[name] = name
        elif fraction:
            carve.append((name, fraction))
    start = 100
    for name, fraction in reversed(carve):
        size = int(round(fraction * 100))
        splits[name] = f"train[{start - size}%:{start}%]"
        start -= size
    if carve:
        splits["train"] = f"train[:{start}%]"
    return splits


def label_names(info, supervised_key_index: int = 1) -> list[str]:
    label_key = info.supervised_keys[supervised_key_index]
    return list(info.features[label_key].names)
