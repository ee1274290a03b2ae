"""The permission matrix (/admin/matrix, ``view``) and editing it (``edit_policy``).

- ``GET /admin/matrix?type=&action=&purpose=``: roles x fields of the revision in force, each
  cell an allow / mask / deny badge with the rules (and, in the legend, the conditions) behind it.
- ``GET /admin/matrix/cell?...&role=&field=``: one cell, its rules, and the active people it
  covers (holding the role or a role inheriting it).
- ``GET /admin/matrix/edit?...[&role=&field=][&edit=...]``: the edit form. Pending edits travel
  as repeated ``edit`` values (``role:type:action:field:purpose=effect``), in the query string
  here and as hidden inputs in forms, so nothing is kept on the server until saved.
- ``POST /admin/matrix/preview``: the pending edits plus the form's one, previewed: who gains or
  loses what, the rules written, the notes, and the save form. htmx asks for the fragment alone
  (live preview as the form changes); without JavaScript the Preview button gets the full page.
- ``POST /admin/matrix/save``: stores the edits as a new revision (comment required) against the
  revision they were previewed on (``base``), then redirects to the revisions.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from accessd.console import policy_edits, policy_matrix
from accessd.errors import AccessdError, Invalid
from accessd.pdp.requests import check_text
from accessd.web.admin import bp
from accessd.web.admin.guard import actor, requires, services
from accessd.web.admin.params import text_arg


def _view_args(source) -> dict:
    """type / action / purpose from the query string or a form, checked."""
    out = {}
    for name in ("type", "action", "purpose"):
        value = _text(source, name)
        if value is not None:
            out[name] = value
    return out


def _text(source, name: str, max_len: int = 200) -> str | None:
    if source is request.args:
        return text_arg(name, max_len)
    raw = source.get(name)
    if raw is None or raw.strip() == "":
        return None
    check_text(raw, f"/form/{name}")
    if len(raw) > max_len:
        raise Invalid(f"{name} may be at most {max_len} characters")
    return raw.strip()


def _pending(source) -> list[policy_edits.CellEdit]:
    """The pending edits a request carries (checked; the last edit of a cell wins)."""
    return policy_edits.parse_edits(source.getlist("edit"))


@bp.get("/matrix")
@requires("view")
def matrix():
    args = _view_args(request.args)
    view = policy_matrix.matrix_view(services().db, args.get("type"), args.get("action"), args.get("purpose"))
    return render_template("admin/matrix.html", view=view, m=view.matrix)


@bp.get("/matrix/cell")
@requires("view")
def matrix_cell():
    args = _view_args(request.args)
    role, column = text_arg("role"), text_arg("field")
    if not role or not column:
        raise Invalid("role and field are required")
    cell = policy_matrix.cell_view(
        services().db, args.get("type"), args.get("action"), args.get("purpose"), role, column
    )
    return render_template("admin/matrix_cell.html", v=cell)


@bp.get("/matrix/edit")
@requires("edit_policy")
def matrix_edit():
    args = _view_args(request.args)
    pending = _pending(request.args)
    view = policy_matrix.matrix_view(
        services().db, args.get("type"), args.get("action"), args.get("purpose"), pending
    )
    return render_template(
        "admin/matrix_edit.html",
        view=view,
        m=view.matrix,
        pending=pending,
        role=text_arg("role"),
        field=text_arg("field"),
        effect=text_arg("effect"),
    )


def _edits_from_form() -> list[policy_edits.CellEdit]:
    """The pending edits plus the one the form's role / field / effect choose (when all three
    are set)."""
    values = list(request.form.getlist("edit"))
    role, column, effect = (_text(request.form, n) for n in ("role", "field", "effect"))
    args = _view_args(request.form)
    if role and column and effect:
        if not {"type", "action", "purpose"} <= set(args):
            raise Invalid("type, action and purpose are required")
        values.append(f"{role}:{args['type']}:{args['action']}:{column}:{args['purpose']}={effect}")
    return policy_edits.parse_edits(values)


@bp.post("/matrix/preview")
@requires("edit_policy")
def matrix_preview():
    fragment = request.headers.get("HX-Request") == "true"
    template = "admin/matrix_preview_part.html" if fragment else "admin/matrix_preview.html"
    try:
        edits = _edits_from_form()
        args = _view_args(request.form)
        preview = policy_edits.preview_edits(services().db, edits) if edits else None
    except AccessdError as exc:
        # htmx swaps only 2xx answers: the live preview shows the refusal in place; the page
        # without JavaScript answers with the error's own status
        return render_template(template, error=exc.message, preview=None, edits=[], args={}), (
            200 if fragment else exc.status
        )
    return render_template(template, preview=preview, edits=edits, error=None, args=args)


@bp.post("/matrix/save")
@requires("edit_policy")
def matrix_save():
    try:
        edits = _pending(request.form)
        base = _int(request.form.get("base"), "base")
        number = policy_edits.save_edits(services().db, edits, base, actor(), request.form.get("comment", ""))
    except AccessdError as exc:
        flash(exc.message, "error")
        try:
            edits = _pending(request.form)
            preview = policy_edits.preview_edits(services().db, edits) if edits else None
        except AccessdError:
            edits, preview = [], None
        return render_template(
            "admin/matrix_preview.html",
            preview=preview,
            edits=edits,
            error=None,
            args=_view_args(request.form),
            comment=request.form.get("comment", ""),
        ), exc.status
    flash(f"Saved as policy revision {number}; it is in force now.", "success")
    return redirect(url_for("admin.revisions"))


def _int(raw: str | None, name: str) -> int:
    try:
        return int(raw or "")
    except ValueError:
        raise Invalid(f"{name} must be a revision number") from None
