"""Directory sync runs: the list (/admin/sync), a run's report (/admin/sync/<id>), and approving
or rejecting a held run (/admin/sync/<id>/approve, /reject: a confirmation page, then a POST).

Viewing needs ``view``; approving and rejecting ``approve_sync``. Approval re-reads the directory
(:func:`accessd.console.syncs.approve`): when it cannot (no directory configured, unreachable,
another sync running), the confirmation page comes back with the reason and the run stays held.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm

from accessd import clock
from accessd.console import syncs
from accessd.errors import AccessdError, Conflict
from accessd.web.admin import bp
from accessd.web.admin.guard import actor, requires, services
from accessd.web.admin.params import page_arg, text_arg


class ConfirmForm(FlaskForm):
    """A button-only form: its CSRF token is what it carries."""


@bp.get("/sync")
@requires("view")
def sync_runs():
    status = text_arg("status", 24)
    args = {"status": status} if status else {}
    return render_template(
        "admin/sync_runs.html",
        page=syncs.list_runs(services().db, page_arg(), status=status),
        args=args,
        statuses=syncs.STATUSES,
        zone=str(clock.zone()),
    )


@bp.get("/sync/<int:run_id>")
@requires("view")
def sync_run(run_id: int):
    kind = text_arg("kind", 16)
    args = {"kind": kind} if kind else {}
    return render_template(
        "admin/sync_run.html",
        report=syncs.run_report(services().db, run_id, page_arg(), kind=kind),
        args=args,
        labels=syncs.LABELS,
        zone=str(clock.zone()),
    )


def _decide(run_id: int, what: str, apply):
    """The confirmation page of ``what`` (approve / reject) on GET; on POST ``apply()`` -> (message,
    category, run to show) and to that run with the message, or this page again with the reason
    it did not happen."""
    db = services().db
    form = ConfirmForm()
    run = syncs.run_summary(db, run_id)
    status = 200
    if form.validate_on_submit():
        try:
            message, category, shown = apply()
        except AccessdError as exc:
            flash(exc.message, "error")
            status = exc.status
            run = syncs.run_summary(db, run_id)
        else:
            flash(message, category)
            return redirect(url_for("admin.sync_run", run_id=shown))
    elif not run.held:
        flash(str(Conflict(f"sync run {run_id} is not pending approval (status {run.status})")), "error")
        return redirect(url_for("admin.sync_run", run_id=run_id))
    report = syncs.run_report(db, run_id)
    return render_template("admin/sync_decide.html", what=what, run=run, report=report, form=form), status


@bp.route("/sync/<int:run_id>/approve", methods=["GET", "POST"])
@requires("approve_sync")
def sync_approve(run_id: int):
    def apply():
        s = services()
        outcome = syncs.approve(s.db, s.settings, run_id, actor())
        if outcome.held_run_id is not None:  # the directory changed: the new plan needs approval
            return outcome.message, "error", outcome.held_run_id
        return outcome.message, "success", run_id

    return _decide(run_id, "approve", apply)


@bp.route("/sync/<int:run_id>/reject", methods=["GET", "POST"])
@requires("approve_sync")
def sync_reject(run_id: int):
    return _decide(
        run_id, "reject", lambda: (syncs.reject(services().db, run_id, actor()), "success", run_id)
    )
