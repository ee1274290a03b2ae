"""People: the list with search, filters and paging (/admin/people), a new person
(/admin/people/new), a person's page (/admin/people/<subject id>) and the actions on a person
(/admin/people/<subject id>/actions/<action>).

Reading needs ``view``; creating a person and every action need ``manage_people``. An action is
a confirmation page (GET: what will happen, with a reason field) and a POST that does it through
:func:`accessd.console.people_actions.perform` -- the routines every other trigger uses, with source
admin -- then redirects to the person with a flashed outcome. Refused input comes back on the
same page with its message and status (400, 409); an unknown subject is the 404 page.

Subject ids may contain ``/`` (the ``path`` converter keeps it); a person whose subject id is
literally ``new`` is reached through the list's search, not by typing the URL.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField

from accessd import clock
from accessd.console import people as staff
from accessd.console import people_actions as person_actions
from accessd.errors import AccessdError
from accessd.web.admin import bp
from accessd.web.admin.guard import actor, reach, requires, services
from accessd.web.admin.params import page_arg, text_arg

FILTERS = {"q": 200, "status": 16, "role": 200, "department": 200}
_ACTIONS = ", ".join(f'"{a}"' for a in person_actions.ACTIONS)  # quoted: some have a hyphen


class PersonForm(FlaskForm):
    subject_id = StringField("Subject id (what applications send)", render_kw={"required": True})
    username = StringField("Username")
    display_name = StringField("Display name")
    email = StringField("E-mail", render_kw={"type": "email"})
    department = StringField("Department")
    region = StringField("Region")
    start_date = StringField("First working day (YYYY-MM-DD)", render_kw={"type": "date"})


class ActionForm(FlaskForm):
    reason = TextAreaField("Reason")
    day = StringField("Last working day (YYYY-MM-DD)", render_kw={"type": "date"})
    time = StringField("Time access ends (optional, HH:MM)", render_kw={"type": "time"})
    role = SelectField("Role", choices=[], validate_choice=False)


@bp.get("/people")
@requires("view")
def people():
    args = {name: v for name, limit in FILTERS.items() if (v := text_arg(name, limit)) is not None}
    db = services().db
    return render_template(
        "admin/people.html",
        page=staff.search(db, args.get("q"), page=page_arg(), **{k: v for k, v in args.items() if k != "q"}),
        args=args,
        choices=staff.filter_choices(db),
    )


@bp.route("/people/new", methods=["GET", "POST"])
@requires("manage_people")
def person_new():
    form = PersonForm()
    if request.method == "POST":
        try:
            subject_id = staff.create(
                services().db,
                actor=actor(),
                subject_id=form.subject_id.data,
                username=form.username.data,
                display_name=form.display_name.data,
                email=form.email.data,
                department=form.department.data,
                region=form.region.data,
                start_date=staff.parse_day("first working day", form.start_date.data),
            )
        except AccessdError as exc:
            flash(exc.message, "error")
            return render_template("admin/person_new.html", form=form), exc.status
        flash(f"{subject_id}: account created (active, no roles yet)", "success")
        return redirect(url_for("admin.person", subject_id=subject_id))
    return render_template("admin/person_new.html", form=form)


@bp.get("/people/<path:subject_id>")
@requires("view")
def person(subject_id: str):
    return render_template(
        "admin/person.html",
        p=staff.person(services().db, subject_id),
        actions=person_actions.ACTIONS,
        zone=str(clock.zone()),
    )


@bp.route(
    f"/people/<path:subject_id>/actions/<any({_ACTIONS}):action>",
    methods=["GET", "POST"],
)
@requires("manage_people")
def person_action(subject_id: str, action: str):
    db = services().db
    # 404 for an unknown subject, 403 for an account with more admin rights than the actor's
    preview = person_actions.preview(db, subject_id, action, reach())
    form = ActionForm()
    form.role.choices = [("", "choose a role")] + [(r, r) for r in preview.roles]
    status = 200
    if request.method == "POST":
        try:
            effective = None
            if preview.action.needs == "date":
                effective = person_actions.parse_departure(form.day.data, form.time.data)
            changed, message = person_actions.perform(
                db,
                subject_id,
                action,
                actor=actor(),
                reach=reach(),
                reason=form.reason.data,
                role=form.role.data,
                effective=effective,
            )
        except AccessdError as exc:
            flash(exc.message, "error")
            status = exc.status
        else:
            flash(message, "success" if changed else "info")
            return redirect(url_for("admin.person", subject_id=preview.subject_id))
    return render_template(
        "admin/person_action.html", preview=preview, form=form, zone=str(clock.zone())
    ), status
