"""Windows: one input cut into several model inputs, whose probabilities are averaged per input.

Audio cuts long clips into windows (`data.audio.long_clips: windows`), text long
documents into token windows (`data.text.long_texts: windows`). Evaluation and
export both call `mean_per_group`, so test metrics measure exactly what the
exported model serves.

>>> import numpy as np
>>> mean_per_group(np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8]]), np.array([0, 0, 1]), 2).numpy().tolist()
[[0.5, 0.5], [0.20000000298023224, 0.800000011920929]]
"""

import tensorflow as tf


def mean_per_group(probabilities, group_ids, num_groups):
    """float32 `[num_groups, classes]`: the mean of the rows of `probabilities` with each group id.

    `group_ids` are ints in `[0, num_groups)`, one per row; works in graphs (the
    serving signatures) and eagerly (evaluation).
    """
    probabilities = tf.cast(probabilities, tf.float32)
    return tf.math.unsorted_segment_mean(probabilities, group_ids, num_groups)
