"""What a worker process's training pipeline decodes and caches: for multi-worker tests and benchmarks.

Call `record_decoding_and_caching()` before `train`; the returned list and dict fill as training
runs: the training image files the loader decodes, and the training rows of each cache entry.
"""


def record_decoding_and_caching() -> tuple[list, dict]:
    """Wraps the image loader and `FeatureCache.compute`; returns `(decoded paths, {cache key: rows})`."""
    import tfx_transfer.data.image as image
    from tfx_transfer.training.cache import FeatureCache

    decoded, cached = [], {}
    load_data, compute = image.load_data, FeatureCache.compute

    def recording_load_data(recipe, backbone):
        splits = load_data(recipe, backbone)
        decoded.extend(path.decode() for path, _ in splits.train._input_dataset.as_numpy_iterator())
        return splits

    def recording_compute(self, key, *args, **kwargs):
        datasets = compute(self, key, *args, **kwargs)
        cached[str(key)] = len(self._entries[("train", key)][1])
        return datasets

    image.load_data, FeatureCache.compute = recording_load_data, recording_compute
    return decoded, cached
