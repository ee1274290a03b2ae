"""gunicorn settings for accessd: ``gunicorn -c python:accessd.gunicorn_conf wsgi:app``.

The hook flushes each worker's decision log when the worker exits (atexit covers it too; this is
the belt to those braces, and it also runs when a worker is recycled after max_requests).
"""

from __future__ import annotations


def worker_exit(server, worker):
    from accessd.decision_log import close_all

    close_all()
