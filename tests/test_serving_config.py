"""`serving-config`: every file it writes parses with TF Serving's protos, so a typo cannot pass."""

import os

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving_protos import BatchingParameters, MonitoringConfig
from tfx_transfer.cli import main
from tfx_transfer.serving.config import (
    BatchingOptions,
    batching_parameters_text,
    find_models,
    monitoring_config_text,
    write_serving_config,
)


@pytest.fixture
def export_base(tmp_path):
    """An export base with pets versions 1-3, birds version 1, an unfinished pets version and a stray file."""
    base = tmp_path / "saved_models"
    for model, version in (("pets", 1), ("pets", 2), ("pets", 3), ("birds", 1)):
        (base / model / str(version)).mkdir(parents=True)
        (base / model / str(version) / "saved_model.pb").write_bytes(b"")
    (base / "pets" / ".tmp-4-abc").mkdir()
    (base / "pets" / "5").mkdir()  # no saved_model.pb: not a version
    (base / "README.md").write_text("exports")
    return str(base)


def parse_models(path) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse(open(path).read(), model_server_config_pb2.ModelServerConfig())


def test_models_config_has_stable_and_canary_labels_and_a_specific_policy(export_base, tmp_path):
    paths = write_serving_config(export_base, str(tmp_path / "serving"), labels={"pets": {"stable": 2, "canary": 3}})
    config = parse_models(paths["models.config"])
    by_name = {c.name: c for c in config.model_config_list.config}
    assert sorted(by_name) == ["birds", "pets"]
    pets = by_name["pets"]
    assert pets.base_path == "/models/pets" and pets.model_platform == "tensorflow"
    assert list(pets.model_version_policy.specific.versions) == [2, 3]
    assert dict(pets.version_labels) == {"stable": 2, "canary": 3}
    birds = by_name["birds"]
    assert birds.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert birds.model_version_policy.latest.num_versions == 1 and not birds.version_labels


def test_batching_and_monitoring_files_parse_with_the_serving_messages(export_base, tmp_path):
    options = BatchingOptions(max_batch_size=16, batch_timeout_micros=500, allowed_batch_sizes=[4, 8, 16])
    paths = write_serving_config(export_base, str(tmp_path / "s"), batching=options, monitoring_path="/metrics")
    batching = text_format.Parse(open(paths["batching.config"]).read(), BatchingParameters())
    assert batching.max_batch_size.value == 16 and batching.batch_timeout_micros.value == 500
    assert batching.num_batch_threads.value == 2 and batching.max_enqueued_batches.value == 100
    assert list(batching.allowed_batch_sizes) == [4, 8, 16]
    monitoring = text_format.Parse(open(paths["monitoring.config"]).read(), MonitoringConfig())
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path == "/metrics"


def test_the_test_messages_reject_a_misspelt_field():
    """Guards the guard: the hand-declared messages really reject what TF Serving would reject."""
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_sise { value: 3 }", BatchingParameters())
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_size: 3", BatchingParameters())  # a wrapper, not a plain int
    assert batching_parameters_text(BatchingOptions()).count("{ value:") == 4
    text_format.Parse(monitoring_config_text(), MonitoringConfig())


def test_only_finished_integer_versions_are_models(export_base):
    assert find_models(export_base) == {"birds": [1], "pets": [1, 2, 3]}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"labels": {"pets": {"stable": 7}}}, r"no version 7 for label 'stable'; its versions are \[1, 2, 3\]"),
        ({"labels": {"pets": {"canary": 3}}}, "needs a stable label"),
        ({"labels": {"pets": {"beta": 3}}}, "'beta'"),
        ({"labels": {"cats": {"stable": 1}}}, r"\['cats'\]"),
        ({"models": ["cats"]}, r"\['cats'\] are not in export base"),
        ({"monitoring_path": "metrics; rm"}, "URL path"),
    ],
)
def test_bad_settings_name_the_model_version_or_value(export_base, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_serving_config(export_base, str(tmp_path / "s"), **kwargs)
    assert not os.path.exists(tmp_path / "s" / "models.config")


@pytest.mark.parametrize(
    "kwargs", [{"max_batch_size": 0}, {"num_batch_threads": 100_000}, {"allowed_batch_sizes": [8, 4, 32]}]
)
def test_out_of_range_batching_is_refused(kwargs):
    with pytest.raises(ValueError, match="Batching"):
        BatchingOptions(**kwargs)


def test_cli_writes_the_files_and_prints_the_docker_command(export_base, tmp_path, capsys):
    out = tmp_path / "serving"
    code = main(["serving-config", export_base, "--out", str(out), "--model", "pets", "--stable", "2",
                 "--canary", "pets=3", "--max-batch-size", "8"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "docker run" in printed and "--model_config_file=/config/models.config" in printed
    assert "--batching_parameters_file=/config/batching.config" in printed
    config = parse_models(out / "models.config")
    (pets,) = config.model_config_list.config
    assert dict(pets.version_labels) == {"stable": 2, "canary": 3}
    assert text_format.Parse((out / "batching.config").read_text(), BatchingParameters()).max_batch_size.value == 8


def test_cli_asks_for_the_model_name_when_there_are_several(export_base, tmp_path, capsys):
    assert main(["serving-config", export_base, "--out", str(tmp_path / "s"), "--stable", "1"]) == 2
    assert "name the model" in capsys.readouterr().err
