"""/healthz (process up) and /readyz (database reachable, a policy revision loaded)."""

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    services = current_app.extensions["accessd"]
    try:
        services.db.ping()
    except Exception:  # noqa: BLE001 - any failure means "not ready"; details go to the log
        current_app.logger.exception("readiness: database unreachable")
        return jsonify(status="unavailable", database="unreachable"), 503
    services.engines.refresh()
    revision = services.engines.revision
    log_stats = services.decision_log.stats()  # dropped > 0: the buffer overflowed
    if revision is None:
        return jsonify(status="unavailable", database="ok", policy_revision=None, decision_log=log_stats), 503
    return jsonify(status="ok", database="ok", policy_revision=revision, decision_log=log_stats)
