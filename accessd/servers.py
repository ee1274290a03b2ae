"""The HTTP servers ``accessd serve`` runs: granian (``DEFAULT``) or gunicorn; :func:`argv` builds
either command line. gunicorn's settings and hooks are in :mod:`accessd.gunicorn_conf` (a module
gunicorn reads as its config); granian's are here.

granian was measured faster than gunicorn's sync workers on accessd's workloads with the decision
log on (bench/http.py; figures in docs/server.md), and it does not give a Python worker to a
slow client (below).

Workers. granian forks each worker as a ``multiprocessing`` child, which loads the app itself
(``--factory accessd.servers:granian_worker_app``) and serves it from ``--blocking-threads`` Python
threads; sockets, HTTP parsing and waiting for slow clients happen in granian's Rust threads, so
a client that trickles its request line or headers, or connects and sends nothing, holds no
Python thread (``--http1-header-read-timeout`` closes it after ``HEADER_READ_TIMEOUT_MS``).
A request *body* is read by the Python thread as the app asks for it: a client that sends its
headers and then trickles the body does hold one -- put a body-buffering proxy (nginx's default)
in front of a service that untrusted clients reach.

Stopping. SIGTERM or SIGINT to the main process makes each worker finish the requests in flight
and return from its target; ``multiprocessing`` then ends the process with ``os._exit``, so
``atexit`` handlers do not run there. :func:`granian_worker_app` therefore registers a multiprocessing
finalizer (run on that way out) that writes every queued decision record and stops the push
deliverer -- what gunicorn's ``worker_exit`` hook and ``atexit`` do under gunicorn. A worker
still busy after ``KILL_TIMEOUT`` seconds is killed (gunicorn's ``graceful_timeout``; longer than
the decision log's 20 s of retries at close).
"""

from __future__ import annotations

import os
import sys
import time

NAMES = ("granian", "gunicorn")
DEFAULT = "granian"

HEADER_READ_TIMEOUT_MS = 10_000  # a request's line and headers must arrive within this
KILL_TIMEOUT = 30  # seconds a stopping worker may take before it is killed
RESEND_TIMES = 20  # a stop signal held while the app loaded is sent again this often (0.5 s apart)
# granian's --backpressure bounds the connections a worker holds -- idle keep-alive ones and
# ones still sending their headers included -- not the requests it runs: a low value (8) lets a
# few slow or idle clients lock everyone else out. Requests beyond the threads' capacity wait
# in granian either way.
CONNECTIONS_PER_WORKER = 512


def _worker_exit() -> None:
    from accessd.pdp.decision_log import close_all as close_decision_logs
    from accessd.ssf.delivery import close_all as close_deliverers

    close_decision_logs()  # first: the records are what must not be lost
    close_deliverers()


def granian_worker_app():
    """The app, loaded in each worker after the fork: registers the worker's exit hook and
    starts its Shared Signals push deliverer at boot (as gunicorn's ``post_worker_init`` does),
    so events queued by the CLI or the scheduler are delivered by a server with no traffic."""
    _hold_stop_signals()
    from multiprocessing import util as mp_util

    from accessd.ssf.delivery import start_all as start_deliverers
    from accessd.wsgi import app

    mp_util.Finalize(None, _worker_exit, exitpriority=10)
    start_deliverers()
    warm_up(app)
    return app


# A request makes and drops thousands of containers (a 50-record field-mask call about 2,000).
# With CPython's default threshold a young-generation collection runs every 700 allocations,
# mid-request, walking what the request still holds; every 10,000, most of it is gone again.
# Measured on fields50 in process: 10% less CPU per call, 15% counting the decision-log writer.
GC_YOUNG_THRESHOLD = 10_000


def warm_up(app) -> None:
    """Load the worker's caches at boot (its first request then waits for nothing; 100,000
    accounts take seconds), and collect young garbage less often (``GC_YOUNG_THRESHOLD``). A
    database that is down now is retried by the first request."""
    import gc
    import logging

    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    feed = app.extensions["accessd"].feed
    feed.freeze_heap = True  # a long-lived worker: see ChangeFeed._freeze_when_due
    try:
        feed.ensure()
    except Exception as exc:  # noqa: BLE001 - the worker serves /healthz and retries on use
        logging.getLogger("accessd.servers").warning("caches not loaded at boot: %s", type(exc).__name__)


def environment(instance_path: str, port: int) -> dict[str, str]:
    """What the server's environment needs before its workers start: one directory for the
    workers' Prometheus metrics (``accessd.metrics``), per server, emptied at each start."""
    from accessd import metrics

    path = os.path.join(instance_path, f"metrics-{port}")
    metrics.prepare_directory(path)
    return {metrics.MULTIPROCESS_ENV: path}


def _hold_stop_signals() -> None:
    """Keep a SIGTERM or SIGINT that arrives while the worker loads the app, and send it again
    once granian has installed its own handlers (right after this factory returns).

    Until then the worker has the handler it inherited from granian's main process, which only
    flags the main process's loop -- in this copy, nothing: the signal would be lost, the worker
    would serve on, and the stop would wait for ``KILL_TIMEOUT`` and kill it (a stop right after
    a start, as in tests and quick restarts: measured, 4 of 6 such stops took 30 s). A signal
    that came even before this runs is read from the flag that inherited handler set."""
    import os
    import signal
    import threading

    held: list[int] = []
    # a signal that came before this factory ran went to the inherited handler, which flagged
    # the worker's copy of granian's server object (its ``interrupt_signal``)
    inherited = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    if getattr(inherited, "interrupt_signal", False) is True:
        held.append(signal.SIGTERM)

    def hold(signum, frame):
        held.append(signum)

    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        signal.signal(signum, hold)

    def resend():
        deadline = time.monotonic() + 60
        while any(signal.getsignal(s) is hold for s in signals) and time.monotonic() < deadline:
            time.sleep(0.02)
        # granian also misses a stop signal set before its server has started (right after it
        # installs the handlers): send it again every half second while the worker lives
        for _ in range(RESEND_TIMES if held else 0):
            os.kill(os.getpid(), held[0])
            time.sleep(0.5)

    threading.Thread(target=resend, name="accessd-stop-signals", daemon=True).start()


def granian_argv(host: str, port: int, workers: int = 2, threads: int = 1, *extra: str) -> list[str]:
    """The command that serves accessd under granian (used by ``accessd serve``, the HTTP bench
    and the tests): ``workers`` processes of ``threads`` Python threads each, HTTP/1.1 only (the
    header read timeout applies to every connection)."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--factory",
        "--http",
        "1",
        "--no-ws",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--backpressure",
        str(CONNECTIONS_PER_WORKER),
        "--http1-header-read-timeout",
        str(HEADER_READ_TIMEOUT_MS),
        "--respawn-failed-workers",
        "--workers-kill-timeout",
        str(KILL_TIMEOUT),
        *extra,
        "accessd.servers:granian_worker_app",
    ]


def argv(server: str, host: str, port: int, workers: int = 2, threads: int = 1, *extra: str) -> list[str]:
    """The command line that serves accessd under ``server`` (one of ``NAMES``) on host:port with
    ``workers`` processes of ``threads`` threads each (gunicorn: gthread workers when > 1).
    ``extra`` arguments go to the server as they are."""
    if server == "granian":
        return granian_argv(host, port, workers, threads, *extra)
    if server == "gunicorn":
        from accessd import gunicorn_conf  # loads the settings: only when gunicorn is chosen

        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return gunicorn_conf.argv(bind, workers, threads, *extra)
    raise ValueError(f"unknown server {server!r}: choose one of {', '.join(NAMES)}")
