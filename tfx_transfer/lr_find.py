"""The learning-rate finder: a short exponential sweep of the rate, then the weights put back.

Leslie Smith's range test as fastai's `Learner.lr_find` runs it: one batch per step, the rate
growing from `start` to `end` exponentially over at most `steps` steps, stopping when the smoothed
loss exceeds `stop_factor` times its minimum. The model's weights (BatchNorm statistics
included) and its optimizer's variables are restored bit for bit afterwards, so the sweep leaves
no trace. Two suggestions come from the smoothed curve, with fastai's rules: `valley` (about
two thirds down the longest descending stretch; fastai's default) and `steepest` (where the loss
falls fastest per log-rate).

The model must be compiled with an optimizer whose learning rate is a float (Keras cannot set a
schedule's rate); multipliers of a `Layerwise*` optimizer stay in force, so the sweep moves the
base rate of a layer-wise phase.

Example:

```python
model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
result = find_learning_rate(model, train_batches, out_dir="runs/flowers/lr_find")
print(result.valley, result.steepest)   # and runs/flowers/lr_find/lr_find.{csv,png}
```
"""

import dataclasses
import io
import math

import keras
import numpy as np

from tfx_transfer import storage
from tfx_transfer.log import logger

MAX_STEPS = 1000
# Where a run keeps its phases' sweeps: run_dir/lr_find/<phase>.csv and .png.
RUN_SUBDIR = "lr_find"
# Steps a sweep needs so that suggestions have points left after fastai's trimming.
MIN_STEPS = 20
TRAILING_STEPS_DROPPED = 5


@dataclasses.dataclass
class LRFindResult:
    """What a sweep measured and suggests; `valley`/`steepest` are None when too few steps survived."""

    learning_rates: list
    losses: list
    smoothed_losses: list
    valley: float | None
    steepest: float | None
    diverged: bool
    csv_path: str | None = None
    plot_path: str | None = None


def find_learning_rate(
    model, dataset, start=1e-7, end=10.0, steps=100, stop_factor=4.0, smoothing=0.98, class_weight=None, out_dir=None,
    name="lr_find",
) -> LRFindResult:
    """Sweeps the learning rate of compiled `model` over batches of `dataset` (repeated as needed).

    `dataset` yields batched `(inputs, targets)` as `fit` takes them. With `out_dir`, writes
    `<name>.csv` (step, learning_rate, loss, smoothed_loss) and `<name>.png` there.
    """
    check_arguments(start, end, steps, stop_factor, smoothing)
    optimizer = _settable_optimizer(model)
    with model.distribute_strategy.scope():
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
    weights = [v.numpy() for v in model.weights]
    optimizer_state = [v.numpy() for v in optimizer.variables]
    rates, losses, smoothed = [], [], []
    diverged, average, best = False, 0.0, math.inf
    try:
        for step, (inputs, targets) in enumerate(dataset.repeat().take(steps)):
            rate = start * (end / start) ** (step / steps)
            optimizer.learning_rate = rate
            model.reset_metrics()
            loss = float(model.train_on_batch(inputs, targets, class_weight=class_weight, return_dict=True)["loss"])
            average = smoothing * average + (1 - smoothing) * loss
            smooth = average / (1 - smoothing ** (step + 1))
            rates.append(rate)
            losses.append(loss)
            smoothed.append(smooth)
            best = min(best, smooth)
            if not math.isfinite(smooth) or smooth > stop_factor * best:
                diverged = True
                break
    finally:
        for variable, value in zip(model.weights, weights):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, optimizer_state):
            variable.assign(value)
        model.reset_metrics()
    valley, steepest = suggest(rates, smoothed, steps)
    result = LRFindResult(rates, losses, smoothed, valley, steepest, diverged)
    if out_dir is not None:
        result.csv_path = _write_csv(result, storage.join(out_dir, f"{name}.csv"))
        result.plot_path = _write_plot(result, storage.join(out_dir, f"{name}.png"))
    if valley is None:
        logger.warning(
            f"lr-find: the loss diverged after {len(rates)} of {steps} steps, too early to suggest a rate; "
            f"lower the start rate (was {start:g}) or raise the number of steps."
        )
    else:
        logger.info(
            f"lr-find: {len(rates)} steps from {rates[0]:.1e} to {rates[-1]:.1e}"
            + (" (stopped: the loss diverged)" if diverged else "")
            + f"; suggested learning rate {valley:.2e} (valley), {steepest:.2e} (steepest)"
        )
    return result


def suggest(rates, smoothed_losses, steps) -> tuple[float | None, float | None]:
    """`(valley, steepest)` from a sweep, on the points fastai keeps: the first tenth of the planned
    `steps` and the last few recorded steps are dropped, and everything from the first NaN on."""
    rates = np.asarray(rates[steps // 10 : -TRAILING_STEPS_DROPPED], dtype=np.float64)
    losses = np.asarray(smoothed_losses[steps // 10 : -TRAILING_STEPS_DROPPED], dtype=np.float64)
    not_finite = np.flatnonzero(~np.isfinite(losses))
    if not_finite.size:
        rates, losses = rates[: not_finite[0]], losses[: not_finite[0]]
    if len(losses) < 3:
        return None, None
    return valley(rates, losses), steepest(rates, losses)


def valley(rates, losses) -> float:
    """The rate about two thirds down the longest strictly descending subsequence of `losses` (fastai's
    `valley`, by ESRI).

    >>> valley([1, 2, 3, 4, 5, 6, 7], [5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 9.0])
    3.0
    """
    n = len(losses)
    lengths = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lengths[i] < lengths[j] + 1:
                lengths[i] = lengths[j] + 1
            if lengths[end] < lengths[i]:
                end, start = i, i - lengths[i]
    sections = (end - start) / 3
    return float(rates[start + int(sections) + int(sections / 2)])


def steepest(rates, losses) -> float:
    """The rate at which the loss falls fastest per unit of log-rate (fastai's `steep`).

    >>> steepest([1.0, 10.0, 100.0, 1000.0], [3.0, 2.9, 1.0, 1.5])
    10.0
    """
    rates, losses = np.asarray(rates, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    slopes = np.diff(losses) / np.diff(np.log(rates))
    return float(rates[int(np.argmin(slopes))])


def check_arguments(start, end, steps, stop_factor=4.0, smoothing=0.98):
    """Raises ValueError naming the first argument of a sweep that is out of range."""
    if not 0 < start < end:
        raise ValueError(f"lr-find needs 0 < start < end, received start={start}, end={end}.")
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(f"lr-find steps must be in [{MIN_STEPS}, {MAX_STEPS}], received {steps}.")
    if stop_factor <= 1:
        raise ValueError(f"lr-find stop_factor must be above 1, received {stop_factor}.")
    if not 0 <= smoothing < 1:
        raise ValueError(f"lr-find smoothing must be in [0, 1), received {smoothing}.")


def _settable_optimizer(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError("lr-find needs a compiled model: call model.compile(optimizer, loss) first.")
    try:
        # convert_to_numpy, not float(): float() of a rate variable created under MirroredStrategy raises TypeError
        optimizer.learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, AttributeError):  # a LearningRateSchedule; MultiOptimizer has no single rate
        raise ValueError(
            f"lr-find sets the learning rate at every step, but {type(optimizer).__name__} has no float "
            "learning rate to set (a LearningRateSchedule, or several optimizers); compile the model with an optimizer built from a float learning rate."
        ) from None
    return optimizer


def _write_csv(result, path) -> str:
    rows = ["step,learning_rate,loss,smoothed_loss"] + [
        f"{i},{rate:.6e},{loss:.6g},{smooth:.6g}"
        for i, (rate, loss, smooth) in enumerate(zip(result.learning_rates, result.losses, result.smoothed_losses))
    ]
    storage.write_text_atomic(path, "\n".join(rows) + "\n")
    return path


def _write_plot(result, path) -> str:
    """Smoothed loss against the learning rate (log axis) with both suggestions, as fastai plots it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    keep = max(len(result.learning_rates) - TRAILING_STEPS_DROPPED, 1)
    axes.plot(result.learning_rates[:keep], result.smoothed_losses[:keep])
    for name, rate, marker in (("valley", result.valley, "o"), ("steepest", result.steepest, "s")):
        if rate is not None:
            at = int(np.argmin(np.abs(np.log(result.learning_rates) - math.log(rate))))
            axes.plot(rate, result.smoothed_losses[at], marker, label=f"{name} {rate:.1e}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("smoothed training loss")
    if result.valley is not None:
        axes.legend(loc="best")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    storage.write_bytes_atomic(path, buffer.getvalue())
    return path
