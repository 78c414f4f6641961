"""What a person looks at after a run: `report.html` per run, and several runs side by side.

`write_report(run_dir)` rebuilds a run's report from its directory alone;
`write_comparison(run_dirs, path)` puts runs side by side. The training
pipeline saves the test examples the report shows with
`tfx_transfer.report.examples.save_test_examples` (it needs TensorFlow; this
package's other modules only read files).
"""

from tfx_transfer.report.compare import write_comparison
from tfx_transfer.report.run_report import write_report

__all__ = ["write_comparison", "write_report"]
