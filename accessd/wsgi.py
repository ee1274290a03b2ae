"""The WSGI entry point: ``gunicorn accessd.wsgi:app`` (what ``accessd serve`` runs).

Inside the package, so the server starts from any working directory.
"""

from accessd import create_app

app = create_app()
