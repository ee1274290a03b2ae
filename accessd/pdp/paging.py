"""Paging for the AuthZEN search endpoints: ``page.limit`` / ``page.token`` in,
``page.next_token`` / ``count`` / ``total`` out.

A token is opaque to clients: the offset of the next result and a digest of the query it
belongs to (the body without ``page``). Sending a token with a different query is an error, as
the AuthZEN search profile recommends, so a client cannot page through a mixture of two result
sets. ``page.limit: 0`` is allowed and returns no results, only the total.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping

from accessd.errors import Invalid
from accessd.pdp.requests import obj

DEFAULT_PAGE = 100
MAX_PAGE = 1000
_TOKEN = re.compile(r"^(\d{1,12}):([0-9a-f]{16})$")


class Page:
    __slots__ = ("offset", "limit", "query")

    def __init__(self, offset: int, limit: int, query: str):
        self.offset = offset
        self.limit = limit
        self.query = query  # digest of the request without its page member

    def result(self, hits: list) -> dict:
        """The AuthZEN search response for ``hits`` (all results, in a stable order)."""
        chunk = hits[self.offset : self.offset + self.limit]
        nxt = self.offset + len(chunk)
        token = ""
        if nxt < len(hits) and self.limit:
            token = base64.urlsafe_b64encode(f"{nxt}:{self.query}".encode()).decode().rstrip("=")
        return {"results": chunk, "page": {"next_token": token, "count": len(chunk), "total": len(hits)}}


def page_of(body: Mapping) -> Page:
    """The page asked for; Invalid for a bad limit or a token that is not this query's."""
    page = obj(body, "page", "/page", required=False) or {}
    limit = page.get("limit", DEFAULT_PAGE)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_PAGE:
        raise Invalid(f"/page/limit must be an integer from 0 to {MAX_PAGE}", pointer="/page/limit")
    query = _digest({k: v for k, v in body.items() if k != "page"})
    token = page.get("token")
    offset = 0
    if token not in (None, ""):
        if not isinstance(token, str) or len(token) > 64:
            raise Invalid("/page/token must be a page.next_token this service issued", pointer="/page/token")
        try:
            m = _TOKEN.match(base64.urlsafe_b64decode(token.encode("ascii") + b"==").decode("ascii"))
        except (ValueError, UnicodeError, binascii.Error):
            m = None
        if m is None:
            raise Invalid("/page/token is not a token this service issued", pointer="/page/token")
        if m.group(2) != query:
            raise Invalid(
                "/page/token belongs to a different query; send the same request as for the first "
                "page, or start again without a token",
                pointer="/page/token",
            )
        offset = int(m.group(1))
    return Page(offset, limit, query)


def _digest(query: Mapping) -> str:
    text = json.dumps(query, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
