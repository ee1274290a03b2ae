"""``accessd events`` (Shared Signals deliveries: list, retry) and ``accessd stream`` (streams
for receivers that cannot call the management API: add, list, remove; rotate-key).

Nothing here prints a SET, a signing key or a stream's authorization header: a stream shows
``authorization: set`` at most.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from accessd.cli.base import Context, Group, actor, pass_ctx
from accessd.errors import Invalid
from accessd.ssf import events as ev
from accessd.ssf import keys, outbox, streams


def _time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@click.group("events", cls=Group, invoke_without_command=True)
@click.option(
    "--status",
    type=click.Choice(outbox.STATUSES),
    help="only deliveries with this status (default: pending and failed)",
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.pass_context
def events(ctx: click.Context, status: str | None, as_json: bool):
    """Shared Signals deliveries: without a subcommand, list pending and failed ones.

    Columns (tab-separated, "-" when empty): id, status, event, subject, stream, endpoint,
    attempts, created, next attempt (pending) or delivered, last error. Times are UTC."""
    if ctx.invoked_subcommand is not None:
        return
    c = ctx.ensure_object(Context)
    for d in outbox.deliveries(c.db, (status,) if status else ("pending", "failed")):
        if as_json:
            row = d._asdict()
            for name in ("created_at", "next_attempt_at", "delivered_at"):
                row[name] = _time(row[name])
            click.echo(json.dumps(row))
            continue
        cols = (
            str(d.id),
            d.status,
            d.event,
            d.subject_id,
            d.stream_id,
            d.endpoint,
            str(d.attempts),
            _time(d.created_at),
            _time(d.next_attempt_at or d.delivered_at),
            d.last_error,
        )
        click.echo("\t".join(col or "-" for col in cols))


@events.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--stream", "stream_id", help="only this stream's failed deliveries")
@pass_ctx
def events_retry(c: Context, ids: tuple[int, ...], stream_id: str | None):
    """Put failed deliveries back to pending (IDS, or a stream's, or all), with a fresh count of
    attempts; a running server sends them within a second or so."""
    n = outbox.retry(c.db, ids, stream_id, actor=actor())
    click.echo(f"{n} failed deliver{'y' if n == 1 else 'ies'} pending again")


@click.group("stream", cls=Group)
def stream():
    """Shared Signals streams (receivers with a management API client create their own)."""


@stream.command("add")
@click.argument("url")
@click.option(
    "--events",
    "event_names",
    required=True,
    help=f"comma-separated, of: {', '.join(ev.EVENT_TYPES)}",
)
@click.option("--audience", help="the SETs' aud (default: the URL's origin)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(ev.SUBJECT_FORMATS),
    default="email",
    show_default=True,
    help="how SETs name the person (sub_id)",
)
@click.option("--authorization", help='the Authorization header the receiver wants, e.g. "Bearer xyz"')
@click.option(
    "--authorization-file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="read the Authorization header from this file ('-': standard input); keeps it out of "
    "the shell history and the process list",
)
@pass_ctx
def stream_add(c: Context, url, event_names, audience, fmt, authorization, authorization_file):
    """Push events to URL (RFC 8935): a stream for a receiver that cannot call the management API."""
    if authorization and authorization_file:
        raise Invalid("give --authorization or --authorization-file, not both")
    if authorization_file is not None:
        authorization = _read(authorization_file).strip()
    c.db.upgrade()
    names = [n.strip() for n in event_names.split(",") if n.strip()]
    made = streams.add_push_stream(
        c.db, url, names, audience=audience, fmt=fmt, authorization=authorization, actor=actor()
    )
    click.echo(f"stream {made.id}: {', '.join(ev.short_name(u) for u in made.events_delivered)} to {url}")


def _read(path: Path) -> str:
    """The file's text, or standard input's for '-'."""
    try:
        with click.open_file(str(path)) as f:
            return f.read()
    except OSError as exc:
        raise Invalid(f"--authorization-file: cannot read {path}: {exc.strerror}") from None


@stream.command("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@pass_ctx
def stream_list(c: Context, as_json: bool):
    """List streams: id, owner (API client, or "cli"), status, delivery, events, format,
    audience, deliveries by status. Never the authorization header."""
    for s, counts in streams.list_streams(c.db):
        row = {
            "stream_id": s.id,
            "client": s.client,
            "status": s.status,
            "method": "push" if s.delivery_method == ev.PUSH else "poll",
            "endpoint_url": s.endpoint_url,
            "authorization": "set" if s.authorization_header else None,
            "events": [ev.short_name(u) for u in s.events_delivered],
            "format": s.subject_format,
            "audience": s.audience,
            "deliveries": counts,
        }
        if as_json:
            click.echo(json.dumps(row))
            continue
        cols = (
            s.id,
            s.client or "cli",
            s.status + (f" ({s.status_reason})" if s.status_reason else ""),
            row["method"] + (f" {s.endpoint_url}" if s.endpoint_url else ""),
            "authorization: set" if s.authorization_header else None,
            ",".join(row["events"]),
            s.subject_format,
            ",".join(s.audience),
            " ".join(f"{k}={v}" for k, v in sorted(counts.items())),
        )
        click.echo("\t".join(col or "-" for col in cols))


@stream.command("remove")
@click.argument("stream_id")
@pass_ctx
def stream_remove(c: Context, stream_id: str):
    """Delete a stream (any, also one a receiver made) with its undelivered events."""
    streams.remove_stream(c.db, stream_id, actor())
    click.echo(f"removed stream {stream_id}")


@stream.command("rotate-key")
@pass_ctx
def stream_rotate_key(c: Context):
    """Sign SETs with a new key from now on; the old one stays in the JWKS for
    ``ssf.key_retention_days``."""
    with c.db.session() as s:
        kid = keys.rotate(s, actor())
    click.echo(f"new signing key {kid}")


def register(cli: click.Group) -> None:
    cli.add_command(events)
    cli.add_command(stream)
