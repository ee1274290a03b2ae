"""gunicorn settings for accessd: ``gunicorn -c python:accessd.gunicorn_conf accessd.wsgi:app``.

Hooks: ``post_worker_init`` starts each worker's Shared Signals push deliverer and loads its
caches at boot; ``child_exit`` drops a dead worker's metrics gauges;
``worker_exit`` flushes the worker's decision log (atexit covers it too; this is the belt to those
braces, and it also runs when a worker is recycled after max_requests).
gunicorn reads only the module's names that are its settings or hooks; the imported names and
``argv`` are ignored.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from accessd import metrics
from accessd.config import load_settings
from accessd.errors import AccessdError
from accessd.pdp.decision_log import close_all
from accessd.servers import warm_up
from accessd.ssf.delivery import start_all as start_deliverers

# the longest path a Unix socket may have is 107 bytes on Linux (104 on BSD and macOS)
_MAX_SOCKET_PATH = 100


def on_starting(server):
    """Give each server its own control socket: ``<instance_path>/gunicorn-<bind>.ctl``.

    gunicorn 25.1+ opens a control socket for ``gunicornc`` at one path per user
    (``$XDG_RUNTIME_DIR/gunicorn.ctl`` or ``~/.gunicorn/gunicorn.ctl``); a second server on the
    machine takes it over, and stopping either removes it, so ``gunicornc`` would manage the wrong
    server or none. An explicit ``--control-socket`` or ``--no-control-socket`` is left alone; a
    path too long for a Unix socket disables it (with a warning) rather than failing.
    """
    cfg = server.cfg
    setting = cfg.settings.get("control_socket")
    if setting is None or cfg.control_socket_disable or setting.value != setting.default:
        return  # an older gunicorn, or chosen explicitly
    try:
        instance = Path(load_settings().instance_path).resolve()
    except AccessdError:
        cfg.set("control_socket_disable", True)  # the app itself reports the bad settings
        return
    bind = re.sub(r"[^A-Za-z0-9.]+", "-", "_".join(cfg.bind)).strip("-")
    path = str(instance / f"gunicorn-{bind}.ctl")
    if len(path.encode()) > _MAX_SOCKET_PATH:
        server.log.warning("control socket disabled: %s is too long for a Unix socket", path)
        cfg.set("control_socket_disable", True)
        return
    cfg.set("control_socket", path)


def post_worker_init(worker):
    """Start the worker's Shared Signals push deliverer at boot, not at its first request: events
    queued by the CLI or the scheduler are delivered even by a server that gets no traffic."""
    start_deliverers()
    warm_up(worker.wsgi)


def child_exit(server, worker):
    """A worker is gone: drop its gauges from the shared metrics directory."""
    metrics.worker_died(worker.pid)


def worker_exit(server, worker):
    close_all()


def argv(bind: str, workers: int = 2, threads: int = 1, *extra: str) -> list[str]:
    """The command that serves accessd under gunicorn with this config (used by ``accessd serve``,
    the HTTP bench and the tests). ``threads > 1`` selects gthread workers, else sync workers.
    The app is ``accessd.wsgi:app``, so it works from any working directory."""
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
        "accessd.wsgi:app",
    ]
