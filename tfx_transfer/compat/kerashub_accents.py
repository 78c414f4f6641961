"""Strips accents in KerasHub BERT tokenizers converted from uncased Hugging Face checkpoints.

Upstream: KerasHub's Hugging Face BERT converter (keras-hub 0.32,
`keras_hub/src/utils/transformers/convert_bert.py:convert_tokenizer`) reads only
`do_lower_case` and leaves `strip_accents=False`; no upstream issue filed yet. Remove
when tests/test_text_kerashub.py::test_keras_hub_hf_bert_tokenizer_still_keeps_accents
fails (KerasHub then strips accents itself); tests/compat/test_kerashub_accents.py tests
this module.
"""

import tfx_transfer.storage as storage


def match_hf_accent_stripping(preset, tokenizer) -> None:
    """Sets `tokenizer.strip_accents` when the Hugging Face tokenizer of `preset` would strip accents.

    Hugging Face strips accents whenever it lowercases unless `strip_accents` is explicitly
    false, so uncased checkpoints such as all-MiniLM-L6-v2 were trained on "cafe", while
    KerasHub maps "café" to `[UNK]`. Does nothing for presets without a `tokenizer_config.json`.

    >>> class Tokenizer:
    ...     strip_accents = False
    >>> tokenizer = Tokenizer()
    >>> storage.write_json_atomic("ram://preset/tokenizer_config.json", {"do_lower_case": True})
    >>> match_hf_accent_stripping("ram://preset", tokenizer)
    >>> tokenizer.strip_accents
    True
    """
    config_path = storage.join(str(preset), "tokenizer_config.json")
    if not hasattr(tokenizer, "strip_accents") or not storage.exists(config_path) or storage.isdir(config_path):
        return
    config = storage.read_json(config_path)
    if config.get("do_lower_case") and config.get("strip_accents") is not False:
        tokenizer.strip_accents = True
