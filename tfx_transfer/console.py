"""What the console says during slow steps, through `tfx_transfer.log.logger`.

(How a phase ended, and which epoch it kept, is said by `tfx_transfer.best_epoch.BestEpoch`.)

A step that ends within `quiet_seconds` (default 3 s) prints nothing; a longer
one prints a progress line with the count and the time left at most every
`interval` seconds, and one line when it ends.

>>> clock = iter(range(0, 100, 5)).__next__   # a fake clock: 0 s, 5 s, 10 s, ...
>>> progress = Progress("caching features", total=400, unit="examples", clock=clock)
>>> [progress.line(n) for n in (100, 400)]
['caching features: 100/400 examples (25%), 5 s, about 15 s left', 'caching features: 400/400 examples (100%), 10 s']
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
        """Adds `increment` to the count; logs a progress line when the step is slow and `interval` has passed
        (the line of a finished count is `close`'s)."""
        self.count += increment
        now = self.clock()
        if self.total is not None and self.count >= self.total:
            return
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
