"""Policy revisions (/admin/revisions, ``view``): the list, the comparison of any two
(/admin/revisions/diff?from=A&to=B: file diffs, role summary, people impact) and the rollback to
an earlier one (/admin/revisions/<n>/rollback, ``edit_policy``: GET shows what would change and
asks for confirmation, POST stores revision n's files as a new revision).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from accessd.console import policy_edits, policy_revisions
from accessd.errors import AccessdError, Invalid
from accessd.web.admin import bp
from accessd.web.admin.guard import actor, requires, services
from accessd.web.admin.params import int_arg, page_arg

MAX_REVISION = 2**31 - 1


@bp.get("/revisions")
@requires("view")
def revisions():
    return render_template(
        "admin/revisions.html", page=policy_revisions.list_revisions(services().db, page_arg())
    )


@bp.get("/revisions/diff")
@requires("view")
def revision_diff():
    a = int_arg("from", 0, 1, MAX_REVISION)
    b = int_arg("to", 0, 1, MAX_REVISION)
    if not a or not b:
        raise Invalid("choose two revisions: from and to")
    return render_template("admin/revision_diff.html", cmp=policy_revisions.compare(services().db, a, b))


@bp.route("/revisions/<int:number>/rollback", methods=["GET", "POST"])
@requires("edit_policy")
def revision_rollback(number: int):
    db = services().db
    if number > MAX_REVISION:
        raise Invalid("no such revision number")
    preview = policy_edits.preview_rollback(db, number)  # 404 for an unknown revision, first
    status = 200
    if request.method == "POST":
        try:
            base = int(request.form.get("base") or "")
        except ValueError:
            base = -1
        try:
            if base < 1:
                raise Invalid("base must be the revision in force when the rollback was previewed")
            new = policy_edits.rollback(db, number, base, actor(), request.form.get("reason"))
        except AccessdError as exc:
            flash(exc.message, "error")
            status = exc.status
        else:
            flash(
                f"Rolled back: revision {new} holds revision {number}'s policy and is in force now.",
                "success",
            )
            return redirect(url_for("admin.revisions"))
    return render_template(
        "admin/rollback.html", preview=preview, reason=request.form.get("reason", "")
    ), status
