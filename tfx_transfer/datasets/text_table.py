"""The `text,label` CSV and the per-class statistics that every text dataset builder writes.

>>> text_table_stats([("a b", "x"), ("c", "y")], classes=("x", "y", "z"))
{'counts': {'x': 1, 'y': 1, 'z': 0}, 'mean_words': 1.5}
"""

import csv
import io

from tfx_transfer import storage


def write_text_table(path, rows) -> None:
    """Writes `rows` of (text, label) to the CSV at `path` under a `text,label` header, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    storage.write_text_atomic(path, buffer.getvalue())


def text_table_stats(rows, classes) -> dict:
    """`counts` of each class in `classes` (in that order) and the `mean_words` of the texts in `rows`."""
    return {
        "counts": {c: sum(1 for _, label in rows if label == c) for c in classes},
        "mean_words": sum(len(text.split()) for text, _ in rows) / max(len(rows), 1),
    }
