"""Printable text for names and messages that come from untrusted files.

File names need not be valid UTF-8 (Python hands them over with surrogate
escapes) and decoder errors can quote raw bytes of a file. Printed as they are,
they garble terminals and logs, and strict JSON cannot hold them.
`printable` keeps readable text as it is and writes everything else as
backslash escapes.

>>> printable(b"caf\\xc3\\xa9 \\xff\\x00.wav")
'café \\\\xff\\\\x00.wav'
>>> printable("bad\\udcffname.wav")
'bad\\\\xffname.wav'
"""

import os

_CONTROL_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def printable(value: str | bytes | os.PathLike, limit: int = 300) -> str:
    """`value` as printable UTF-8 text: undecodable bytes and control characters become escapes.

    Text longer than `limit` characters is cut, with `...` at the end.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        try:
            value = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that no undecodable byte produced
            value = value.encode("utf-8", "backslashreplace")
    text = value.decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() else _escape(ch) for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_valid_utf8_name(name: str) -> bool:
    """Whether a file name from `os.listdir` (a str) came from valid UTF-8 bytes.

    >>> is_valid_utf8_name("ok.wav"), is_valid_utf8_name("bad\\udcff.wav")
    (True, False)
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escape(ch: str) -> str:
    code = ord(ch)
    if code in _CONTROL_ESCAPES:
        return _CONTROL_ESCAPES[code]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
