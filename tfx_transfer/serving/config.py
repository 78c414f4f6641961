"""TF Serving configuration files for an export base: models, batching and monitoring.

`write_serving_config` writes three text-format protos that `tensorflow_model_server`
reads with `--model_config_file`, `--batching_parameters_file` and
`--monitoring_config_file`:

- `models.config` (`ModelServerConfig`): one entry per model under the export
  base, its version policy (`latest`, or `specific` versions when labels are
  set) and the `stable` / `canary` version labels;
- `batching.config` (`BatchingParameters`): server-side batching;
- `monitoring.config` (`MonitoringConfig`): the Prometheus metrics endpoint.

Example:

```python
paths = write_serving_config("saved_models", "serving", labels={"pets": {"stable": 1, "canary": 2}})
print(docker_command("saved_models", "serving"))
```
"""

import dataclasses
import re

from tfx_transfer import storage

MODELS_FILE = "models.config"
BATCHING_FILE = "batching.config"
MONITORING_FILE = "monitoring.config"
LABELS = ("stable", "canary")
MODEL_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
# Upper bounds on what a config may ask of a server; beyond them a value is almost surely a typo.
MAX_BATCH_SIZE = 65_536
MAX_TIMEOUT_MICROS = 60_000_000
MAX_THREADS = 1_024
MAX_ENQUEUED_BATCHES = 1_000_000


@dataclasses.dataclass
class BatchingOptions:
    """TF Serving's `BatchingParameters`: batches of up to `max_batch_size`, waiting at most `batch_timeout_micros`."""

    max_batch_size: int = 32
    batch_timeout_micros: int = 2_000
    num_batch_threads: int = 2
    max_enqueued_batches: int = 100
    allowed_batch_sizes: list[int] = dataclasses.field(default_factory=list)
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        bounds = {
            "max_batch_size": (1, MAX_BATCH_SIZE),
            "batch_timeout_micros": (0, MAX_TIMEOUT_MICROS),
            "num_batch_threads": (1, MAX_THREADS),
            "max_enqueued_batches": (1, MAX_ENQUEUED_BATCHES),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"Batching {name} must be in [{low}, {high}], received {value}.")
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size or sizes[0] < 1):
            raise ValueError(
                f"Batching allowed_batch_sizes must be increasing, positive and end with max_batch_size "
                f"{self.max_batch_size}, received {sizes}."
            )


def find_models(export_base: str) -> dict[str, list[int]]:
    """`{model name: sorted versions}` of every `<export_base>/<model>/<version>/saved_model.pb`."""
    if not storage.isdir(export_base):
        raise FileNotFoundError(f"Export base {export_base!r} does not exist: pass the export.base_dir of a run.")
    models = {}
    for name in storage.listdir(export_base):
        versions = sorted(
            int(v)
            for v in storage.listdir(storage.join(export_base, name))
            if v.isdigit() and storage.exists(storage.join(export_base, name, v, "saved_model.pb"))
        )
        if versions and MODEL_NAME.fullmatch(name):
            models[name] = versions
    if not models:
        raise FileNotFoundError(
            f"Export base {export_base!r} holds no <model>/<integer version>/saved_model.pb: nothing to serve."
        )
    return models


def model_server_config(
    models: dict[str, list[int]],
    server_base: str,
    labels: dict[str, dict[str, int]] | None = None,
    latest: int = 1,
):
    """The `ModelServerConfig` proto: each model at `<server_base>/<name>`, with its policy and labels.

    A model with labels serves exactly its labelled versions (TF Serving only
    assigns labels to versions it has loaded); one without serves its `latest`
    versions, so a new export is picked up when the server re-polls.
    """
    from tensorflow_serving.config import model_server_config_pb2

    labels = labels or {}
    unknown = sorted(set(labels) - set(models))
    if unknown:
        raise ValueError(f"Labels given for models {unknown}, which are not in the export base: {sorted(models)}.")
    if not 1 <= latest <= 100:
        raise ValueError(f"latest (versions served per model) must be in [1, 100], received {latest}.")
    config = model_server_config_pb2.ModelServerConfig()
    for name, versions in sorted(models.items()):
        entry = config.model_config_list.config.add(
            name=name, base_path=f"{server_base.rstrip('/')}/{name}", model_platform="tensorflow"
        )
        model_labels = labels.get(name, {})
        for label, version in model_labels.items():
            if label not in LABELS:
                raise ValueError(f"Version label {label!r} of model {name!r} is not one of {LABELS}.")
            if version not in versions:
                raise ValueError(
                    f"Model {name!r} has no version {version} for label {label!r}; its versions are {versions}."
                )
        if "canary" in model_labels and "stable" not in model_labels:
            raise ValueError(f"Model {name!r}: a canary label needs a stable label too (the version most traffic gets).")
        if model_labels:
            entry.model_version_policy.specific.versions.extend(sorted(set(model_labels.values())))
            for label, version in model_labels.items():
                entry.version_labels[label] = version
        else:
            entry.model_version_policy.latest.num_versions = latest
    return config


def batching_parameters_text(options: BatchingOptions) -> str:
    """`BatchingParameters` in protobuf text format (its wrapper-typed fields are `{ value: N }`)."""
    lines = [
        f"max_batch_size {{ value: {options.max_batch_size} }}",
        f"batch_timeout_micros {{ value: {options.batch_timeout_micros} }}",
        f"max_enqueued_batches {{ value: {options.max_enqueued_batches} }}",
        f"num_batch_threads {{ value: {options.num_batch_threads} }}",
    ]
    lines += [f"allowed_batch_sizes: {size}" for size in options.allowed_batch_sizes]
    if options.pad_variable_length_inputs:
        lines.append("pad_variable_length_inputs: true")
    return "\n".join(lines) + "\n"


def monitoring_config_text(path: str = "/monitoring/prometheus/metrics") -> str:
    """`MonitoringConfig` in protobuf text format: Prometheus metrics served at `path` on the REST port."""
    if not re.fullmatch(r"/[A-Za-z0-9_./\-]*", path):
        raise ValueError(f"The Prometheus metrics path must be a URL path such as /metrics, received {path!r}.")
    return f'prometheus_config {{\n  enable: true\n  path: "{path}"\n}}\n'


def write_serving_config(
    export_base: str,
    out_dir: str,
    models: list[str] | None = None,
    labels: dict[str, dict[str, int]] | None = None,
    server_base: str = "/models",
    latest: int = 1,
    batching: BatchingOptions | None = None,
    monitoring_path: str = "/monitoring/prometheus/metrics",
) -> dict[str, str]:
    """Writes `models.config`, `batching.config` and `monitoring.config` into `out_dir`; returns their paths.

    `models` picks models of the export base (default: all); `server_base` is
    where the server sees the export base (`/models` in the docker command).
    """
    from google.protobuf import text_format

    found = find_models(export_base)
    if models:
        missing = [m for m in models if m not in found]
        if missing:
            raise ValueError(f"Models {missing} are not in export base {export_base!r}, which holds {sorted(found)}.")
        found = {m: found[m] for m in models}
    texts = {  # all built (and checked) before any file is written
        MODELS_FILE: text_format.MessageToString(model_server_config(found, server_base, labels, latest)),
        BATCHING_FILE: batching_parameters_text(batching or BatchingOptions()),
        MONITORING_FILE: monitoring_config_text(monitoring_path),
    }
    paths = {}
    for name, text in texts.items():
        paths[name] = storage.join(out_dir, name)
        storage.write_text_atomic(paths[name], text)
    return paths


def docker_command(export_base: str, config_dir: str, image: str = "tensorflow/serving:2.21.0") -> str:
    """The `docker run` line serving `export_base` with the files in `config_dir` (REST 8501, gRPC 8500)."""
    return (
        f'docker run --rm -p 8500:8500 -p 8501:8501 -v "$(realpath {export_base})":/models:ro '
        f'-v "$(realpath {config_dir})":/config:ro {image} '
        f"--model_config_file=/config/{MODELS_FILE} --model_config_file_poll_wait_seconds=60 "
        f"--enable_batching=true --batching_parameters_file=/config/{BATCHING_FILE} "
        f"--monitoring_config_file=/config/{MONITORING_FILE}"
    )
