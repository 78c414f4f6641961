"""A `tf.distribute` strategy and a dtype policy from the recipe's `distribute` section."""

import keras
import numpy as np
import tensorflow as tf

from tfx_transfer.compat.keras_multi_worker import patch_keras_for_multi_worker
from tfx_transfer.config import ConfigError
from tfx_transfer.data.shares import WHOLE, WorkerShare


def make_strategy(config) -> tf.distribute.Strategy:
    """The strategy a `DistributeConfig` names.

    `default` is TensorFlow's default (no-op) strategy on one device;
    `one_device` and `mirrored` take `devices` (e.g. `["/gpu:0", "/gpu:1"]`, all
    local GPUs when empty); `multi_worker` reads `TF_CONFIG` and patches Keras
    (`patch_keras_for_multi_worker`); `tpu` connects to `tpu` (a name or grpc
    address, or the local TPU when unset).
    """
    if config.strategy == "default":
        return tf.distribute.get_strategy()
    if config.strategy == "one_device":
        return tf.distribute.OneDeviceStrategy(config.devices[0] if config.devices else "/cpu:0")
    if config.strategy == "mirrored":
        return tf.distribute.MirroredStrategy(devices=config.devices or None)
    if config.strategy == "multi_worker":
        patch_keras_for_multi_worker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=config.tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes files: False only on non-chief workers of a multi-worker strategy.

    Every worker runs the same steps; only the chief writes checkpoints, logs,
    metrics and exports, and every worker resumes from the chief's `run_dir`
    (which must then be on storage all workers see, e.g. GCS or NFS).
    """
    return bool(strategy.extended.should_checkpoint)


def set_precision(precision: str) -> None:
    """Sets Keras' global dtype policy; call before building models. Heads stay float32."""
    keras.mixed_precision.set_global_policy(precision)


def worker_share(strategy: tf.distribute.Strategy) -> WorkerShare:
    """This worker's share of the training split: its index among the workers of a multi-worker
    strategy, `WHOLE` under any other."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return WHOLE
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if chiefs + workers <= 1:
        return WHOLE
    # TF numbers the chief 0 and the workers after it (multi_worker_util.id_in_cluster).
    index = resolver.task_id if resolver.task_type == "chief" else chiefs + resolver.task_id
    return WorkerShare(index, chiefs + workers)


def from_every_worker(strategy: tf.distribute.Strategy, share: WorkerShare, values) -> np.ndarray:
    """Every worker's `values` (integers, one row per worker, this worker's at `share.index`); with several
    workers a collective, which every worker must call at the same point of the run."""
    row = np.asarray(values, np.int64).reshape(-1)
    if share.count == 1:
        return row[None]
    per_replica = strategy.run(lambda: tf.one_hot(share.index, share.count, dtype=tf.int64)[:, None] * row[None])
    summed = strategy.reduce("SUM", per_replica, axis=None).numpy()
    return summed // (strategy.num_replicas_in_sync // share.count)  # each of a worker's replicas added its row


def per_replica_batch(strategy: tf.distribute.Strategy, global_batch: int) -> int:
    """`data.batch_size` (the global batch) divided among the strategy's replicas; a ConfigError when it
    does not divide evenly."""
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ConfigError(
            f"data.batch_size {global_batch} is the global batch and must be a multiple of the "
            f"{replicas} replicas of distribute.strategy, e.g. {replicas * max(1, global_batch // replicas)}."
        )
    return global_batch // replicas
