"""Seeded, stratified train/validation/test splits that keep groups (speakers, source files) together."""

import numpy as np


def stratified_split(labels, validation_fraction: float, test_fraction: float, seed: int, groups=None):
    """Index arrays `(train, validation, test)`, stratified by label and reproducible from `seed`.

    With `groups`, whole groups are assigned to one split (clips of one
    recording or one speaker never cross splits); each group is stratified by
    its most common label.

    >>> train, val, test = stratified_split([0] * 10 + [1] * 10, 0.2, 0.2, seed=0)
    >>> len(train), len(val), len(test)
    (12, 4, 4)
    """
    labels = np.asarray(labels)
    if groups is None:
        groups = np.arange(len(labels))
    groups = np.asarray(groups)
    group_ids, inverse = np.unique(groups, return_inverse=True)
    group_label = np.array([np.bincount(labels[inverse == g]).argmax() for g in range(len(group_ids))])
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(group_ids), dtype=np.int8)  # 0 train, 1 validation, 2 test
    for label in np.unique(group_label):
        members = rng.permutation(np.flatnonzero(group_label == label))
        n_test = int(round(test_fraction * len(members)))
        n_val = int(round(validation_fraction * len(members)))
        if n_test + n_val >= len(members):  # keep at least one training group per class
            n_test = min(n_test, max(len(members) - 1, 0))
            n_val = max(min(n_val, len(members) - 1 - n_test), 0)
        assignment[members[:n_test]] = 2
        assignment[members[n_test : n_test + n_val]] = 1
    per_example = assignment[inverse]
    return tuple(np.flatnonzero(per_example == k) for k in range(3))


def class_counts(labels, class_names) -> dict[str, int]:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    return {name: int(n) for name, n in zip(class_names, counts)}
