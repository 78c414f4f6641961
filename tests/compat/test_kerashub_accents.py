"""`compat.kerashub_accents`: accents are stripped exactly when the Hugging Face tokenizer config would strip them.

The upstream bug itself is pinned by tests/test_text_kerashub.py::test_keras_hub_hf_bert_tokenizer_still_keeps_accents
(it needs the packaged MiniLM checkpoint).
"""

import uuid

import pytest

import tfx_transfer.storage as storage
from tfx_transfer.compat.kerashub_accents import match_hf_accent_stripping


class _Tokenizer:
    strip_accents = False


@pytest.mark.parametrize(
    "config, strips",
    [
        ({"do_lower_case": True}, True),
        ({"do_lower_case": True, "strip_accents": None}, True),
        ({"do_lower_case": True, "strip_accents": False}, False),
        ({"do_lower_case": False}, False),
        (None, False),
    ],
)
def test_accents_are_stripped_as_hugging_face_would(config, strips):
    preset = f"ram://preset_{uuid.uuid4().hex[:8]}"
    if config is not None:
        storage.write_json_atomic(f"{preset}/tokenizer_config.json", config)
    tokenizer = _Tokenizer()
    match_hf_accent_stripping(preset, tokenizer)
    assert tokenizer.strip_accents is strips
