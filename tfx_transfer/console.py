"""What the console says during slow steps and at the end of a phase, through `tfx_transfer.log.logger`.

A step that ends within `quiet_seconds` (default 3 s) prints nothing; a longer
one prints a progress line with the count and the time left at most every
`interval` seconds, and one line when it ends.

>>> clock = iter(range(0, 100, 5)).__next__   # a fake clock: 0 s, 5 s, 10 s, ...
>>> progress = Progress("caching features", total=400, unit="examples", clock=clock)
>>> [progress.line(n) for n in (100, 400)]
['caching features: 100/400 examples (25%), 5 s, about 15 s left', 'caching features: 400/400 examples (100%), 10 s']
>>> phase_end_message("fine_tune", epochs_run=14, epochs_planned=40, stopped_epoch=14, kept_epoch=11,
...                   monitor="val_loss", best=0.2134)
"phase 'fine_tune': early stopping stopped it after epoch 14 of 40; kept the weights of epoch 11 (best val_loss 0.2134)."
"""

import time

from tfx_transfer.log import logger


class Progress:
    """A count with elapsed time and ETA, logged at most every `interval` seconds once a step is slow."""

    def __init__(self, what: str, total: int | None = None, unit: str = "examples", interval: float = 10.0,
                 quiet_seconds: float = 3.0, clock=time.monotonic):
        self.what, self.total, self.unit = what, total, unit
        self.interval, self.quiet_seconds, self.clock = interval, quiet_seconds, clock
        self.count = 0
        self.start = clock()
        self._last_logged = self.start
        self._logged = False

    def update(self, increment: int = 1) -> None:
        """Adds `increment` to the count; logs a progress line when the step is slow and `interval` has passed."""
        self.count += increment
        now = self.clock()
        if now - self.start >= self.quiet_seconds and (not self._logged or now - self._last_logged >= self.interval):
            logger.info(self.line(self.count, now))
            self._last_logged, self._logged = now, True

    def close(self) -> None:
        """Logs the final count and time, if the step was slow enough to be reported."""
        now = self.clock()
        if self._logged or now - self.start >= self.quiet_seconds:
            logger.info(self.line(self.count, now, final=True))

    def line(self, count: int, now: float | None = None, final: bool | None = None) -> str:
        """The progress line for `count` done at time `now` (default: the clock's); `final` drops the ETA."""
        now = self.clock() if now is None else now
        final = self.total is not None and count >= self.total if final is None else final
        elapsed = now - self.start
        if self.total:
            text = f"{self.what}: {count:,}/{self.total:,} {self.unit} ({100 * count / self.total:.0f}%), {duration(elapsed)}"
            if not final and 0 < count < self.total:
                text += f", about {duration(elapsed * (self.total - count) / count)} left"
            return text
        return f"{self.what}: {count:,} {self.unit}, {duration(elapsed)}"


def track(iterable, what: str, total: int | None = None, unit: str = "examples", size=lambda item: 1, **options):
    """Yields from `iterable`, counting `size(item)` per item in a `Progress` (e.g. the batch size of a batch).

    >>> list(track(range(3), "reading"))
    [0, 1, 2]
    """
    progress = Progress(what, total, unit, **options)
    for item in iterable:
        yield item
        progress.update(size(item))
    progress.close()


def duration(seconds: float) -> str:
    """`12 s`, `2 min 05 s`, `1 h 03 min`.

    >>> duration(4.2), duration(125), duration(3790)
    ('4 s', '2 min 05 s', '1 h 03 min')
    """
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def phase_end_message(phase: str, epochs_run: int, epochs_planned: int, stopped_epoch: int | None,
                      kept_epoch: int | None, monitor: str = "val_loss", best: float | None = None) -> str:
    """One line on how a phase ended: stopped early (at which epoch) or ran all epochs, and whose weights it kept.

    Epochs are 1-based; `stopped_epoch` is None when the phase ran all epochs,
    `kept_epoch` None when it kept its last weights.

    >>> phase_end_message("head", 5, 5, None, None)
    "phase 'head': ran all 5 epochs; kept the weights of the last epoch (5)."
    """
    if stopped_epoch is not None:
        ended = f"early stopping stopped it after epoch {stopped_epoch} of {epochs_planned}"
    else:
        ended = f"ran all {epochs_planned} epochs" if epochs_run == epochs_planned else f"ran {epochs_run} epochs"
    if kept_epoch is None:
        kept = f"kept the weights of the last epoch ({epochs_run})"
    else:
        kept = f"kept the weights of epoch {kept_epoch}" + (f" (best {monitor} {best:.4f})" if best is not None else "")
    return f"phase {phase!r}: {ended}; {kept}."


def early_stopping_outcome(callback) -> dict:
    """`stopped_epoch`, `kept_epoch` (1-based or None), `monitor` and `best` of a finished `keras.callbacks.EarlyStopping`.

    Keras numbers epochs from 0 and uses `stopped_epoch == 0` for "did not
    stop"; with `restore_best_weights` it restores the best epoch's weights
    whether or not it stopped.
    """
    restored = bool(callback.restore_best_weights and callback.best_weights is not None)
    return {
        "stopped_epoch": callback.stopped_epoch + 1 if callback.stopped_epoch > 0 else None,
        "kept_epoch": callback.best_epoch + 1 if restored else None,
        "monitor": callback.monitor,
        "best": float(callback.best) if restored else None,
    }
