"""Typed dataclass configs built from plain dicts, with errors that name the key at fault."""

import dataclasses
import difflib
import math
import re
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A recipe or config value is missing, unknown or of the wrong type."""


def from_dict(cls, data: Any, path: str = ""):
    """Builds dataclass `cls` from `data`, checking every key and type.

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Lr:
    ...     value: float = 0.1
    >>> from_dict(Lr, {"value": 2})
    Lr(value=2.0)
    """
    return _convert(cls, data, path or cls.__name__.lower())


def to_dict(config) -> dict:
    """The plain-dict form of a config dataclass, ready for `yaml.safe_dump`."""
    return dataclasses.asdict(config)


def _convert(tp, value, path):
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        if isinstance(value, str) and str in options:
            return value
        errors, words = [], []
        for option in options:
            if option is type(None):
                continue
            if typing.get_origin(option) is typing.Literal:
                if value in typing.get_args(option):
                    return value
                words += typing.get_args(option)
                continue
            try:
                return _convert(option, value, path)
            except ConfigError as e:
                errors.append(str(e))
        if len(errors) != 1:
            raise ConfigError(f"{path}: expected {_describe(tp)}, received {value!r}.")
        raise ConfigError(errors[0] + (f" Or write {' or '.join(repr(w) for w in words)}." if words else ""))
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping of settings, received {value!r}.")
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = [k for k in value if k not in fields]
        if unknown:
            key = unknown[0]
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(
                f"{path}: unknown key {key!r}.{suggestion} Valid keys: {', '.join(sorted(fields))}."
            )
        kwargs = {}
        hints = typing.get_type_hints(tp)
        for name in fields:
            if name in value:
                kwargs[name] = _convert(hints[name], value[name], f"{path}.{name}")
        try:
            return tp(**kwargs)
        except ConfigError:
            raise
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path}: {e}") from None
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, received {value!r}.")
        (item_type, *_) = typing.get_args(tp) or (Any,)
        items = [_convert(item_type, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, received {value!r}.")
        key_type, value_type = typing.get_args(tp) or (Any, Any)
        return {
            _convert(key_type, k, f"{path}.{k}"): _convert(value_type, v, f"{path}.{k}")
            for k, v in value.items()
        }
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(
                f"{path}: expected one of {', '.join(repr(c) for c in choices)}, received {value!r}."
            )
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, received {value!r}.")
    if tp is float:
        number = _read_number(value, _FLOAT_TEXT)
        if number is None:
            raise ConfigError(f"{path}: expected a number, received {value!r} (write e.g. 0.001 or 1e-3).")
        if not math.isfinite(number):
            raise ConfigError(
                f"{path}: expected a finite number, received {value!r}; write a large finite value "
                "(e.g. 1e9) for 'no limit'."
            )
        return float(number)
    if tp is int:
        number = _read_number(value, _INT_TEXT)
        if not isinstance(number, int):
            raise ConfigError(f"{path}: expected an integer, received {value!r} (write e.g. 3 or 1_000).")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, received {value!r}.")
    raise ConfigError(f"{path}: unsupported config type {tp!r}.")


# Numbers as people write them. YAML 1.1 reads `1e-4` (no dot) and quoted numbers as strings.
_INT_TEXT = re.compile(r"[+-]?\d+(_\d+)*")
_FLOAT_TEXT = re.compile(
    r"[+-]?((\d+(_\d+)*)?\.?\d+(_\d+)*|\d+(_\d+)*\.)([eE][+-]?\d+)?|[+-]?\.?(nan|inf|infinity)",
    re.IGNORECASE,
)


def _read_number(value, syntax: re.Pattern) -> int | float | None:
    """`value` as an int or float when it is one or is text in `syntax`; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if syntax is _FLOAT_TEXT or isinstance(value, int) else None
    if not isinstance(value, str) or not syntax.fullmatch(value.strip()):
        return None
    text = re.sub(r"\.(?=[a-z])", "", value.strip(), flags=re.IGNORECASE)  # YAML's .nan, .inf
    return int(text) if syntax is _INT_TEXT else float(text)


def _describe(tp) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return " or ".join(getattr(a, "__name__", str(a)) for a in args)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits `a.b=c` into `(["a", "b"], value)`, reading the value as YAML.

    >>> parse_override("phases.1.epochs=3")
    (['phases', '1', 'epochs'], 3)
    """
    import yaml

    if "=" not in text:
        raise ConfigError(f"--set expects key=value (e.g. data.batch_size=16), received {text!r}.")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"--set has an empty key in {text!r}.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(
            f"--set {text!r}: the value {raw!r} is not valid YAML ({problem}); to pass text, quote "
            f"it: --set '{key.strip()}=\"...\"'."
        ) from None
    return key.strip().split("."), value


def apply_override(data: dict, keys: list[str], value: Any) -> None:
    """Sets `data[k0][k1]...` in place; integer keys index lists (`phases.0.epochs`)."""
    node = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(f"--set {'.'.join(keys)}: {where} is not an index of a {len(node)}-item list.")
            key = int(key)
            if last:
                node[key] = value
            else:
                node = node[key]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {'.'.join(keys)}: {where} is inside a value that is not a mapping.")
        if last:
            node[key] = value
        else:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
