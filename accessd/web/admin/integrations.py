"""What accessd is connected to: API clients and tokens (/admin/clients), HR sources, their events
and SCIM (/admin/sources), Shared Signals streams (/admin/streams).

Viewing needs ``view``; creating, rotating and revoking a client and pausing, enabling and
removing a stream need ``manage_integrations``. Each change is a confirmation page (GET) and a
POST. A new or rotated token is shown once, on the answer to that POST (``no-store``, like every
admin page) -- never stored in the session or a flash message, never logged.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from accessd import clock
from accessd.console import integrations
from accessd.errors import AccessdError
from accessd.pdp.tokens import SCOPES
from accessd.web.admin import bp
from accessd.web.admin.guard import actor, requires, services
from accessd.web.admin.params import page_arg

try:
    from wtforms.fields.choices import SelectChoice
except ImportError:  # wtforms < 3.3 takes (value, label) pairs (3.3 deprecates them)

    def SelectChoice(value: str, label: str) -> tuple[str, str]:  # noqa: N802
        return (value, label)


SCOPE_HELP = {
    "decide": "an application asking for decisions (AuthZEN)",
    "admin": "reading the decision log over the API",
    "hr": "an HR system: signed events and SCIM",
    "ssf": "a Shared Signals receiver managing its streams",
}


class ClientForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    scope = SelectField("Scope", choices=[SelectChoice(s, f"{s}: {SCOPE_HELP[s]}") for s in SCOPES])
    default_purpose = SelectField("Default purpose", validators=[Optional()])


class ConfirmForm(FlaskForm):
    """A button-only form: its CSRF token is what it carries."""


class StreamStatusForm(FlaskForm):
    reason = TextAreaField("Reason (optional)", validators=[Optional(), Length(max=200)])


def _render_error(template: str, exc: AccessdError, **context):
    flash(exc.message, "error")
    return render_template(template, **context), exc.status


# -- API clients --------------------------------------------------------------------------------


@bp.get("/clients")
@requires("view")
def clients():
    return render_template(
        "admin/clients.html", clients=integrations.list_clients(services().db), zone=str(clock.zone())
    )


@bp.route("/clients/new", methods=["GET", "POST"])
@requires("manage_integrations")
def client_new():
    db = services().db
    form = ClientForm()
    form.default_purpose.choices = [SelectChoice("", "none: requests must name a purpose")] + [
        SelectChoice(p, p) for p in integrations.purposes(db)
    ]
    if not form.validate_on_submit():
        return render_template("admin/client_new.html", form=form), (400 if form.errors else 200)
    try:
        issued = integrations.create_client(
            db, form.name.data, form.scope.data, form.default_purpose.data or None, actor()
        )
    except AccessdError as exc:
        return _render_error("admin/client_new.html", exc, form=form)
    return render_template("admin/client_token.html", issued=issued, rotated=False)


@bp.route("/clients/<int:client_id>/rotate", methods=["GET", "POST"])
@requires("manage_integrations")
def client_rotate(client_id: int):
    return _confirmed(
        client_id,
        "rotate",
        integrations.rotate_client,
        lambda issued: render_template("admin/client_token.html", issued=issued, rotated=True),
    )


@bp.route("/clients/<int:client_id>/revoke", methods=["GET", "POST"])
@requires("manage_integrations")
def client_revoke(client_id: int):
    def done(client):
        flash(f"Revoked {client.name}: every worker refuses its token within about a second.", "success")
        return redirect(url_for("admin.clients"))

    return _confirmed(client_id, "revoke", integrations.revoke_client, done)


def _confirmed(client_id: int, what: str, act, done):
    """GET: the confirmation page of ``what``; POST: ``act(db, client_id, actor)``, then ``done``
    with its result (a refusal comes back on the confirmation page)."""
    db = services().db
    form = ConfirmForm()
    context = {"form": form, "client": integrations.client(db, client_id), "what": what}
    if not form.validate_on_submit():
        return render_template("admin/client_confirm.html", **context)
    try:
        result = act(db, client_id, actor())
    except AccessdError as exc:
        return _render_error("admin/client_confirm.html", exc, **context)
    return done(result)


# -- HR sources, their events, SCIM --------------------------------------------------------------


@bp.get("/sources")
@requires("view")
def sources():
    s = services()
    return render_template(
        "admin/sources.html",
        sources=integrations.hr_sources(s.settings),
        events=integrations.hr_events(s.db, page_arg()),
        scim=integrations.scim_overview(s.db, s.settings),
        zone=str(clock.zone()),
    )


# -- Shared Signals streams ------------------------------------------------------------------------


@bp.get("/streams")
@requires("view")
def streams():
    return render_template("admin/streams.html", streams=integrations.list_streams(services().db))


_STREAM_ACTIONS = {"pause": "paused", "enable": "enabled"}


@bp.route("/streams/<stream_id>/<any(pause, enable):what>", methods=["GET", "POST"])
@requires("manage_integrations")
def stream_status(stream_id: str, what: str):
    db = services().db
    form = StreamStatusForm()
    stream = integrations.stream(db, stream_id)
    context = {"form": form, "stream": stream, "what": what}
    if not form.validate_on_submit():
        return render_template("admin/stream_confirm.html", **context), (400 if form.errors else 200)
    try:
        integrations.set_stream_status(db, stream.id, _STREAM_ACTIONS[what], actor(), form.reason.data)
    except AccessdError as exc:
        return _render_error("admin/stream_confirm.html", exc, **context)
    flash(f"Stream {stream.id} is {_STREAM_ACTIONS[what]}.", "success")
    return redirect(url_for("admin.streams"))


@bp.route("/streams/<stream_id>/remove", methods=["GET", "POST"])
@requires("manage_integrations")
def stream_remove(stream_id: str):
    db = services().db
    form = ConfirmForm()
    stream = integrations.stream(db, stream_id)
    context = {"form": form, "stream": stream, "what": "remove"}
    if not form.validate_on_submit():
        return render_template("admin/stream_confirm.html", **context)
    try:
        integrations.remove_stream(db, stream.id, actor())
    except AccessdError as exc:
        return _render_error("admin/stream_confirm.html", exc, **context)
    flash(f"Removed stream {stream.id} and its undelivered events.", "success")
    return redirect(url_for("admin.streams"))
