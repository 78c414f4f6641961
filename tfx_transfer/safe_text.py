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
import re

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


def tf_error_reason(message: str) -> str:
    """The printable one-line reason inside a TensorFlow op error's message.

    Drops the graph-execution wrapper, node names and op suffixes around it.

    >>> tf_error_reason("Graph execution error:\\n\\nassertion failed: [rate] [1]\\n\\t [[{{node Assert}}]] [Op:f]")
    'rate 1'
    >>> tf_error_reason("Graph execution error:\\n\\nDetected at node d:\\n<stack traces unavailable>\\nBad format.\\n\\t [[{{node d}}]]")
    'Bad format.'
    >>> tf_error_reason("{{function_node __wrapped__DecodeWav}} Can only read 16-bit WAV files [Op:DecodeWav]")
    'Can only read 16-bit WAV files'
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    wrapper = ("Graph execution error", "[[", "Detected at node", "<stack traces", "File ")
    useful = [line for line in lines if not line.startswith(wrapper)]
    line = next((l for l in useful if "assertion failed:" in l), useful[-1] if useful else message.strip())
    line = re.sub(r"\{\{function_node [^}]*\}\}|\[Op:[^\]]*\]|^.*assertion failed:", "", line)
    if "] [" in line or line.strip().startswith("["):  # tf.debugging.Assert prints each piece in brackets
        line = " ".join(piece.strip() for piece in re.findall(r"\[([^\[\]]*)\]", line))
    return printable(" ".join(line.split()))
