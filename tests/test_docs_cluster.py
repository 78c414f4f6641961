"""docs/cluster.md stays copy-pasteable: its YAML and JSON parse, its shell is valid bash, every `--set` it
writes is a recipe key of the recipe it trains, and the `TF_CONFIG` each pod or host builds is the right one."""

import json
import os
import pathlib
import re
import subprocess
import sys

import yaml

from tfx_transfer.recipe import load_recipe

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
DOC = (REPOSITORY / "docs" / "cluster.md").read_text(encoding="utf-8")
RECIPE = REPOSITORY / "recipes" / "bbc_news_minilm.yaml"


def fenced_blocks(language: str) -> list[str]:
    """The doc's ```language blocks, their common indentation removed."""
    blocks = []
    for indent, body in re.findall(rf"^( *)```{language}\n(.*?)^ *```", DOC, flags=re.S | re.M):
        blocks.append("\n".join(line[len(indent):] for line in body.splitlines()))
    return blocks


def kubernetes_objects() -> dict:
    return {doc["kind"]: doc for block in fenced_blocks("yaml") for doc in yaml.safe_load_all(block)}


def test_every_set_override_is_a_key_of_the_recipe():
    overrides = set(re.findall(r"--set ([^\s`]+=[^\s`]+)", DOC))
    assert {o.split("=")[0] for o in overrides} >= {"distribute.strategy", "run_dir", "export.base_dir"}
    for override in overrides:
        value = override.replace("$SHARED", "/mnt/shared")
        recipe = load_recipe(RECIPE, [value])
        key, expected = value.split("=", 1)
        section, _, name = key.rpartition(".")
        actual = getattr(getattr(recipe, section) if section else recipe, name)
        assert actual == yaml.safe_load(expected) or actual == expected, override


def test_the_cli_commands_in_the_doc_exist():
    commands = set(re.findall(r"tfx-transfer (\w[\w-]*)", DOC))
    assert "train" in commands
    for command in commands:
        help_text = subprocess.run(
            [sys.executable, "-m", "tfx_transfer.cli", command, "--help"], capture_output=True, text=True, cwd=REPOSITORY,
        )
        assert help_text.returncode == 0, (command, help_text.stderr)
        assert "--set" in help_text.stdout or command != "train"


def test_the_kubernetes_objects_fit_together():
    objects = kubernetes_objects()
    service, job, claim = objects["Service"], objects["Job"], objects["PersistentVolumeClaim"]
    pod = job["spec"]["template"]["spec"]
    assert service["spec"]["clusterIP"] == "None"
    assert pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["selector"] == {"job-name": job["metadata"]["name"]}
    assert job["spec"]["completionMode"] == "Indexed"
    worker = pod["containers"][0]
    workers = int(next(e["value"] for e in worker["env"] if e["name"] == "WORKERS"))
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == workers
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy requires it
    assert job["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["containerName"] == worker["name"]
    assert {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v} == {
        claim["metadata"]["name"]
    }
    assert "ReadWriteMany" in claim["spec"]["accessModes"]


def test_each_pod_builds_its_tf_config_from_its_completion_index():
    worker = kubernetes_objects()["Job"]["spec"]["template"]["spec"]["containers"][0]
    script = worker["args"][0]
    export_line = script.splitlines()[0]
    port = worker["ports"][0]["containerPort"]
    for index in range(2):
        shell = subprocess.run(
            ["bash", "-c", export_line.replace("python -c", f"{sys.executable} -c") + ' && printf %s "$TF_CONFIG"'],
            capture_output=True, text=True, env={**os.environ, "WORKERS": "2", "JOB_COMPLETION_INDEX": str(index)},
        )
        assert shell.returncode == 0, shell.stderr
        assert json.loads(shell.stdout) == {
            "cluster": {"worker": [f"tfx-train-0.tfx-train:{port}", f"tfx-train-1.tfx-train:{port}"]},
            "task": {"type": "worker", "index": index},
        }


def test_the_ssh_script_is_valid_bash_and_builds_each_hosts_tf_config():
    (script,) = [block for block in fenced_blocks("bash") if "start_worker" in block]
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    setup = script.split("start_worker() {")[0]  # HOSTS, PORT, ... and the worker list
    tf_config = re.search(r'local tf_config="(.*)"\n', script).group(1)
    shell = subprocess.run(
        ["bash", "-c", setup + 'set -- 1\nprintf %s "' + tf_config + '"'], capture_output=True, text=True,
    )
    assert json.loads(shell.stdout) == {
        "cluster": {"worker": ["10.0.0.11:2222", "10.0.0.12:2222"]}, "task": {"type": "worker", "index": 1},
    }


def test_the_json_example_is_a_tf_config():
    (example,) = fenced_blocks("json")
    config = json.loads(example)
    assert config["task"] == {"type": "worker", "index": 0} and len(config["cluster"]["worker"]) == 2
