"""The one clock: "today" and "now" in the practice's time zone, and a monotonic clock.

Every date comparison in accessd -- the engine's start and end dates and ``r.env.today``, the
scheduler's end-date sweep, sync planning, ``accessd offboard`` -- asks this module, so they all
agree on what day it is (offboarding once used the UTC date and the rest the host's date, and
near midnight they disagreed).

The zone is ``settings.timezone`` (an IANA name, default ``UTC``), set once per process by
:func:`configure` (the app factory and the CLI call it; an unknown name is refused when the
settings load). Dates mean days in that zone: a start date is the first day worked and an end
date the last, so access begins at 00:00 on the start date and ends at midnight after the end
date, both in the practice's zone. Instants stay zone-free: timestamps stored in the database are
naive UTC (``models.utcnow``), and :func:`now` is aware, so it compares with any other instant.

:func:`monotonic` is for the per-process caches' intervals (subjects, tokens): it only moves
forward, whatever happens to the wall clock.

Tests set the clock instead of patching attributes: :func:`set` fixes "now" (or "today"),
:func:`advance` moves both clocks forward, :func:`reset` goes back to the system clock in UTC
(the ``clock`` fixture in ``tests/conftest.py`` does that after each test).
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_zone: dt.tzinfo = dt.UTC
_fixed: dt.datetime | None = None  # an instant set by a test; None: the system clock
_offset = 0.0  # seconds a test advanced the clocks by


def zone_named(name: str) -> dt.tzinfo:
    """The time zone called ``name`` (IANA, e.g. ``Europe/Berlin``); ValueError when unknown."""
    if name == "UTC":
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def configure(timezone: str) -> None:
    """Use ``timezone`` (``settings.timezone``) for :func:`today` and :func:`now` in this process."""
    global _zone
    _zone = zone_named(timezone)


def zone() -> dt.tzinfo:
    """The configured time zone."""
    return _zone


def now() -> dt.datetime:
    """The current instant, aware, in the configured zone."""
    if _fixed is not None:
        return _fixed.astimezone(_zone)
    return dt.datetime.fromtimestamp(time.time() + _offset, _zone)


def today() -> dt.date:
    """The current date in the configured zone."""
    return now().date()


def monotonic() -> float:
    """Seconds on a clock that never goes back (for intervals, not dates)."""
    return time.monotonic() + _offset


def set(*, now: dt.datetime | None = None, today: dt.date | None = None) -> None:
    """Fix the wall clock (tests): at the aware instant ``now``, or at noon of ``today`` in the
    configured zone. :func:`monotonic` keeps running."""
    global _fixed
    if (now is None) == (today is None):
        raise TypeError("clock.set takes exactly one of now= or today=")
    if now is not None and now.tzinfo is None:
        raise ValueError("clock.set(now=...) needs an aware datetime")
    _fixed = now if now is not None else dt.datetime.combine(today, dt.time(12), _zone)


def advance(seconds: float) -> None:
    """Move the wall clock and :func:`monotonic` forward by ``seconds`` (tests)."""
    global _fixed, _offset
    _offset += seconds
    if _fixed is not None:
        _fixed += dt.timedelta(seconds=seconds)


def reset() -> None:
    """Back to the system clock, in UTC, with nothing advanced."""
    global _zone, _fixed, _offset
    _zone, _fixed, _offset = dt.UTC, None, 0.0
