"""Reading a request body (accessd.pdp.requests.parse_body): orjson reads it when it can, the
standard library otherwise, and the result is the same either way; the nesting check on the raw
text agrees with a walk over the parsed value."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accessd.errors import Invalid
from accessd.pdp.requests import MAX_DEPTH, _nests_too_deep, parse_body

# JSON values with the module's rules (finite numbers, text without NUL or lone surrogates)
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=40,
)


def _depth(v, level=0) -> int:
    """Containers' nesting below the top (the top container is level 0)."""
    inner = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
    if inner is None:
        return -1
    return max([level, *(_depth(x, level + 1) for x in inner)])


@settings(max_examples=400, deadline=None)
@given(values, st.booleans())
def test_the_body_reads_as_the_standard_library_reads_it(value, ascii_only):
    data = json.dumps({"v": value}, ensure_ascii=ascii_only).encode()
    assert parse_body(data) == json.loads(data)
    # integers stay integers, whatever their size (orjson alone would make floats past 64 bits)
    assert repr(parse_body(data)) == repr(json.loads(data))


@pytest.mark.parametrize("n", [2**63, 2**64, 2**70, -(2**63) - 1, 10**30, -(10**40)])
def test_integers_past_64_bits_stay_exact(n):
    body = parse_body(b'{"n": %d, "list": [1, %d]}' % (n, n))
    assert body == {"n": n, "list": [1, n]} and type(body["n"]) is int


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.integers(0, 9) | st.text("ab[]{}", max_size=4),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text("k[{", max_size=3), inner, max_size=3)
        ),
        max_leaves=60,
    ),
    st.lists(st.booleans(), min_size=0, max_size=40),  # wrappers: True an object, False an array
)
def test_the_nesting_check_on_the_text_agrees_with_a_walk(value, wrappers):
    for as_object in wrappers:
        value = {"k]": value, "x": [1]} if as_object else [value, {}]
    data = json.dumps([value]).encode()
    assert _nests_too_deep(data) == (_depth([value]) >= MAX_DEPTH)


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 1000, 5000])
def test_nesting_at_the_limit(levels):
    """The top object plus ``levels`` arrays: MAX_DEPTH levels below the top are refused."""
    data = b'{"a":' + b"[" * levels + b'"]["' + b"]" * levels + b"}"
    if levels < MAX_DEPTH:
        assert parse_body(data)["a"]
    else:
        with pytest.raises(Invalid, match="nests deeper than"):
            parse_body(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"id": "r.schmidt\xed\xa0\x80"}', "not UTF-8"),  # a surrogate encoded in the bytes
        (b'{"id": "\xff"}', "not UTF-8"),
        (b'{"id": "a\\ud800"}', "unpaired UTF-16 surrogate"),
        (b'{"id": "a\\u0000"}', "NUL"),
        (b'{"n": 1e999}', "out of range"),
        (b'{"n": NaN}', "out of range"),
        (b'{"n": 1,}', "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b"", "empty"),
    ],
)
def test_bad_bodies_are_refused_with_what_is_wrong(data, message):
    with pytest.raises(Invalid, match=message):
        parse_body(data)


def test_a_byte_order_mark_is_ignored():
    assert parse_body(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
