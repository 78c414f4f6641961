"""Text fine-tuning under MirroredStrategy on two logical CPU devices (numeric token inputs only).

Runs in a subprocess: logical devices must be configured before TensorFlow runs any op.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import numpy as np
    from savedmodel_builders import save_dense_module
    from harness.text import save_tiny_bert_preset, write_topic_folder
    from tfx_transfer.backbones.hub import SavedModelLayer
    from tfx_transfer.backbones.kerashub import build_kerashub_backbone
    from tfx_transfer.data.text import load_data
    from tfx_transfer.freezing import apply_freeze_policy
    from tfx_transfer.model import build_model
    from tfx_transfer.recipe import FreezeConfig, HeadConfig, recipe_from_dict
    from tfx_transfer.training import batch_dataset

    work = sys.argv[1]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {"replicas": strategy.num_replicas_in_sync}

    # KerasHub encoder, data tokenized in tf.data, fine-tuning the last transformer layer.
    preset = save_tiny_bert_preset(work + "/preset")
    recipe = recipe_from_dict({"modality": "text", "data": {"source": "folder", "path": write_topic_folder(work + "/topics")}})
    with strategy.scope():
        backbone = build_kerashub_backbone(preset, sequence_length=16)
    splits = load_data(recipe, backbone)
    with strategy.scope():
        apply_freeze_policy(backbone, FreezeConfig(last_blocks=1))
        model, _ = build_model(backbone, len(splits.class_names), HeadConfig(dropout=0.0))
        model.compile(keras.optimizers.AdamW(1e-3), "categorical_crossentropy")
    tuned = backbone.model.get_layer("transformer_layer_1").weights[0]
    frozen = backbone.model.get_layer("transformer_layer_0").weights[0]
    before = tuned.numpy().copy(), frozen.numpy().copy()
    history = model.fit(batch_dataset(splits.train, 8, "multiclass", 3), epochs=2, verbose=0)
    result["text_loss"] = history.history["loss"]
    result["text_tuned_moved"] = bool(not np.allclose(before[0], tuned.numpy()))
    result["text_frozen_moved"] = bool(not np.allclose(before[1], frozen.numpy()))

    # A TF-Hub style SavedModel layer under the same strategy.
    path = save_dense_module(work + "/dense")
    with strategy.scope():
        layer = SavedModelLayer(str(path), trainable=True)
        inputs = keras.Input((4,))
        hub_model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
        hub_model.compile(keras.optimizers.Adam(0.01), "mse")
    kernel = layer.weights[0].numpy().copy()
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    hub_model.fit(x, x[:, :2], epochs=2, batch_size=8, verbose=0)
    result["hub_moved"] = bool(not np.allclose(kernel, layer.weights[0].numpy()))

    # A TF-Hub BERT-convention encoder + preprocessing model, loaded under the strategy.
    from savedmodel_builders import save_bert_encoder, save_bert_preprocessor
    from tfx_transfer.backbones.hub_text import build_hub_text_backbone

    words = ["market", "shares", "vote", "party", "goal", "match"]
    save_bert_preprocessor(work + "/hub_pre", words)
    save_bert_encoder(work + "/hub_enc", vocab_size=len(words) + 4)
    with strategy.scope():
        hub_backbone = build_hub_text_backbone(work + "/hub_enc", work + "/hub_pre", sequence_length=8)
    hub_splits = load_data(recipe, hub_backbone)
    with strategy.scope():
        apply_freeze_policy(hub_backbone, FreezeConfig(last_blocks=1))
        hub_text_model, _ = build_model(hub_backbone, len(hub_splits.class_names), HeadConfig(dropout=0.0))
        hub_text_model.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
    embeddings = hub_backbone.model.get_layer("encoder").weights[0]
    before = embeddings.numpy().copy()
    hub_text_model.fit(batch_dataset(hub_splits.train, 8, "multiclass", 3), epochs=1, verbose=0)
    result["hub_text_moved"] = bool(not np.allclose(before, embeddings.numpy()))

    # A windowed text run through the toolkit's phases: validation per text under the strategy.
    from harness.text import per_text_validation_report, windowed_topics_recipe
    from tfx_transfer.pipeline import train

    windowed = recipe_from_dict(windowed_topics_recipe(work + "/windowed", [
        {"name": "head", "epochs": 2, "learning_rate": 0.05},
        {"name": "fine_tune", "epochs": 2, "freeze": {"last_blocks": 1}, "learning_rate": 1e-3},
    ]))
    run = train(windowed, strategy=strategy)
    # The epoch the run ended with: the fine-tuning's kept one, or phase 1's if it kept its starting weights.
    phase = next(p for p in reversed(run.metrics["phases"]) if p["best_epoch"]["kept_epoch"])
    result["windowed_logged"] = phase["history"]["val_accuracy"][phase["best_epoch"]["kept_epoch"] - 1]
    result["windowed_per_text"] = per_text_validation_report(windowed, run.model)["accuracy"]
    print("RESULT " + json.dumps(result))
    """
)


@pytest.mark.slow
def test_text_and_hub_fine_tuning_under_mirrored_strategy(tmp_path):
    tests_dir = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests_dir, os.path.dirname(tests_dir), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env, timeout=600
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, process.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["replicas"] == 2
    assert all(loss == loss for loss in result["text_loss"])  # finite, no NaN
    assert result["text_tuned_moved"] and not result["text_frozen_moved"]
    assert result["hub_moved"] and result["hub_text_moved"]
    # the fine-tuning epoch it kept was judged on whole texts, as the test metrics are
    assert result["windowed_logged"] == pytest.approx(result["windowed_per_text"])
