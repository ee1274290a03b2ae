"""Reading AuthZEN requests: the body as JSON, then each member checked and named on error.

Everything here raises :class:`accessd.errors.Invalid` with a JSON pointer to the member at
fault; nothing decides. Rules every string and number of a request obeys (whatever member it is
in, because any of them may be logged, echoed or compared):

* no NUL character and no unpaired UTF-16 surrogate (``"\\ud800"``): a database cannot store
  them and a response cannot encode them, so they are refused before anything is decided;
* numbers are finite (``1e999`` is refused, not turned into infinity);
* objects and arrays nest at most :data:`MAX_DEPTH` levels.

Resource types and actions are *not* checked against the catalogue here: an unknown one is a
deny with its reason (``unknown_resource_type``, ``unknown_action``), as AuthZEN clients expect.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping

import orjson

from accessd.errors import Invalid

SUBJECT_TYPES = ("user",)
MAX_ID = 200
MAX_NAME = 64
MAX_FIELDS = 1000
MAX_DEPTH = 32


class Request:
    """One checked evaluation request (after batch defaults were applied)."""

    __slots__ = (
        "subject_type",
        "subject_id",
        "rtype",
        "rid",
        "props",
        "action",
        "fields",
        "purpose",
        "explain",
    )

    def __init__(self, subject_type, subject_id, rtype, rid, props, action, fields, purpose, explain):
        self.subject_type = subject_type
        self.subject_id = subject_id
        self.rtype = rtype
        self.rid = rid
        self.props = props
        self.action = action
        self.fields = fields  # None: the record as a whole; else a tuple of field names
        self.purpose = purpose  # None: the client's or the resource type's default applies
        self.explain = explain


# --------------------------------------------------------------------------------------------
# the body


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _no_constant(text: str):
    raise _NotFinite(text)  # NaN, Infinity, -Infinity: not JSON (RFC 8259), refused


def parse_body(data: bytes) -> dict:
    """The request body as a JSON object whose strings and numbers obey the module's rules.

    orjson reads it when it can; whatever orjson refuses, and any body with a number of 19 or
    more digits (orjson turns integers past 64 bits into floats), is read again by the standard
    library, which decides the outcome and names the fault. A byte order mark is ignored (RFC
    8259 allows that); any other text than UTF-8 is refused."""
    if not data:
        raise Invalid("the request body is empty; send a JSON object", pointer="")
    body = _UNREAD
    if _LONG_NUMBER not in data.translate(_NUMBER_SHAPE):
        with contextlib.suppress(orjson.JSONDecodeError):  # the standard library says why
            body = orjson.loads(data)
    if body is _UNREAD:
        body = _standard_loads(data)
    if not isinstance(body, dict):
        raise Invalid(f"the request body must be a JSON object, not {kind(body)}", pointer="")
    # Only escapes (\u0000, \ud800) can carry a NUL or a lone surrogate past the UTF-8 check, and
    # only an escape can hide a quote: without a backslash, the brackets outside strings tell
    # the nesting, so the common plain body is not walked.
    if b"\\" in data:
        check_values(body, strings=True)
    elif _nests_too_deep(data):
        check_values(body, strings=False)  # finds where, for the message
    return body


_UNREAD = object()
# digits -> "0", what may stand before a number (":", ",", "[", "-", white space) -> ":"
_NUMBER_SHAPE = bytes.maketrans(b"0123456789-,[ \t\r\n", b"0" * 10 + b":" * 7)
_LONG_NUMBER = b":" + b"0" * 19  # a number of 19 digits or more (or such digits in a string)
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_STRING = re.compile(rb'"[^"]*"')


def _standard_loads(data: bytes):
    try:
        text = data.decode("utf-8")  # strict: an encoded surrogate (ED A0 80) is not UTF-8
    except UnicodeDecodeError:
        raise Invalid("the request body is not UTF-8 text", pointer="") from None
    try:
        return json.loads(text.removeprefix("\ufeff"), parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise Invalid(f"the request body nests deeper than {MAX_DEPTH} levels", pointer="") from None
    except _NotFinite as exc:
        raise Invalid(f"the request body holds a number out of range: {str(exc)[:40]}", pointer="") from None
    except ValueError as exc:
        raise Invalid(f"the request body is not valid JSON: {exc}", pointer="") from None


def _nests_too_deep(data: bytes) -> bool:
    """Whether the JSON text ``data`` (valid, with no backslash, so every quote opens or closes a
    string) holds a container MAX_DEPTH levels below the top. Works on the brackets outside
    strings, braces written as brackets (in valid JSON the pairs match): each pass drops the
    innermost empty pairs, one level, and MAX_DEPTH passes leave some only when something nests
    deeper. C-speed byte operations; a 50-record call takes about 30 us."""
    skeleton = data.translate(_AS_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:  # a string with brackets in it
        skeleton = _STRING.sub(b"", skeleton)
    for _ in range(MAX_DEPTH):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"[]", b"")
    return bool(skeleton)


def check_values(value, strings: bool = True, pointer: str = "") -> None:
    """Raise Invalid at the first string with a NUL or a lone surrogate (when ``strings``) or the
    first container nested deeper than MAX_DEPTH. Iterative: any depth is safe to walk.

    Each item carries its path as a chain of (parent, key) tuples; the JSON pointer is written
    out only for the error (writing one per member was half the cost of a 50-record call)."""
    stack = [(value, 0, None)]
    while stack:
        v, depth, path = stack.pop()
        if isinstance(v, dict):
            if depth >= MAX_DEPTH:
                ptr = _pointer(pointer, path)
                raise Invalid(f"{ptr or 'the body'} nests deeper than {MAX_DEPTH} levels", pointer=ptr)
            for k, item in v.items():
                here = (path, k)
                if strings and not (k.isascii() and "\x00" not in k):
                    check_text(k, _pointer(pointer, here))
                stack.append((item, depth + 1, here))
        elif isinstance(v, list):
            if depth >= MAX_DEPTH:
                ptr = _pointer(pointer, path)
                raise Invalid(f"{ptr or 'the body'} nests deeper than {MAX_DEPTH} levels", pointer=ptr)
            stack.extend((item, depth + 1, (path, i)) for i, item in enumerate(v))
        elif strings and isinstance(v, str) and not (v.isascii() and "\x00" not in v):
            check_text(v, _pointer(pointer, path))  # builds the pointer; most such text is fine


def _pointer(prefix: str, path) -> str:
    """The JSON pointer of a ``check_values`` path chain."""
    tokens = []
    while path is not None:
        path, key = path
        tokens.append(str(key) if isinstance(key, int) else _escape(key))
    return prefix + "".join(f"/{t}" for t in reversed(tokens))


def check_text(s: str, pointer: str) -> None:
    """Raise Invalid if ``s`` holds a NUL character or an unpaired UTF-16 surrogate."""
    if "\x00" in s:
        raise Invalid(f"{pointer or 'a string'} contains a NUL character", pointer=pointer)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(
            f"{pointer or 'a string'} contains an unpaired UTF-16 surrogate (not valid Unicode text)",
            pointer=pointer,
        ) from None


def _escape(key: str) -> str:
    """A member name as a JSON-pointer token (RFC 6901). Never echoes an invalid character."""
    token = str(key).replace("~", "~0").replace("/", "~1")
    return token.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\u0000")


def kind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


# --------------------------------------------------------------------------------------------
# members


# obj and text are written out rather than sharing a "required member of type T" helper: they run
# about eight times per evaluation, and the extra call made reading a request 40% slower.


def obj(parent: Mapping, key: str, ptr: str, required: bool = True) -> dict | None:
    v = parent.get(key)
    if v is None:
        if required:
            raise Invalid(f"{ptr} is required", pointer=ptr)
        return None
    if not isinstance(v, dict):
        raise Invalid(f"{ptr} must be an object, not {kind(v)}", pointer=ptr)
    return v


def text(parent: Mapping, key: str, ptr: str, required: bool = True, max_len: int = MAX_ID) -> str | None:
    v = parent.get(key)
    if v is None:
        if required:
            raise Invalid(f"{ptr} is required", pointer=ptr)
        return None
    if not isinstance(v, str):
        raise Invalid(f"{ptr} must be a string, not {kind(v)}", pointer=ptr)
    if not v or len(v) > max_len:
        raise Invalid(f"{ptr} must be 1-{max_len} characters", pointer=ptr)
    return v


def flag(parent: Mapping, key: str, ptr: str) -> bool:
    v = parent.get(key, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise Invalid(f"{ptr} must be true or false, not {kind(v)}", pointer=ptr)
    return v


def subject(body: Mapping, ptr: str, need_id: bool = True) -> tuple[str, str | None]:
    s = obj(body, "subject", ptr)
    stype = text(s, "type", ptr + "/type", max_len=MAX_NAME)
    sid = text(s, "id", ptr + "/id", required=need_id)
    obj(s, "properties", ptr + "/properties", required=False)
    return stype, sid


def resource(body: Mapping, ptr: str, need_id: bool = True) -> tuple[str, str | None, dict]:
    r = obj(body, "resource", ptr)
    rtype = text(r, "type", ptr + "/type", max_len=MAX_NAME)
    rid = text(r, "id", ptr + "/id", required=need_id)
    props = obj(r, "properties", ptr + "/properties", required=False) or {}
    return rtype, rid, props


def action(body: Mapping, ptr: str) -> tuple[str, tuple[str, ...] | None]:
    a = obj(body, "action", ptr)
    name = text(a, "name", ptr + "/name", max_len=MAX_NAME)
    props = obj(a, "properties", ptr + "/properties", required=False)
    fields = None
    if props:
        one = text(props, "field", ptr + "/properties/field", required=False, max_len=MAX_NAME)
        many = props.get("fields")
        if one is not None and many is not None:
            raise Invalid(f"{ptr}/properties: give field or fields, not both", pointer=ptr + "/properties")
        if one is not None:
            fields = (one,)
        elif many is not None:
            fields = _field_list(many, ptr + "/properties/fields")
    return name, fields


def _field_list(many, fptr: str) -> tuple[str, ...]:
    if not isinstance(many, list) or not many:
        raise Invalid(f"{fptr} must be a non-empty array of field names", pointer=fptr)
    if len(many) > MAX_FIELDS:
        raise Invalid(f"{fptr} may name at most {MAX_FIELDS} fields", pointer=fptr)
    for i, f in enumerate(many):
        if not isinstance(f, str) or not f or len(f) > MAX_NAME:
            raise Invalid(f"{fptr}/{i} must be a field name (1-{MAX_NAME} characters)", pointer=f"{fptr}/{i}")
    return tuple(dict.fromkeys(many))


def context(body: Mapping, ptr: str) -> tuple[str | None, bool]:
    c = obj(body, "context", ptr, required=False)
    if not c:
        return None, False
    purpose = text(c, "purpose", ptr + "/purpose", required=False, max_len=MAX_NAME)
    return purpose, flag(c, "explain", ptr + "/explain")


def evaluation(body: Mapping) -> Request:
    """The body of one evaluation (``/access/v1/evaluation``)."""
    return _request((body, "/subject"), (body, "/resource"), (body, "/action"), (body, "/context"))


def batch_entry(body: Mapping, item, ptr: str) -> Request:
    """The entry at ``ptr`` of an ``evaluations`` batch: a member the entry lacks is the
    top-level one (its default), and a fault in that default points at the top-level member."""
    if not isinstance(item, dict):
        raise Invalid(f"{ptr} must be an object, not {kind(item)}", pointer=ptr)
    return _request(
        (item, ptr + "/subject") if "subject" in item else (body, "/subject"),
        (item, ptr + "/resource") if "resource" in item else (body, "/resource"),
        (item, ptr + "/action") if "action" in item else (body, "/action"),
        (item, ptr + "/context") if "context" in item else (body, "/context"),
    )


def _request(sub: tuple, res: tuple, act: tuple, ctx: tuple) -> Request:
    """Each member read from its ``(parent, pointer)``: the parent holds it under the pointer's
    last token."""
    stype, sid = subject(*sub)
    rtype, rid, props = resource(*res)
    name, fields = action(*act)
    purpose, explain = context(*ctx)
    return Request(stype, sid, rtype, rid, props, name, fields, purpose, explain)
