"""The parts of the full model a phase trains or computes cached inputs with; all share its layers.

The head is a nested `keras.Model` whose first layer may be a parameter-free pooling
named `pool`: cached features are taken after it, so they are vectors, not feature maps.
"""

import keras


def pooled(head: keras.Model, backbone_output):
    """The head's parameter-free pooling of `backbone_output`, if it has one."""
    try:
        return head.get_layer("pool")(backbone_output)
    except ValueError:
        return backbone_output


def features_model(model: keras.Model, head: keras.Model) -> keras.Model:
    """The model's inputs to the pooled backbone features: what a frozen backbone's cache holds."""
    return keras.Model(model.input, pooled(head, model.get_layer("backbone").output), name="features")


def head_on_features(head: keras.Model) -> keras.Model:
    """The part of the head after its pooling, which trains on cached pooled features."""
    try:
        pool = head.get_layer("pool")
    except ValueError:
        return head
    return keras.Model(pool.output, head.output, name="head_on_features")


def on_frozen_prefix(prefix, top, name: str) -> keras.Model:
    """`top` (the head, or its pooling) on the trainable blocks of `prefix` (a `FrozenPrefix`), from the
    outputs of its frozen blocks (a dict keyed as the prefix's outputs)."""
    inputs = {name: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=name) for name, t in prefix.prefix.output.items()}
    return keras.Model(inputs, top(prefix.apply_suffix(inputs)), name=name)
