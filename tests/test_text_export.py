"""A trained text model exported for TF Serving answers raw strings like the Keras model does.

Slow: trains and exports a (tiny) model through `tfx_transfer.pipeline.train`.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from harness.text import save_tiny_bert_preset, write_topic_folder
from tfx_transfer.backbones.kerashub import build_kerashub_backbone
from tfx_transfer.data.text import TextPreprocessor
from tfx_transfer.pipeline import train
from tfx_transfer.recipe import recipe_from_dict

TEXTS = ["Goal match team score", "", "Zürich vote: café party ☕ minister", "market " * 200]

LOAD_AND_SERVE = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the tokenizer ops; the only import a serving client needs

    export_dir, texts = sys.argv[1], json.loads(sys.argv[2])
    loaded = tf.saved_model.load(export_dir)
    out = {}
    for name in ("serving_default", "serve_tensor"):
        result = loaded.signatures[name](text=tf.constant(texts))
        out[name] = {k: v.numpy().tolist() if v.dtype != tf.string else [s.decode() for s in v.numpy()]
                     for k, v in result.items()}
    ops = {node.op for f in loaded.signatures["serving_default"].graph.as_graph_def().library.function
           for node in f.node_def}
    out["pyfunc"] = sorted(op for op in ops if "PyFunc" in op)
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("text_export")
    recipe = recipe_from_dict({
        "name": "topics",
        "modality": "text",
        "run_dir": str(work / "run"),
        "data": {"source": "folder", "path": write_topic_folder(work / "topics"), "batch_size": 8},
        "backbone": {"source": "kerashub", "name": save_tiny_bert_preset(work / "preset"), "sequence_length": 16},
        "phases": [
            {"name": "head", "epochs": 1},
            {"name": "fine_tune", "epochs": 1, "freeze": {"last_blocks": 1}, "optimizer": "adamw",
             "learning_rate": 1e-4, "early_stopping_patience": None},
        ],
        "export": {"base_dir": str(work / "exports")},
    })
    return train(recipe)


@pytest.mark.slow
def test_exported_text_model_matches_keras_on_raw_strings_in_a_fresh_process(trained):
    assert trained.export_dir.endswith(os.path.join("topics", "1"))
    process = subprocess.run(
        [sys.executable, "-c", LOAD_AND_SERVE, trained.export_dir, json.dumps(TEXTS)],
        capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, process.stderr[-3000:]
    served = json.loads(lines[-1][len("RESULT "):])

    preset = os.path.join(os.path.dirname(trained.run_dir), "preset")
    tokenizer = build_kerashub_backbone(preset, sequence_length=16).preprocessor
    preprocessor = TextPreprocessor(tokenizer, ["padding_mask", "segment_ids", "token_ids"])
    expected = trained.model.predict(preprocessor.raw_to_inputs(tf.constant(TEXTS)), verbose=0)
    for signature in ("serving_default", "serve_tensor"):
        outputs = served[signature]
        np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
        assert outputs["class_id"] == expected.argmax(axis=1).tolist()
        assert outputs["label"] == [trained.metrics["class_names"][i] for i in outputs["class_id"]]
    assert served["pyfunc"] == []
    with open(os.path.join(trained.export_dir, "assets", "labels.txt"), encoding="utf-8") as f:
        assert f.read().splitlines() == ["business", "politics", "sport"]


@pytest.mark.slow
def test_run_reports_skipped_texts_and_phases(trained):
    metrics = trained.metrics
    assert metrics["data"]["skipped_counts"] == {"empty text": 1, "invalid UTF-8": 1}
    assert [p["name"] for p in metrics["phases"]] == ["head", "fine_tune"]
    assert metrics["phases"][0]["cached_features"] and not metrics["phases"][1]["cached_features"]
    assert metrics["phases"][1]["trainable_blocks"] == ["transformer_layer_1"]
