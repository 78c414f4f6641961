"""`tfx_transfer.serving.Client` over REST and gRPC, against a STAND-IN for TF Serving.

TF Serving's binary cannot be installed here. `serving_standin.StandInServer` (127.0.0.1 only)
loads the real exports in TF1 sessions and converts requests and answers through TensorProtos
as TF Serving does; it is a stand-in, so these tests check the client's side of the protocol.
"""


import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_resnet
from harness.ports import free_ports
from serving_standin import StandInServer
from tfx_transfer.cli import main
from tfx_transfer.data.image import ImagePreprocessor
from tfx_transfer.export import export_saved_model
from tfx_transfer.model import build_model
from tfx_transfer.recipe import HeadConfig
from tfx_transfer.serving.client import Client
from tfx_transfer.serving.errors import (
    ModelNotFoundError,
    PredictionRequestError,
    ServerUnavailableError,
    ServingTimeoutError,
)

CLASSES = ["cat", "dog", "fox"]
TRANSPORTS = ["rest", "grpc"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Versions 1 and 2 of `pets`: two tiny image models with different weights, and PNG files."""
    base = str(tmp_path_factory.mktemp("exports"))
    models, paths = [], {}
    for version in (1, 2):
        tf.keras.utils.set_random_seed(version)
        model, _ = build_model(tiny_resnet(image_size=(16, 16)), 3, HeadConfig(dropout=0.0))
        paths[version] = export_saved_model(model, ImagePreprocessor((16, 16)), CLASSES, base, "pets", version=version,
                                            warmup_requests=False)
        models.append(model)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    files = tmp_path_factory.mktemp("files")
    pngs = []
    for i, image in enumerate(images):
        path = files / f"{i}.png"
        path.write_bytes(tf.io.encode_png(image).numpy())
        pngs.append(path)
    expected = {v: m.predict(np.stack(images).astype("float32"), verbose=0) for v, m in zip((1, 2), models)}
    return {"paths": paths, "pngs": pngs, "expected": expected}


@pytest.fixture(scope="module")
def server(exports):
    with StandInServer({"pets": exports["paths"]}, labels={"pets": {"stable": 1, "canary": 2}}) as standin:
        yield standin


def url(server, transport):
    return server.rest_url if transport == "rest" else server.grpc_url


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_labels_and_probabilities_match_the_keras_model(server, exports, transport):
    client = Client(url(server, transport), "pets")
    predictions = client.predict([p.read_bytes() for p in exports["pngs"]])
    expected = exports["expected"][2]  # no version asked: the latest
    np.testing.assert_allclose([p.probabilities for p in predictions], expected, atol=1e-5)
    assert [p.label for p in predictions] == [CLASSES[i] for i in expected.argmax(1)]
    assert [p.probability for p in predictions] == pytest.approx(expected.max(1), abs=1e-5)
    assert client.input_key == "image_bytes"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("choice, version", [({"version": 1}, 1), ({"label": "stable"}, 1), ({"label": "canary"}, 2)])
def test_versions_and_labels_pick_the_model(server, exports, transport, choice, version):
    (prediction,) = Client(url(server, transport), "pets", **choice).predict([exports["pngs"][0].read_bytes()])
    np.testing.assert_allclose(prediction.probabilities, exports["expected"][version][0], atol=1e-5)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "model, choice, named", [("birds", {}, "'birds' latest version"), ("pets", {"version": 7}, "'pets' version 7"),
                             ("pets", {"label": "beta"}, "'pets' label 'beta'")],
)
def test_unknown_model_version_or_label_names_all_three(server, exports, transport, model, choice, named):
    address = url(server, transport)
    with pytest.raises(ModelNotFoundError) as caught:
        Client(address, model, **choice).predict([exports["pngs"][0].read_bytes()])
    assert str(caught.value).startswith(f"TF Serving at {address}, model {named}")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_input_the_server_cannot_decode_is_a_request_error(server, transport):
    client = Client(url(server, transport), "pets")
    with pytest.raises(PredictionRequestError) as caught:
        client.predict([b"not an image"])
    assert caught.value.status in (400, "INVALID_ARGUMENT")
    assert "model 'pets'" in str(caught.value)


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_server_down_is_reported_with_its_address(scheme):
    address = f"{scheme}://127.0.0.1:{free_ports(1)[0]}"
    with pytest.raises(ServerUnavailableError, match=f"TF Serving at {address}, model 'pets'"):
        Client(address, "pets", input_key="image_bytes", timeout=3).predict([b"x"])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_slow_server_times_out(exports, transport):
    with StandInServer({"pets": {1: exports["paths"][1]}}, delay_seconds=5) as slow:
        client = Client(url(slow, transport), "pets", input_key="image_bytes", timeout=0.3)
        with pytest.raises(ServingTimeoutError, match="no answer within 0.3 s"):
            client.predict([exports["pngs"][0].read_bytes()])


def test_bad_client_settings_are_refused():
    with pytest.raises(ValueError, match="http://localhost:8501"):
        Client("localhost:8501", "pets")
    with pytest.raises(ValueError, match="not both"):
        Client("http://localhost:8501", "pets", version=1, label="stable")


def test_cli_predict_server_prints_each_file_and_reports_unreadable_ones(server, exports, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image")
    files = [str(exports["pngs"][0]), str(corrupt), str(exports["pngs"][1])]
    assert main(["predict", "--server", server.rest_url, "--model", "pets", "--label", "stable", *files]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    expected = exports["expected"][1]
    assert lines[0].split("\t")[:2] == [files[0], CLASSES[expected[0].argmax()]]
    assert lines[1].startswith(f"{files[1]}\terror:")
    assert lines[2].split("\t")[1] == CLASSES[expected[1].argmax()]


def test_cli_predict_server_unknown_model_is_a_one_line_error(server, exports, capsys):
    assert main(["predict", "--server", server.grpc_url, "--model", "birds", str(exports["pngs"][0])]) == 2
    err = capsys.readouterr().err
    assert f"TF Serving at {server.grpc_url}, model 'birds' latest version" in err
