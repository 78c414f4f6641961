"""Every workaround of an upstream Keras / TensorFlow / KerasHub / TF-Hub bug, one module each.

Each module names its upstream issue, says when to remove it, and has a pinned test in
`tests/compat/` that fails once the upstream bug is fixed:

- `keras_multi_worker`: `fit` under MultiWorkerMirroredStrategy (keras-team/keras#20585).
- `keras_fit`: `fit` never clears `model._initial_epoch` (BackupAndRestore's resume hook).
- `feature_extractor`: `base(x, training=False)` ignored by `fit` (keras-team/keras#23364).
- `keras_clone_graph`: `keras.Model(intermediate_tensors, ...)` re-points a `keras.Input`.
- `kerashub_accents`: KerasHub keeps accents for uncased Hugging Face BERT tokenizers.
- `hub_variables`: TF-Hub SavedModel variables wrapped as Keras 3 variables (tensorflow/hub#903).

One workaround lives beside its only caller: `tfx_transfer.storage` lists local folders with
`os`, because `tf.io.gfile` decodes listed names strictly and fails on names that are not UTF-8
(pinned in `tests/compat/test_gfile_names.py`).
"""
