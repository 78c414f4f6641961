"""TFDS datasets by name, offline-safe: an explicit `data_dir` and `download` flag, never a silent hang."""

from tfx_transfer.config import ConfigError


def load_tfds_splits(config):
    """`({"train": ds, "validation": ds|None, "test": ds|None}, info)` of supervised `(x, y)` pairs.

    Split names come from `data.tfds_splits` (e.g. `{train: "train[:80%]", test:
    "test"}`); by default the dataset's own `train`/`validation`/`test` are used
    and missing ones are sliced off `train` by `data.validation_fraction` and
    `data.test_fraction`.
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
    datasets = {
        name: builder.as_dataset(split=spec, as_supervised=True, shuffle_files=False)
        for name, spec in splits.items()
    }
    return {s: datasets.get(s) for s in ("train", "validation", "test")}, builder.info


def split_specs(config, info) -> dict[str, str]:
    """`{"train": "train[:80%]", ...}`: the TFDS split each of our splits reads."""
    return dict(config.tfds_splits) or _default_splits(info.splits, config)


def example_sources(config, info, datasets) -> dict[str, list[str]]:
    """`{split: ["tfds:name/spec[i]", ...]}` for every split whose length is known."""
    specs = split_specs(config, info)
    sources = {}
    for split, ds in datasets.items():
        size = int(ds.cardinality()) if ds is not None else -1
        if size >= 0:
            sources[split] = [f"tfds:{config.tfds_name}/{specs[split]}[{i}]" for i in range(size)]
    return sources


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
