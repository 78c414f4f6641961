"""Freeze policies: which weights move, BatchNorm statistics, and blocks that are never cut in half."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import tiny_resnet
from tfx_transfer.backbones.blocks import cut_points
from tfx_transfer.backbones.keras_apps import build_keras_app
from tfx_transfer.freezing import apply_freeze_policy, freeze_table, select_trainable
from tfx_transfer.model import build_model
from tfx_transfer.recipe import FreezeConfig, HeadConfig
from tfx_transfer.head_kinds import MULTICLASS
from tfx_transfer.training import make_optimizer
from tfx_transfer.recipe import PhaseConfig


def _fit(model, backbone, policy, steps=4, seed=0):
    apply_freeze_policy(backbone, policy)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (16, 16, 16, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, 16), 3)
    model.compile(
        optimizer=make_optimizer(PhaseConfig(learning_rate=0.05), steps), loss=MULTICLASS.loss(), metrics=MULTICLASS.metrics(3)
    )
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)


def _snapshot(layers):
    return {(layer.name, w.path): np.array(w.numpy()) for layer in layers for w in layer.weights}


def _changed(before, after):
    return {key for key in before if not np.array_equal(before[key], after[key])}


def test_frozen_backbone_is_bit_identical_and_head_trains(tiny_backbone):
    model, head = build_model(tiny_backbone, 3, HeadConfig(dropout=0.0))
    backbone_before, head_before = _snapshot(tiny_backbone.model.layers), _snapshot(head.layers)
    _fit(model, tiny_backbone, FreezeConfig())
    assert not _changed(backbone_before, _snapshot(tiny_backbone.model.layers))
    assert _changed(head_before, _snapshot(head.layers))


def test_last_blocks_changes_exactly_those_layers_and_frozen_batchnorm_stats_stay():
    backbone = tiny_resnet()
    model, _ = build_model(backbone, 3, HeadConfig(dropout=0.0))
    before = _snapshot(backbone.model.layers)
    _fit(model, backbone, FreezeConfig(last_blocks=2, batchnorm="frozen"))
    changed_layers = {layer for layer, _ in _changed(before, _snapshot(backbone.model.layers))}
    # The last two blocks are conv3_block1 and top; their BatchNorm layers stay fixed.
    assert changed_layers == {"conv3_block1_conv", "top_conv"}


def test_batchnorm_train_moves_statistics_of_unfrozen_blocks_only():
    backbone = tiny_resnet()
    model, _ = build_model(backbone, 3, HeadConfig(dropout=0.0))
    stats = lambda name: np.array(backbone.model.get_layer(name).moving_mean.numpy())  # noqa: E731
    before = {n: stats(n) for n in ("stem_bn", "conv3_block1_bn", "top_bn")}
    _fit(model, backbone, FreezeConfig(last_blocks=2, batchnorm="train"))
    assert np.array_equal(before["stem_bn"], stats("stem_bn"))
    assert not np.array_equal(before["conv3_block1_bn"], stats("conv3_block1_bn"))
    assert not np.array_equal(before["top_bn"], stats("top_bn"))


@pytest.mark.parametrize("name", ["ResNet50", "MobileNetV2", "EfficientNetB0"])
def test_blocks_never_split_a_residual_connection(name):
    backbone = build_keras_app(name, weights=None, image_size=(64, 64))
    layers = backbone.model.layers
    cuts = cut_points(backbone.model)
    index = {layer.name: i for i, layer in enumerate(layers)}
    for block in backbone.blocks:
        last = index[block.layers[-1]]
        assert cuts[last], f"{name}: block {block.name} ends at {block.layers[-1]}, which a skip connection crosses"
    # Every Add layer sits in the same block as all the layers that feed it, except the block input.
    for layer in layers:
        if isinstance(layer, keras.layers.Add):
            block = backbone.block_of(layer.name)
            producers = [t._keras_history.operation.name for t in layer._inbound_nodes[0].input_tensors]
            outside = [p for p in producers if p not in block.layers]
            assert len(outside) <= 1, f"{name}: {layer.name} takes {outside} from outside block {block.name}"
    for n in range(1, len(backbone.blocks) + 1):
        result = apply_freeze_policy(backbone, FreezeConfig(last_blocks=n, batchnorm="train"))
        trainable = {layer.name for layer in layers if layer.trainable}
        expected = {l for b in backbone.blocks[-n:] for l in b.layers}
        assert trainable == expected
        assert set(result.trainable_blocks) <= {b.name for b in backbone.blocks[-n:]}


def test_a_failed_imagenet_download_exits_2_in_one_line_naming_the_offline_options(tmp_path, monkeypatch, capsys):
    from tfx_transfer.cli import main

    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- [Errno -3] name resolution")

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("backbone: {source: keras_apps, name: MobileNetV2, weights: imagenet}\n")
    assert main(["inspect", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "Could not download the ImageNet weights of MobileNetV2" in err
    assert "backbone.source: packaged" in err and "backbone.weights: none" in err


def test_expected_block_names_for_known_families():
    names = lambda n: [b.name for b in build_keras_app(n, weights=None, image_size=(64, 64)).blocks]  # noqa: E731
    resnet = names("ResNet50")
    assert resnet[0] == "stem" and resnet[-1] == "conv5_block3" and len(resnet) == 17
    mobilenet = names("MobileNetV2")
    assert mobilenet[:3] == ["stem", "expanded_conv", "block_1"] and mobilenet[-2:] == ["block_16", "top"]
    efficientnet = names("EfficientNetB0")
    assert efficientnet[1] == "block1a" and efficientnet[-2:] == ["block7a", "top"]


def test_from_layer_starts_at_the_enclosing_block_and_patterns_apply():
    backbone = tiny_resnet()
    result = apply_freeze_policy(backbone, FreezeConfig(from_layer="conv2_block1_bn", batchnorm="train"))
    assert result.trainable_blocks == ("conv2_block1", "conv3_block1", "top")
    result = apply_freeze_policy(
        backbone, FreezeConfig(trainable="all", exclude=[r"^stem_", r"_bn$"], batchnorm="train")
    )
    trainable = {l.name for l in backbone.model.layers if l.trainable_weights}
    assert trainable == {"conv1_block1_conv", "conv2_block1_conv", "conv3_block1_conv", "top_conv"}
    result = apply_freeze_policy(backbone, FreezeConfig(include=["top_"], batchnorm="frozen"))
    assert result.trainable_layers == ("top_conv",)


@pytest.mark.parametrize(
    "policy, message",
    [
        (FreezeConfig(last_blocks=99), "has only"),
        (FreezeConfig(from_layer="conv9"), "neither a layer nor a block"),
        (FreezeConfig(include=["("]), "not a valid regular expression"),
    ],
)
def test_bad_policies_name_the_problem(policy, message):
    with pytest.raises(ValueError, match=message):
        apply_freeze_policy(tiny_resnet(), policy)


def test_freeze_table_lists_blocks_flags_and_parameter_counts():
    backbone = tiny_resnet()
    apply_freeze_policy(backbone, FreezeConfig(last_blocks=1))
    table = freeze_table(backbone)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["block", "size", "trainable"]
    top = next(l for l in lines if l.startswith("top"))
    stem = next(l for l in lines if l.startswith("stem"))
    assert " partly " in top  # conv trains, frozen BatchNorm does not
    assert " no " in stem
    total = sum(int(np.prod(w.shape)) for w in backbone.model.weights)
    assert f"total params {total:,}" in lines[-1]
    assert "stem_conv" in freeze_table(backbone, layers=True)


@pytest.mark.parametrize("make_backbone", [tiny_resnet, lambda: build_keras_app("MobileNetV2", weights=None, image_size=(32, 32))])
def test_selection_is_pure_and_predicts_what_applying_it_trains(make_backbone):
    """`select_trainable` reads no `trainable` flag, so whatever the previous phase set, it agrees with
    the layers that hold trainable weights once the selection is applied."""
    backbone = make_backbone()
    policies = [
        FreezeConfig(), FreezeConfig(last_blocks=2), FreezeConfig(trainable="all"),
        FreezeConfig(last_blocks=3, batchnorm="train"), FreezeConfig(include=["bn"], batchnorm="train"),
    ]
    for previous in policies:
        for policy in policies:
            apply_freeze_policy(backbone, previous)
            flags = [layer.trainable for layer in backbone.model._flatten_layers()]
            selection = select_trainable(backbone, policy)
            assert [layer.trainable for layer in backbone.model._flatten_layers()] == flags
            apply_freeze_policy(backbone, policy)
            assert selection.trainable_layers == tuple(l.name for l in backbone.model.layers if l.trainable_weights)
