"""The learning rate a `learning_rate: auto` phase chose, kept with the phase's backups so a resumed phase reuses it.

The LR finder runs once per phase: its choice is written next to the phase's epoch backups
(`run_dir/backup/<phase>/learning_rate.json`), which are discarded when the phase completes; a
completed phase keeps its rate in its `PhaseResult`.

>>> record_choice("ram://doc_choice/backup/head", 3.2e-05, "valley")
>>> recorded_choice("ram://doc_choice/backup/head")
(3.2e-05, 'valley')
"""

import math

from tfx_transfer import storage
from tfx_transfer.backup import RunFileUnreadable, read_json_or_explain

CHOICE_FILE = "learning_rate.json"


def record_choice(backup_dir: str, learning_rate: float, suggestion: str) -> None:
    """Writes the finder's choice for the phase backed up in `backup_dir`."""
    storage.write_json_atomic(
        storage.join(backup_dir, CHOICE_FILE), {"learning_rate": float(learning_rate), "suggestion": suggestion}
    )


def recorded_choice(backup_dir: str) -> tuple[float, str] | None:
    """`(learning_rate, suggestion)` recorded for the phase backed up in `backup_dir`, or None when there is none."""
    path = storage.join(backup_dir, CHOICE_FILE)
    if not storage.exists(path):
        return None
    recovery = f"Delete {path} to run the LR finder for this phase again."
    record = read_json_or_explain(path, recovery)
    rate = record.get("learning_rate") if isinstance(record, dict) else None
    if not (isinstance(rate, float) and math.isfinite(rate) and rate > 0 and isinstance(record.get("suggestion"), str)):
        raise RunFileUnreadable(
            f"{path} is not a learning-rate choice (expected a positive learning_rate and a suggestion). {recovery}"
        )
    return rate, record["suggestion"]
