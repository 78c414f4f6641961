"""What a run has finished: `run_dir/state.json` and one checkpoint per completed phase.

Every read and write goes through `tfx_transfer.storage`, so a run directory may be on any
`tf.io.gfile` filesystem (`gs://`, `ram://`, a local path).

>>> state = RunState.load("ram://doc_run")
>>> state.completed, state.checkpoint_path("head")
({}, 'ram://doc_run/checkpoints/head.weights.h5')
"""

import tfx_transfer.storage as storage


class RunState:
    """The completed phases of the run in `run_dir`, by name, with their `PhaseResult` fields."""

    def __init__(self, run_dir: str, completed: dict):
        self.run_dir = run_dir
        self.completed = completed

    @classmethod
    def load(cls, run_dir: str) -> "RunState":
        path = storage.join(run_dir, "state.json")
        return cls(run_dir, storage.read_json(path)["completed"] if storage.exists(path) else {})

    def checkpoint_path(self, phase_name: str) -> str:
        return storage.join(self.run_dir, "checkpoints", f"{phase_name}.weights.h5")

    def record(self, phase_name: str, result: dict, model) -> None:
        """Saves `model`'s weights as `phase_name`'s checkpoint, then marks the phase completed."""
        storage.makedirs(storage.join(self.run_dir, "checkpoints"))
        model.save_weights(self.checkpoint_path(phase_name))
        self.completed[phase_name] = result
        storage.write_json_atomic(storage.join(self.run_dir, "state.json"), {"completed": self.completed})
