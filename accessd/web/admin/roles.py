"""Roles (/admin/roles, ``view``): each role of the catalogue in force with its place in the role
graph and its active holders, and one role's members, paged, with where each grant comes from
(/admin/roles/<name>). Roles people hold that the policy no longer declares are listed too."""

from __future__ import annotations

from flask import render_template

from accessd.console import people_roles
from accessd.web.admin import bp
from accessd.web.admin.guard import requires, services
from accessd.web.admin.params import page_arg


@bp.get("/roles")
@requires("view")
def roles():
    return render_template("admin/roles.html", roles=people_roles.roles(services().db))


@bp.get("/roles/<name>")
@requires("view")
def role(name: str):
    info, page = people_roles.role(services().db, name, page_arg())
    return render_template("admin/role.html", role=info, page=page)
