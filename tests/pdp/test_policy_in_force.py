"""A stored policy revision that this version of accessd refuses (an older, laxer accessd stored
it) is never used: a worker keeps the engine it has, and one with none answers 503."""

from __future__ import annotations

from accessd.models import PolicyRevision
from accessd.pdp import revisions
from tests.support.api import evaluation

GUARD = 'r.obj.clinic_region != "" && r.sub.region != "" && '


def _store_unguarded_copy(db) -> int:
    """Store the demo policy with its region guards removed, as the old accessd accepted it."""
    with db.session() as s:
        files = dict(revisions.current(s).files)
        assert GUARD in files["policy.csv"]
        files["policy.csv"] = files["policy.csv"].replace(GUARD, "")
        rev = PolicyRevision(created_by="old-accessd", digest="x", files=files)
        s.add(rev)
        s.flush()
        return rev.id


def test_a_revision_that_does_not_load_is_skipped_and_the_previous_engine_decides(app, client, auth):
    body = evaluation("r.schmidt", field="email", explain=True)
    assert client.post("/access/v1/evaluation", json=body, headers=auth).json["context"]["revision"] == 1
    bad = _store_unguarded_copy(app.extensions["accessd"].db)
    app.extensions["accessd"].feed.catch_up()
    r = client.post("/access/v1/evaluation", json=body, headers=auth)
    assert r.status_code == 200 and r.json["context"]["revision"] == 1 != bad


def test_a_worker_with_no_loadable_revision_answers_503(loaded_db, employees, token, tmp_path):
    from accessd import create_app

    bad = _store_unguarded_copy(loaded_db)
    with loaded_db.session() as s:
        s.query(PolicyRevision).filter(PolicyRevision.id != bad).delete()
    app = create_app({"database_url": loaded_db.url, "instance_path": str(tmp_path), "secret_key": "k" * 32})
    r = app.test_client().post(
        "/access/v1/evaluation",
        json=evaluation("r.schmidt", field="email"),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
    assert f"policy revision {bad} does not load" in r.json["message"]
    app.extensions["accessd"].close()
