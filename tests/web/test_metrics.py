"""/metrics: Prometheus text that counts decisions by effect and reason, times the decision API,
and reports the decision log, the caches, sync runs and Shared Signals events."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from accessd.models import SyncRun, utcnow
from tests.support.api import evaluation


def scrape(client) -> dict[tuple[str, tuple], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_decisions_are_counted_by_effect_and_reason_and_timed(client, auth, loaded_db):
    before = scrape(client)
    allowed = evaluation("b.huber", field="iban", purpose="billing")
    denied = evaluation("nobody-here", field="iban", purpose="billing")
    for body in (allowed, allowed, denied):
        assert client.post("/access/v1/evaluation", json=body, headers=auth).status_code == 200
    batch = {"evaluations": [allowed, denied, denied]}
    assert client.post("/access/v1/evaluations", json=batch, headers=auth).status_code == 200
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("accessd_decisions_total", effect="allow", reason="allowed") == 3
    assert grew("accessd_decisions_total", effect="deny", reason="unknown_subject") == 3
    assert grew("accessd_decision_request_seconds_count", endpoint="evaluation") == 3
    assert grew("accessd_decision_request_seconds_count", endpoint="evaluations") == 1
    assert value(after, "accessd_decision_log_workers") >= 1
    assert value(after, "accessd_cache_seq") == value(after, "accessd_change_seq")
    assert value(after, "accessd_cache_current_timestamp_seconds") > 0


def test_the_cache_figures_are_the_scraping_apps_own(client, auth, loaded_db):
    """Another app's change feed in the same process (the tests make many) reporting its own
    sequence must not show through this app's scrape."""
    from accessd import metrics

    body = evaluation("b.huber", field="iban", purpose="billing")
    assert client.post("/access/v1/evaluation", json=body, headers=auth).status_code == 200
    metrics.caught_up(0)  # what a stray feed over an empty database reports
    samples = scrape(client)
    assert value(samples, "accessd_change_seq") > 0
    assert value(samples, "accessd_cache_seq") == value(samples, "accessd_change_seq")


def test_sync_runs_and_events_come_from_the_database(client, loaded_db):
    with loaded_db.session() as s:
        s.add(SyncRun(kind="full", status="succeeded", started_at=utcnow(), finished_at=utcnow(), seen=3))
        s.add(SyncRun(kind="incremental", status="failed", started_at=utcnow(), finished_at=utcnow()))
    samples = scrape(client)
    assert value(samples, "accessd_sync_runs", kind="full", status="succeeded") == 1
    assert value(samples, "accessd_sync_runs", kind="incremental", status="failed") == 1
    assert value(samples, "accessd_sync_last_success_timestamp_seconds") > 1.7e9
    assert value(samples, "accessd_events", status="pending") == 0


def test_no_subject_or_resource_id_becomes_a_label(client, auth):
    body = evaluation("someone-secret-7f3a", field="iban", purpose="billing", rid="C-99311")
    client.post("/access/v1/evaluation", json=body, headers=auth)
    text = client.get("/metrics").text
    assert "someone-secret-7f3a" not in text and "C-99311" not in text


def test_a_real_server_adds_up_every_workers_decisions_whichever_answers_the_scrape(
    serve, loaded_db, employees, token, tmp_path
):
    import json
    import time
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    base, _ = serve(loaded_db.url, workers=2)
    body = json.dumps(evaluation("b.huber", field="iban", purpose="billing")).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def decide(_) -> bool:
        request = urllib.request.Request(base + "/access/v1/evaluation", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)["decision"]

    port = base.rsplit(":", 1)[1]
    directory = tmp_path / f"instance-{port}" / f"metrics-{port}"
    sent, deadline = 0, time.monotonic() + 30
    with ThreadPoolExecutor(8) as pool:  # until both workers have answered some (one file each)
        while len(list(directory.glob("counter_*.db"))) < 2:
            assert time.monotonic() < deadline, "one worker answered everything"
            assert all(pool.map(decide, range(50)))
            sent += 50
    for _ in range(6):
        with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert value(samples, "accessd_decisions_total", effect="allow", reason="allowed") == sent
        assert value(samples, "accessd_decision_request_seconds_count", endpoint="evaluation") == sent
