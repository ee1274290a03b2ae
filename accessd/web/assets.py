"""Where the Jinja templates and the static files are, in a checkout and in an installed wheel.

The templates live in the top-level ``templates/`` directory of the repository (static files,
vendored with their licences, in ``templates/static/``). A wheel carries that directory as the
data-only package ``accessd.templates`` (setup.py, pyproject.toml's ``package-dir``), i.e. at
``<site-packages>/accessd/templates``; a checkout (and an editable install) has it next to the
``accessd`` package. ``create_app`` and the admin blueprint's static folder both ask here.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # the accessd package directory


def templates_dir() -> Path:
    """The templates directory: the installed package's ``accessd/templates`` when it exists,
    else the checkout's ``templates/`` beside the package."""
    installed = _PACKAGE / "templates"
    return installed if installed.is_dir() else _PACKAGE.parent / "templates"


def static_dir() -> Path:
    """The static files (served by the admin blueprint at ``/admin/static``)."""
    return templates_dir() / "static"
