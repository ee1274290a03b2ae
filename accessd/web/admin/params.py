"""Query-string parameters of admin pages, checked: bad ones are a 400 page that says why."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from flask import request

from accessd.errors import Invalid
from accessd.web.query import int_arg, text_arg

__all__ = ["check_query", "int_arg", "page_arg", "text_arg"]

MAX_PAGE = 1_000_000


def check_query() -> None:
    """Invalid unless the query string -- and a posted form -- decode as UTF-8 (checked for every
    admin request). Werkzeug keeps an undecodable escape such as ``%ED%A0%80`` (an encoded lone
    surrogate) in a query string as its literal text, and replaces it in a form with U+FFFD: either
    way a different text than was sent would be searched for or stored."""
    _check_encoded(request.query_string, "the query string", "/query")
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        # cached: the form is parsed from the same bytes afterwards
        _check_encoded(request.get_data(cache=True), "the form", "/form")


def _check_encoded(raw: bytes, what: str, pointer: str) -> None:
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(
            f"{what} is not valid UTF-8 text (for example an encoded lone surrogate)", pointer=pointer
        ) from None


def page_arg() -> int:
    """``?page=N`` (1-based)."""
    return int_arg("page", 1, 1, MAX_PAGE)
