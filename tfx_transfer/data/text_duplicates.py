"""Validation and test texts that are copies of training texts: a leak that makes test metrics overstate.

Texts are compared after collapsing runs of whitespace, so a copy that differs only
in line breaks or trailing spaces still counts. Nothing is dropped: the data
report counts the copies per split and names a few, and the run warns.

>>> found = copies_of_training_texts(
...     {"train": ["A goal.", "A vote."], "test": ["A  goal.\\n", "A match."]},
...     {"train": ["t/1.txt", "t/2.txt"], "test": ["x/1.txt", "x/2.txt"]},
... )
>>> found["counts"], found["examples"]
({'test': 1}, [{'source': 'x/1.txt', 'copy_of': 't/1.txt'}])
"""

# How many copies the report and the warning name; the counts cover all of them.
EXAMPLES_NAMED = 5


def _key(text: str) -> str:
    return " ".join(text.split())


def copies_of_training_texts(texts: dict[str, list[str]], sources: dict[str, list[str]]) -> dict:
    """`{"counts": {split: n}, "examples": [{"source", "copy_of"}]}` of non-training texts found in `train`.

    `texts` and `sources` map split names to lists in the same order; splits
    without copies are left out of `counts`.
    """
    training = {}
    for text, source in zip(texts.get("train", []), sources.get("train", [])):
        training.setdefault(_key(text), source)
    counts, examples = {}, []
    for split, split_texts in texts.items():
        if split == "train":
            continue
        for text, source in zip(split_texts, sources[split]):
            original = training.get(_key(text))
            if original is None:
                continue
            counts[split] = counts.get(split, 0) + 1
            if len(examples) < EXAMPLES_NAMED:
                examples.append({"source": source, "copy_of": original})
    return {"counts": counts, "examples": examples}
