"""Kept for ``gunicorn wsgi:app`` from the repository root; the entry point is accessd.wsgi."""

from accessd.wsgi import app  # noqa: F401
