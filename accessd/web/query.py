"""Query-string parameters, checked: a bad one raises Invalid (a 400 that says why, pointing at
``/query/<name>``) -- for the JSON APIs and the admin pages alike."""

from __future__ import annotations

from flask import request

from accessd.errors import Invalid
from accessd.pdp.requests import check_text


def text_arg(name: str, max_len: int = 200) -> str | None:
    """A parameter as checked text (no NUL, no lone surrogate, bounded, stripped), or None when
    absent or blank."""
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return None
    pointer = f"/query/{name}"
    check_text(raw, pointer)
    if len(raw) > max_len:
        raise Invalid(f"{name} may be at most {max_len} characters", pointer=pointer)
    return raw.strip()


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``; ``default`` when absent."""
    raw = text_arg(name, 20)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}", pointer=f"/query/{name}")
    return value
