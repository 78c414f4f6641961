"""Training in phases: a pure plan per phase over small parts, and the runner that compiles and fits.

- `plan`: how each phase trains (head on cached features, on a cached frozen prefix, full model) and why.
- `state`: `state.json` and the checkpoints of completed phases.
- `cache`: cached outputs of frozen layers under typed keys.
- `schedule`: `make_optimizer` and `WarmupDecay`.
- `lr_choice`: the rate a `learning_rate: auto` phase chose, kept with its backups for a resume.
- `datasets`: batching, loss targets (through the head kind), class weights.
- `validation`: validation per input when inputs are cut into windows (what test metrics and the export judge).
- `submodels`: the parts of the model a phase trains.
- `runner`: `PhaseRunner` (and `phase_inputs` / `find_learning_rate`, shared by training and `lr-find`).

Example:

```python
results = PhaseRunner(model, head, backbone, splits, recipe, run_dir="runs/flowers").run()
```
"""

from tfx_transfer.training.datasets import balanced_class_weights, batch_dataset
from tfx_transfer.training.plan import PhasePlan, plan_phases
from tfx_transfer.training.runner import PhaseInputs, PhaseResult, PhaseRunner
from tfx_transfer.training.schedule import WarmupDecay, make_optimizer

__all__ = [
    "PhaseInputs",
    "PhasePlan",
    "PhaseResult",
    "PhaseRunner",
    "WarmupDecay",
    "balanced_class_weights",
    "batch_dataset",
    "make_optimizer",
    "plan_phases",
]
