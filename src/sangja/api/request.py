"""What the API's handlers read from a request and answer with: the JSON body, the query
parameters, X-Registry-Auth, and Docker's error bodies with its status codes.  Every
handler module imports this; it imports none of them."""

from __future__ import annotations

from aiohttp import web

from sangja.engine.errors import EngineError
from sangja.errors import SangjaError


def error_response(status: int, message: str) -> web.Response:
    # Content-Type exactly application/json (no charset): the docker CLI reads the message
    # out of an error only then, else it prints the raw body
    import json

    body = json.dumps({"message": message}).encode()
    return web.Response(body=body, status=status, content_type="application/json")


def _status_of(e: SangjaError) -> int:
    if isinstance(e, EngineError):
        return e.status
    from sangja.image.store import ImageNotFound

    if isinstance(e, ImageNotFound):
        return 404
    return getattr(e, "status", 500) or 500


class BadParameter(EngineError):
    status = 400


async def json_body(request, required: bool = False) -> dict:
    """The request's JSON object body ({} when there is none)."""
    if not request.can_read_body:
        if required:
            raise BadParameter("a JSON body is required")
        return {}
    import json

    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise BadParameter(f"invalid JSON body: {e}")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadParameter("the JSON body must be an object")
    return body


def q_bool(request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    v = v.strip().lower()
    return v not in ("", "0", "false", "no")


def q_int(request, name: str, default: int | None = None) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        try:
            return int(float(v))
        except ValueError:
            raise BadParameter(f"invalid value for {name}: {v!r}")


def q_filters(request):
    """The `filters` parameter: Docker's JSON ({"k": ["v"]} or the old {"k": {"v": true}})."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    import json

    try:
        f = json.loads(raw)
    except ValueError as e:
        raise BadParameter(f"invalid filters: {e}")
    if not isinstance(f, dict):
        raise BadParameter("invalid filters: want a JSON object")
    out = {}
    for k, v in f.items():
        if isinstance(v, dict):
            out[k] = [x for x, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            out[k] = [str(v)]
    return out


def q_time(request, name: str) -> float | None:
    """A time parameter (since, until): Unix seconds (what the docker CLI sends), or
    anything engine/units.py reads (RFC 3339, a duration ago)."""
    v = request.query.get(name)
    if not v or v == "0":
        return None
    try:
        return float(v)
    except ValueError:
        from sangja.engine.units import parse_timestamp

        try:
            return parse_timestamp(v)
        except ValueError as e:
            raise BadParameter(str(e))


def registry_auth(request):
    """X-Registry-Auth: base64url JSON {username, password, serveraddress} -> (user,
    password), or None (anonymous / the stored credentials)."""
    raw = request.headers.get("X-Registry-Auth")
    if not raw:
        return None
    import base64
    import json

    try:
        pad = "=" * (-len(raw) % 4)
        doc = json.loads(base64.urlsafe_b64decode(raw + pad))
    except (ValueError, TypeError):
        return None  # dockerd ignores a header it cannot read too
    if not isinstance(doc, dict):
        return None
    user, pw = doc.get("username"), doc.get("password")
    if doc.get("identitytoken"):
        return None
    return (user, pw) if user and pw else None
