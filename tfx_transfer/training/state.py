"""What a run has finished: `run_dir/state.json` and one checkpoint per completed phase.

Every read and write goes through `tfx_transfer.storage`, so a run directory may be on any
`tf.io.gfile` filesystem (`gs://`, `ram://`, a local path).

>>> state = RunState.load("ram://doc_run")
>>> state.completed, state.checkpoint_path("head")
({}, 'ram://doc_run/checkpoints/head.weights.h5')
"""

import tfx_transfer.storage as storage
from tfx_transfer.backup import RunFileUnreadable, load_weights_or_explain, read_json_or_explain, save_weights_atomic


class RunState:
    """The completed phases of the run in `run_dir`, by name, with their `PhaseResult` fields.

    A truncated or corrupt `state.json` or checkpoint raises `RunFileUnreadable` naming the file
    and how to recover (`recovery`), never a bare traceback.
    """

    def __init__(self, run_dir: str, completed: dict):
        self.run_dir = run_dir
        self.completed = completed

    @classmethod
    def load(cls, run_dir: str) -> "RunState":
        state = cls(run_dir, {})
        if storage.exists(state.path):
            record = read_json_or_explain(state.path, state.recovery)
            if not (isinstance(record, dict) and isinstance(record.get("completed"), dict)):
                raise RunFileUnreadable(f"{state.path} is not a run state (no 'completed' map). {state.recovery}")
            state.completed = record["completed"]
        return state

    @property
    def path(self) -> str:
        return storage.join(self.run_dir, "state.json")

    @property
    def recovery(self) -> str:
        """What to do when a file of this state is unreadable."""
        return (
            f"Delete {self.path} and {storage.join(self.run_dir, 'checkpoints')} to train every phase "
            "again, or start a new run with --set run_dir=<new directory>."
        )

    def checkpoint_path(self, phase_name: str) -> str:
        return storage.join(self.run_dir, "checkpoints", f"{phase_name}.weights.h5")

    def restore(self, phase_name: str, model) -> None:
        """Loads the checkpoint of the completed phase `phase_name` into `model`."""
        load_weights_or_explain(model, self.checkpoint_path(phase_name), self.recovery)

    def record(self, phase_name: str, result: dict, model) -> None:
        """Saves `model`'s weights as `phase_name`'s checkpoint, then marks the phase completed."""
        save_weights_atomic(model, self.checkpoint_path(phase_name))
        self.completed[phase_name] = result
        storage.write_json_atomic(self.path, {"completed": self.completed})
