"""/healthz (process up), /metrics (Prometheus, see ``accessd.metrics``) and /readyz (database
reachable, this worker's caches current within ``cache.max_lag_seconds``, a policy revision
loaded, the decision log keeping up in every worker -- see ``decision_queries.health``)."""

from flask import Blueprint, Response, current_app, jsonify

from accessd import metrics
from accessd.pdp import decision_queries

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/metrics")
def metrics_page():
    """Prometheus text format (accessd.metrics); no token, like the probes: it holds counts and
    reason codes only. Restrict it at the load balancer if even those are private."""
    services = current_app.extensions["accessd"]
    try:
        body = metrics.render(services.db, services.decision_log, services.feed)
    except Exception as exc:  # noqa: BLE001 - the cluster part needs the database
        current_app.logger.warning("metrics: database unreachable (%s)", type(exc).__name__)
        return jsonify(status="unavailable", reason="database unreachable"), 503
    return Response(body, content_type=metrics.CONTENT_TYPE)


@bp.get("/readyz")
def readyz():
    services = current_app.extensions["accessd"]
    try:
        services.db.ping()
        log_health = decision_queries.health(services.db, services.decision_log)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        # the class only: a driver's message names hosts, and this answer needs no details
        current_app.logger.warning("readiness: database unreachable (%s)", type(exc).__name__)
        return jsonify(status="unavailable", reason="database unreachable", database="unreachable"), 503
    feed = services.feed
    try:
        feed.ensure()  # a worker that has not served yet loads here
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        current_app.logger.warning("readiness: caches could not load (%s)", type(exc).__name__)
        return jsonify(status="unavailable", reason="caches could not load", database="ok"), 503
    lag = feed.lag_seconds()
    revision = services.engines.revision
    body = {
        "database": "ok",
        "policy_revision": revision,
        "cache": {
            "worker": services.decision_log.worker_id,  # host:pid:start, tells workers apart
            "seq": feed.seq,
            "lag_seconds": round(lag, 3),
            "max_lag_seconds": feed.settings.max_lag_seconds,
        },
        "decision_log": log_health,
    }
    if lag > feed.settings.max_lag_seconds:
        reason = f"caches {lag:.1f} s behind the database (bound {feed.settings.max_lag_seconds:g} s)"
        return jsonify(status="unavailable", reason=reason, **body), 503
    if revision is None:
        return jsonify(status="unavailable", reason="no policy revision loaded", **body), 503
    if log_health["status"] != "ok":
        return jsonify(status="unavailable", reason=f"decision log: {log_health['reason']}", **body), 503
    return jsonify(status="ok", **body)
