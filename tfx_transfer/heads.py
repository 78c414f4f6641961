"""Classification heads: pooling, dropout, optional hidden layers, float32 output."""

import keras

from tfx_transfer.head_kinds import head_kind


def build_head(feature_shape, num_classes: int, config, name: str = "head") -> keras.Model:
    """A head model from backbone features to class probabilities.

    `config` is a `HeadConfig`. Multi-class heads end in a softmax over
    `num_classes`; binary heads in one sigmoid unit (the probability of class
    1); multi-label heads in `num_classes` independent sigmoids. The output is
    float32 under any dtype policy, so losses and exported probabilities stay
    exact under mixed precision.

    >>> from tfx_transfer.recipe import HeadConfig
    >>> head = build_head((7, 7, 32), 3, HeadConfig())
    >>> head.output.shape, head.output.dtype
    ((None, 3), 'float32')
    """
    kind = head_kind(config.kind)
    kind.check_class_count(num_classes)
    inputs = keras.Input(tuple(feature_shape), name="features")
    x = inputs
    if len(feature_shape) == 3:
        pool = keras.layers.GlobalAveragePooling2D if config.pooling == "avg" else keras.layers.GlobalMaxPooling2D
        x = pool(name="pool")(x)
    elif len(feature_shape) != 1:
        raise ValueError(
            f"Head input must be a feature map [h, w, c] or a vector [c], received shape {feature_shape}."
        )
    for i, units in enumerate(config.hidden_units):
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
        x = keras.layers.Dense(units, activation=config.activation, name=f"hidden_{i}")(x)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(
        kind.output_units(num_classes), activation=kind.activation, dtype="float32", name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name=name)

