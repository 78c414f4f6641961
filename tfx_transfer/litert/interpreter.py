"""Runs a `.tflite` model in the `ai-edge-litert` interpreter: batched predictions and latency.

Example:

```python
runner = LiteRTRunner(open("model.tflite", "rb").read(), num_threads=2)
probabilities = runner.predict({"image": images_uint8})   # float32 [N, num_classes]
milliseconds = runner.latency_ms({"image": images_uint8[:1]}, runs=20)
```
"""

import time

import numpy as np

LITERT_PIP_LINE = "pip install ai-edge-litert"


class LiteRTRunner:
    """The `serving_default` signature of one LiteRT model, on `num_threads` CPU threads."""

    def __init__(self, flatbuffer: bytes, num_threads: int = 1):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModuleNotFoundError(
                f"Running LiteRT models needs the ai-edge-litert package. Install it with: {LITERT_PIP_LINE}"
            ) from None
        self._interpreter = Interpreter(model_content=flatbuffer, num_threads=int(num_threads))
        self._signature = self._interpreter.get_signature_runner("serving_default")
        self.input_details = self._signature.get_input_details()

    def predict(self, inputs: dict, batch_size: int = 32) -> np.ndarray:
        """`probabilities` float32 `[N, num_classes]` for a dict of input arrays with N rows each."""
        missing = sorted(set(self.input_details) - set(inputs))
        if missing:
            raise ValueError(f"The LiteRT model needs inputs {sorted(self.input_details)}, missing {missing}.")
        rows = len(next(iter(inputs.values())))
        parts = []
        for start in range(0, rows, batch_size):
            batch = {
                name: as_input_dtype(inputs[name][start : start + batch_size], detail["dtype"])
                for name, detail in self.input_details.items()
            }
            parts.append(self._signature(**batch)["probabilities"])
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def latency_ms(self, single: dict, runs: int = 50) -> float:
        """Median milliseconds of one call on a batch of one example, after one warm-up call."""
        batch = {name: as_input_dtype(single[name], detail["dtype"]) for name, detail in self.input_details.items()}
        self._signature(**batch)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self._signature(**batch)
            times.append(time.perf_counter() - start)
        return float(np.median(times) * 1000)


def as_input_dtype(array, dtype) -> np.ndarray:
    """`array` as `dtype`; float pixels become integers by rounding and clipping, never by truncation.

    >>> as_input_dtype(np.array([0.6, 254.7, 300.0]), np.uint8).tolist()
    [1, 255, 255]
    """
    array = np.asarray(array)
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer) and np.issubdtype(array.dtype, np.floating):
        info = np.iinfo(dtype)
        array = np.clip(np.rint(array), info.min, info.max)
    return array.astype(dtype, copy=False)
