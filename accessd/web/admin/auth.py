"""Sign-in, the second factor, sign-out, and the administrator's own page (/admin/me: TOTP).

Sign-in is two steps when TOTP is on: the password step remembers only who passed it, for
``CODE_SECONDS``, in the session; the code step signs in. Both count towards the lockout
(:mod:`accessd.console.signin`) and towards the per-address rate limit.
"""

from __future__ import annotations

import time

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from accessd.console import admins, signin
from accessd.errors import AccessdError
from accessd.web.admin import bp
from accessd.web.admin.guard import (
    actor,
    allowed,
    requires,
    safe_next,
    services,
    sign_in_limit,
    start_session,
)

PENDING, PENDING_AT = "admin_pending", "admin_pending_at"
CODE_SECONDS = 300  # the password step is good for this long


class SignInForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class CodeForm(FlaskForm):
    code = StringField(
        "Code from your authenticator app, or a recovery code",
        validators=[DataRequired(), Length(max=40)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "text"},
    )


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("admin/login.html", form=form), status
    try:
        with sign_in_limit():
            admin = signin.check_password(
                services().db, services().settings, form.username.data, form.password.data
            )
    except AccessdError as exc:
        flash(exc.message, "error")
        return render_template("admin/login.html", form=form), exc.status
    if "view" not in allowed(admin):
        flash("This account may not use the accessd admin UI.", "error")
        return render_template("admin/login.html", form=form), 403
    if admin.totp_on:
        next_url = request.args.get("next")
        session.clear()
        session[PENDING], session[PENDING_AT] = admin.id, int(time.time())
        return redirect(url_for("admin.login_code", next=next_url))
    return _signed_in(admin)


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    admin_id = session.get(PENDING)
    if admin_id is None or int(time.time()) - int(session.get(PENDING_AT, 0)) > CODE_SECONDS:
        session.pop(PENDING, None)
        flash("Sign in with your password first.", "info")
        return redirect(url_for("admin.login"))
    form = CodeForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("admin/login_code.html", form=form), status
    try:
        with sign_in_limit():
            admin = signin.check_code(services().db, services().settings, admin_id, form.code.data)
    except AccessdError as exc:
        flash(exc.message, "error")
        return render_template("admin/login_code.html", form=form), exc.status
    if "view" not in allowed(admin):
        session.clear()
        flash("This account may not use the accessd admin UI.", "error")
        return redirect(url_for("admin.login"))
    return _signed_in(admin)


def _signed_in(admin: signin.Admin):
    from accessd.web.admin.guard import CurrentAdmin

    next_url = safe_next(request.args.get("next"))
    start_session(admin)
    login_user(CurrentAdmin(admin, allowed(admin)))
    signin.record_sign_in(services().db, admin.id, request.remote_addr)
    return redirect(next_url)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("admin.login"))


# the administrator's own page: two-factor sign-in ----------------------------------------------


@bp.get("/me")
@requires("view")
def me():
    pending = admins.pending_enrolment(
        services().db, current_user.admin.id, services().settings.admin.totp_issuer
    )
    totp_on = current_user.admin.totp_on
    return render_template("admin/me.html", pending=pending, totp_on=totp_on, form=CodeForm())


@bp.post("/me/totp")
@requires("view")
def totp_start():
    admins.start_totp(services().db, current_user.admin.id, services().settings.admin.totp_issuer)
    return redirect(url_for("admin.me"))


@bp.post("/me/totp/confirm")
@requires("view")
def totp_confirm():
    form = CodeForm()
    if not form.validate_on_submit():
        flash("Enter the code your authenticator app shows.", "error")
        return redirect(url_for("admin.me"))
    try:
        codes = admins.confirm_totp(services().db, current_user.admin.id, form.code.data, actor=actor())
    except AccessdError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.me"))
    # shown once, on this answer only (not stored anywhere readable)
    return render_template("admin/recovery_codes.html", codes=codes)


@bp.post("/me/totp/disable")
@requires("view")
def totp_disable():
    admins.disable_totp(services().db, current_user.username, actor=actor())
    flash("Two-factor sign-in is off.", "info")
    return redirect(url_for("admin.me"))
