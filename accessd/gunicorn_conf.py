"""gunicorn settings for accessd: ``gunicorn -c python:accessd.gunicorn_conf wsgi:app``.

The hook flushes each worker's decision log when the worker exits (atexit covers it too; this is
the belt to those braces, and it also runs when a worker is recycled after max_requests).
"""

from __future__ import annotations


def worker_exit(server, worker):
    from accessd.decision_log import close_all

    close_all()


def argv(bind: str, workers: int = 2, threads: int = 1, *extra: str) -> list[str]:
    """The command that serves accessd under gunicorn with this config (used by ``accessd serve``,
    the HTTP bench and the tests). ``threads > 1`` selects gthread workers, else sync workers."""
    import sys

    worker = ["-k", "gthread", "--threads", str(threads)] if threads > 1 else ["-k", "sync"]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:accessd.gunicorn_conf",
        "-w",
        str(workers),
        *worker,
        "-b",
        bind,
        *extra,
        "wsgi:app",
    ]
