"""Query-string parameters of admin pages, checked: bad ones are a 400 page that says why."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from flask import request

from accessd.errors import Invalid
from accessd.web.query import int_arg, text_arg

__all__ = ["check_query", "int_arg", "page_arg", "text_arg"]

MAX_PAGE = 1_000_000


def check_query() -> None:
    """Invalid unless the query string decodes as UTF-8 (checked for every admin request).
    Werkzeug keeps an undecodable escape such as ``%ED%A0%80`` (an encoded lone surrogate) as its
    literal text, which would then be searched for as if someone had typed it."""
    try:
        unquote_to_bytes(request.query_string.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(
            "the query string is not valid UTF-8 text (for example an encoded lone surrogate)",
            pointer="/query",
        ) from None


def page_arg() -> int:
    """``?page=N`` (1-based)."""
    return int_arg("page", 1, 1, MAX_PAGE)
