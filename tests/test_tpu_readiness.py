"""What a TPU needs from the train steps, checked on CPU (no TPU here; docs/cluster.md lists what is not verified).

Under `data.drop_remainder: true` every phase's training batches, as the runner builds them, have fully
static shapes and no strings (images are decoded and texts tokenized in tf.data, on the host), and
every train step compiles with XLA (`distribute.jit_compile: true`) and trains, under a
`tf.distribute` strategy, for an image and a text backbone.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import tiny_resnet
from harness.text import save_tiny_bert_preset, write_topic_folder
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.config import ConfigError
from tfx_transfer.pipeline import prepare
from tfx_transfer.recipe import recipe_from_dict
from tfx_transfer.training import PhaseRunner

BATCH = 8
PHASES = [
    {"name": "head", "epochs": 1, "learning_rate": 0.01},
    {"name": "fine_tune", "epochs": 1, "learning_rate": 0.001, "freeze": {"last_blocks": 1}},
]


def image_recipe(tmp_path, **data):
    register_source("tpu_test_tiny", lambda config: tiny_resnet(image_size=(16, 16)))
    return recipe_from_dict({
        "name": "tpu_image", "modality": "image", "run_dir": str(tmp_path / "run"),
        "data": {"source": "synthetic", "batch_size": BATCH, "drop_remainder": True, **data},
        "backbone": {"source": "tpu_test_tiny"},
        "phases": PHASES, "distribute": {"jit_compile": True},
    })


def text_recipe(tmp_path):
    preset = save_tiny_bert_preset(tmp_path / "preset", max_sequence_length=16)
    return recipe_from_dict({
        "name": "tpu_text", "modality": "text", "run_dir": str(tmp_path / "run"),
        "data": {"source": "folder", "path": write_topic_folder(tmp_path / "topics", per_class=12),
                 "batch_size": BATCH, "drop_remainder": True},
        "backbone": {"source": "kerashub", "name": preset, "sequence_length": 16},
        "phases": PHASES, "distribute": {"jit_compile": True},
    })


class CompiledWith(keras.callbacks.Callback):
    """Records, for each `fit`, whether the model it trains compiles its steps with XLA."""

    def __init__(self):
        super().__init__()
        self.jit_compile = []

    def on_train_begin(self, logs=None):
        self.jit_compile.append(self.model.jit_compile)


def runner_for(recipe, callbacks=()):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    prepared = prepare(recipe, strategy)
    return PhaseRunner(
        prepared.model, prepared.head, prepared.backbone, prepared.splits, recipe, recipe.resolved_run_dir,
        strategy=strategy, callbacks=callbacks,
    )


def training_specs(runner) -> dict:
    phases = runner.recipe.phases
    return {
        phase.name: tf.nest.flatten(runner.phase_inputs(phase, next(iter(phases[i + 1:]), None)).train.element_spec)
        for i, phase in enumerate(phases)
    }


@pytest.mark.parametrize("make_recipe", [image_recipe, text_recipe], ids=["image", "text"])
def test_train_steps_compile_with_xla_on_static_string_free_batches(make_recipe, tmp_path):
    compiled_with = CompiledWith()
    runner = runner_for(make_recipe(tmp_path), [compiled_with])
    for phase, specs in training_specs(runner).items():
        for spec in specs:
            assert spec.shape.is_fully_defined() and spec.shape[0] == BATCH, (phase, spec)
            assert spec.dtype not in (tf.string, tf.bool), (phase, spec)  # a TPU takes numbers only

    results = runner.run()
    assert compiled_with.jit_compile == [True, True]  # an op XLA cannot compile would have failed fit
    assert [r.epochs_run for r in results] == [1, 1]
    for result in results:
        assert all(np.isfinite(result.history["loss"])), result.history


def test_without_drop_remainder_the_batch_dimension_is_dynamic(tmp_path):
    runner = runner_for(image_recipe(tmp_path, drop_remainder=False))
    for specs in training_specs(runner).values():
        assert specs[0].shape[0] is None


def test_drop_remainder_needs_one_full_batch(tmp_path):
    recipe = image_recipe(tmp_path)
    recipe = dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, batch_size=512))
    runner = runner_for(recipe)
    with pytest.raises(ConfigError, match=r"data.drop_remainder is true but the training split has 126 examples"):
        runner.phase_inputs(recipe.phases[0], recipe.phases[1])
