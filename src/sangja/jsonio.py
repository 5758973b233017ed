"""JSON for the runtime's hot path, straight over the C accelerator `_json`.

`import json` costs ~10 ms here (json.decoder pulls in re and enum), about a third of a
whole `runc run`. The C scanner and encoder are the same ones `json` uses.
"""

import _json


class _Ctx:
    """The attributes _json.make_scanner reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name):
        raise ValueError(f"invalid JSON constant {name}")


_scan = _json.make_scanner(_Ctx())
_WS = " \t\n\r"


def loads(data):
    """Parse one JSON document (str or UTF-8 bytes). Raises ValueError with the position."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    i = len(data) - len(data.lstrip(_WS))
    try:
        obj, end = _scan(data, i)
        if not data[end:].strip(_WS):
            return obj
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (StopIteration, ValueError, SystemError):
        # The C scanner reports errors through json.decoder, which its bare use here
        # does not always reach: let the json module say precisely where it is wrong.
        pass
    import json

    try:  # raises JSONDecodeError (a ValueError) with line and column
        return json.loads(data, parse_constant=_Ctx.parse_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _reject(o):
    raise TypeError(f"object of type {type(o).__name__} is not JSON serializable")


_encode = _json.make_encoder(
    None, _reject, _json.encode_basestring_ascii, None, ":", ",", False, False, False
)


def dumps(obj):
    """Compact JSON, as json.dumps(obj, separators=(",", ":")) writes it."""
    return "".join(_encode(obj, 0))


_encode_sorted = _json.make_encoder(
    None, _reject, _json.encode_basestring_ascii, None, ": ", ", ", True, False, True
)


def dumps_sorted(obj):
    """json.dumps(obj, sort_keys=True)'s text, byte for byte (a canonical form to hash)."""
    return "".join(_encode_sorted(obj, 0))


def dumps_indent(obj, indent="  ", level=0):
    """Indented JSON (for output people read, e.g. `state`)."""
    if isinstance(obj, dict) and obj:
        pad = "\n" + indent * (level + 1)
        items = [f"{dumps(str(k))}: {dumps_indent(v, indent, level + 1)}" for k, v in obj.items()]
        return "{" + pad + ("," + pad).join(items) + "\n" + indent * level + "}"
    if isinstance(obj, list) and obj:
        pad = "\n" + indent * (level + 1)
        items = [dumps_indent(v, indent, level + 1) for v in obj]
        return "[" + pad + ("," + pad).join(items) + "\n" + indent * level + "]"
    return dumps(obj)
