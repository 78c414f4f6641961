"""Worker shares of the training split: disjoint, covering, equal step counts; whole splits elsewhere."""

import numpy as np
import pytest
import tensorflow as tf

from tfx_transfer.config import ConfigError
from tfx_transfer.data.shares import WorkerShare, reading_share
from tfx_transfer.data.sources import PooledExamples, choose_splits
from tfx_transfer.recipe import DataConfig
from tfx_transfer.training.datasets import batch_dataset


@pytest.mark.parametrize("examples", [3, 7, 13, 24])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shares_are_disjoint_and_cover_the_split(examples, workers):
    indices = np.random.default_rng(examples).permutation(100)[:examples]
    shares = [WorkerShare(w, workers).take(indices) for w in range(workers)]
    taken = np.concatenate(shares)
    assert len(taken) == len(set(taken.tolist())) == examples
    assert set(taken.tolist()) == set(indices.tolist())
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.parametrize("examples", [7, 13, 24])
@pytest.mark.parametrize("workers, global_batch", [(2, 4), (3, 6), (2, 8)])
def test_every_worker_takes_the_steps_of_the_largest_share(examples, workers, global_batch):
    """As `PhaseRunner._share_batching` batches each share (one replica per worker)."""
    per_worker = global_batch // workers
    shares = [WorkerShare(w, workers).take(np.arange(examples)) for w in range(workers)]
    steps = max(-(-len(share) // per_worker) for share in shares)
    for share in shares:
        pairs = tf.data.Dataset.from_tensor_slices((share.astype("float32")[:, None], np.zeros(len(share), "int32")))
        batches = batch_dataset(pairs, per_worker, "multiclass", 2, shuffle_seed=0, examples=steps * per_worker)
        sizes = [len(y) for _, y in batches]
        assert sizes == [per_worker] * steps
        seen = np.concatenate([x.numpy().ravel() for x, _ in batches]).astype(int)
        assert set(seen.tolist()) == set(share.tolist())  # a smaller share starts over; none is left out


def test_choose_splits_reads_the_worker_share_and_reports_whole_splits():
    examples = PooledExamples([f"{i}.png" for i in range(20)], np.array([0, 1] * 10))
    config = DataConfig(validation_fraction=0.2, test_fraction=0.2)
    whole = choose_splits(examples, ["a", "b"], config, seed=0)
    shares = []
    for worker in range(2):
        with reading_share(WorkerShare(worker, 2)):
            chosen = choose_splits(examples, ["a", "b"], config, seed=0)
        for split in ("validation", "test"):
            np.testing.assert_array_equal(chosen.read[split], whole.indices[split])
        for split in ("train", "validation", "test"):
            np.testing.assert_array_equal(chosen.indices[split], whole.indices[split])
        assert chosen.manifest == whole.manifest
        shares.append(chosen.read["train"])
    assert not set(shares[0]) & set(shares[1])
    assert sorted(np.concatenate(shares).tolist()) == sorted(whole.indices["train"].tolist())
    np.testing.assert_array_equal(whole.read["train"], whole.indices["train"])


def test_fewer_training_examples_than_workers_is_a_config_error():
    examples = PooledExamples(["a.png", "b.png"], np.array([0, 1]), data_splits=["train", "train"])
    config = DataConfig(validation_fraction=0.0, test_fraction=0.0)
    with reading_share(WorkerShare(0, 3)), pytest.raises(ConfigError, match="fewer than the 3 workers"):
        choose_splits(examples, ["a", "b"], config, seed=0)
