"""Small TF2 SavedModels in the TF-Hub conventions, built inside tests (no hub downloads)."""

import numpy as np
import tensorflow as tf


def _hub_object(call, variables, trainable_variables, regularization_losses=()):
    """A trackable root in the TF-Hub reusable SavedModel convention."""
    root = tf.train.Checkpoint()
    root.__call__ = call
    root.variables = list(variables)
    root.trainable_variables = list(trainable_variables)
    root.regularization_losses = list(regularization_losses)
    return root


def save_dense_module(path, input_dim=4, output_dim=3, seed=0, l2=0.01):
    """`__call__(x [B, input_dim] float32, training)` -> `x @ kernel + bias`, in the TF-Hub convention.

    Has a non-trainable `moving_mean` that the call updates only when
    `training=True` (like BatchNorm), and an L2 regularization loss on the kernel.
    """
    rng = np.random.default_rng(seed)
    kernel = tf.Variable(rng.normal(size=(input_dim, output_dim)).astype("float32"), name="dense/kernel")
    bias = tf.Variable(np.zeros(output_dim, "float32"), name="dense/bias")
    moving_mean = tf.Variable(np.zeros(input_dim, "float32"), trainable=False, name="norm/moving_mean")

    @tf.function
    def call(x, training=False):
        if training:
            moving_mean.assign(0.9 * moving_mean + 0.1 * tf.reduce_mean(x, axis=0))
        return tf.matmul(x, kernel) + bias

    spec = tf.TensorSpec([None, input_dim], tf.float32)
    for training in (True, False):
        call.get_concrete_function(spec, training)
    regularizer = tf.function(lambda: l2 * tf.reduce_sum(tf.square(kernel)), input_signature=[])
    root = _hub_object(call, [kernel, bias, moving_mean], [kernel, bias], [regularizer])
    tf.saved_model.save(root, str(path))
    return path


def save_tf1_module(path, input_dim=3, output_dim=2):
    """A TF1-format SavedModel (graph + `default` signature), as old TF-Hub modules are."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, input_dim], name="x")
        w = tf.compat.v1.get_variable("w", [input_dim, output_dim], initializer=tf.compat.v1.ones_initializer())
        y = tf.matmul(x, w)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(path))
            signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"default": y})
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"default": signature})
            builder.save()
    return path
