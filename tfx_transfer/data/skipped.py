"""The error for a class that lost every one of its files to skipping.

Without it, a dataset of two classes whose second class holds only broken files
fails later with "the data has 1 class", which hides the cause.

>>> raise_if_classes_lost({"cat", "dog"}, ["cat", "cat"], [{"file": "dog/1.wav", "reason": "empty"}], "audio")
Traceback (most recent call last):
...
tfx_transfer.config.ConfigError: data.path: every audio file of class 'dog' was skipped (1 file(s) skipped in all; first: dog/1.wav: empty). Fix or remove those files, or remove the class folder.
"""

from tfx_transfer.config import ConfigError
from tfx_transfer.safe_text import printable


def raise_if_classes_lost(listed_classes, kept_labels, skipped: list[dict], kind: str) -> None:
    """Raises ConfigError naming the classes of `listed_classes` that no kept example has."""
    lost = sorted(set(listed_classes) - set(kept_labels), key=str)
    if not lost:
        return
    names = ", ".join(repr(printable(str(c))) for c in lost)
    first = f"; first: {skipped[0].get('file') or skipped[0].get('where')}: {skipped[0]['reason']}" if skipped else ""
    raise ConfigError(
        f"data.path: every {kind} file of class {names} was skipped ({len(skipped)} file(s) skipped in all{first}). "
        "Fix or remove those files, or remove the class folder."
    )
