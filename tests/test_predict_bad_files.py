"""`tfx-transfer predict` reports each bad file with its reason and classifies the rest."""

import io
import os
import struct

import keras
import pytest
import tensorflow as tf

from tfx_transfer.cli import main
from tfx_transfer.data.image import ImagePreprocessor
from tfx_transfer.export import export_saved_model


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    return export_saved_model(model, ImagePreprocessor((8, 8)), ["cat", "dog"], str(tmp_path_factory.mktemp("e")), "pets")


def test_each_bad_file_gets_its_reason_and_the_rest_are_classified(export_dir, tmp_path, capsys):
    good = tmp_path / "good.png"
    good.write_bytes(tf.io.encode_png(tf.zeros([5, 5, 3], tf.uint8)).numpy())
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x00\xff\x1b[2Jnot an image")
    bomb = bytearray(good.read_bytes())
    bomb[16:24] = struct.pack(">II", 65535, 65535)
    (tmp_path / "bomb.png").write_bytes(bytes(bomb))
    badly_named = os.path.join(os.fsencode(tmp_path), b"\xff.png")
    with open(badly_named, "wb") as f:
        f.write(good.read_bytes())
    files = [str(good), str(tmp_path / "missing.png"), str(junk), str(tmp_path / "bomb.png"),
             os.fsdecode(badly_named), str(good)]

    assert main(["predict", export_dir, *files]) == 1

    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        str(good), str(tmp_path / "missing.png"), str(junk), str(tmp_path / "bomb.png"), f"{tmp_path}/\\xff.png", str(good)
    ]
    assert lines[0].split("\t")[1] in ("cat", "dog") and lines[5] == lines[0] and lines[4].endswith(lines[0][len(str(good)):])
    assert "\terror: cannot be read: " in lines[1] and lines[1].endswith("No such file or directory")
    assert "error: not a valid image_bytes input: Unknown image file format" in lines[2]
    assert lines[3].endswith("error: not a valid image_bytes input: image header declares 4294836225 pixels; "
                             "at most 67108864 are decoded")
    assert all(line.replace("\t", " ").isprintable() for line in lines)
    assert "3 of 6 file(s) could not be classified" in captured.err


def test_dash_reads_one_input_from_standard_input_and_only_once(export_dir, tmp_path, monkeypatch, capsys):
    png = tf.io.encode_png(tf.zeros([5, 5, 3], tf.uint8)).numpy()
    good = tmp_path / "good.png"
    good.write_bytes(png)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(png)))

    assert main(["predict", export_dir, "-", str(good)]) == 0

    stdin_line, file_line = capsys.readouterr().out.strip().splitlines()
    assert stdin_line.split("\t")[0] == "-" and stdin_line.split("\t")[1:] == file_line.split("\t")[1:]

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(png)))
    assert main(["predict", export_dir, "-", "-"]) == 2
    assert "'-' (standard input) can be given once, received it 2 times" in capsys.readouterr().err
