"""Pins gfile's strict decoding of listed file names, which `storage.listdir`/`storage.walk` work around.

No upstream issue names this exact case; the closest report is tensorflow/tensorflow#46474
(gfile failing with UnicodeDecodeError on non-UTF-8 paths).
"""

import os

import pytest
import tensorflow as tf

from tfx_transfer import storage


@pytest.fixture
def folder_with_latin1_name(tmp_path):
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "wb") as f:
        f.write(b"x")
    return str(tmp_path)


def test_gfile_still_cannot_list_a_name_that_is_not_utf8(folder_with_latin1_name):
    """Fails once gfile lists such names; then `storage` can list local folders with gfile too."""
    with pytest.raises(UnicodeDecodeError):
        tf.io.gfile.listdir(folder_with_latin1_name)


def test_storage_lists_and_reads_a_name_that_is_not_utf8(folder_with_latin1_name):
    (name,) = storage.listdir(folder_with_latin1_name)
    path = storage.join(folder_with_latin1_name, name)
    assert [path] == [storage.join(d, f) for d, _, files in storage.walk(folder_with_latin1_name) for f in files]
    assert storage.exists(path) and storage.size(path) == 1 and storage.read_bytes(path) == b"x"
