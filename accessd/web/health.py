"""/healthz (process up) and /readyz (database reachable, a policy revision loaded, the decision
log keeping up in every worker -- see ``accessd.pdp.decision_queries.health``)."""

from flask import Blueprint, current_app, jsonify

from accessd.pdp import decision_queries

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


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
    services.engines.refresh()
    revision = services.engines.revision
    body = {"database": "ok", "policy_revision": revision, "decision_log": log_health}
    if revision is None:
        return jsonify(status="unavailable", reason="no policy revision loaded", **body), 503
    if log_health["status"] != "ok":
        return jsonify(status="unavailable", reason=f"decision log: {log_health['reason']}", **body), 503
    return jsonify(status="ok", **body)
