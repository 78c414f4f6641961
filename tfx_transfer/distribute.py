"""A `tf.distribute` strategy and a dtype policy from the recipe's `distribute` section."""

import keras
import tensorflow as tf

from tfx_transfer.compat.keras_multi_worker import patch_keras_for_multi_worker


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
