"""WSGI entry point: ``gunicorn wsgi:app``."""

from accessd import create_app

app = create_app()
