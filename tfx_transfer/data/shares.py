"""Each worker's share of the training split under `multi_worker`: the examples it reads and decodes.

`pipeline.prepare` loads the data inside `reading_share(share)`; `sources.choose_splits` then
gives each loader the training indices of this worker's share only (`ChosenSplits.read`), so
no worker decodes, augments or caches the examples of another. Validation and test are read
whole on every worker, and the split manifest and example counts always describe whole splits.

>>> WorkerShare(1, 3).take(np.arange(10)).tolist()
[1, 4, 7]
>>> with reading_share(WorkerShare(1, 2)):
...     current_share()
WorkerShare(index=1, count=2)
>>> current_share()
WorkerShare(index=0, count=1)
"""

import contextlib
import contextvars
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class WorkerShare:
    """Worker `index` of `count` workers; `WorkerShare(0, 1)` (one worker) reads everything."""

    index: int
    count: int

    def take(self, indices) -> np.ndarray:
        """This worker's part of `indices`: every `count`-th from position `index` (disjoint across workers,
        together all of `indices`, sizes within one of each other)."""
        return np.asarray(indices)[self.index :: self.count]

    def shuffle_seed(self, seed: int) -> int:
        """The seed this worker shuffles its share with: `seed` for one worker, another one per worker.

        With one seed for all, every share is shuffled alike, so position j of every share meets in
        the same global batch in every epoch (benchmarks/RESULTS.md, issue 17).

        >>> WHOLE.shuffle_seed(42), WorkerShare(0, 2).shuffle_seed(42), WorkerShare(1, 2).shuffle_seed(42)
        (42, 42, 1042)
        """
        return seed + 1000 * self.index


WHOLE = WorkerShare(0, 1)
_SHARE = contextvars.ContextVar("worker_share", default=WHOLE)


@contextlib.contextmanager
def reading_share(share: WorkerShare):
    """Within the block, data loaders read `share` of the training split."""
    token = _SHARE.set(share)
    try:
        yield share
    finally:
        _SHARE.reset(token)


def current_share() -> WorkerShare:
    """The share loaders read now: `WHOLE` outside `reading_share`."""
    return _SHARE.get()
