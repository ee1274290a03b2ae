"""The public AuthZEN interop "todo" scenario, run over HTTP against accessd as an outside
application would: the shipped policy and accounts from examples/authzen-todo/ are loaded with
the command line, then every case of its payload spec is asked singly and as one batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.api import post_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "authzen-todo"
ACCESSD = str(Path(sys.executable).with_name("accessd"))
CASES = json.loads((EXAMPLE / "cases.json").read_text())["evaluation"]


def _run(env: dict, *args: str) -> str:
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def test_the_interop_todo_scenario_over_http(database_url, serve):
    """Set up as examples/authzen-todo/README.md says, then ask every case of the payload spec
    singly and as one batch, plus what the spec does not list: an owner missing on both sides."""
    env = dict(os.environ, ACCESSD_DATABASE_URL=database_url, ACCESSD=ACCESSD)
    _run(env, ACCESSD, "policy", "test", str(EXAMPLE / "policy"))
    _run(env, ACCESSD, "policy", "load", str(EXAMPLE / "policy"))
    _run(env, "sh", str(EXAMPLE / "accounts.sh"))
    _run(env, ACCESSD, "account", "add", "no-mail-editor", "--name", "Nobody")
    _run(env, ACCESSD, "account", "grant", "no-mail-editor", "editor")
    token = _run(env, ACCESSD, "token", "create", "--name", "todo-backend", "--scope", "decide").strip()
    base, _ = serve(database_url)
    with urllib.request.urlopen(base + "/.well-known/authzen-configuration") as r:
        config = json.load(r)
    single, batch = config["access_evaluation_endpoint"], config["access_evaluations_endpoint"]

    assert len(CASES) >= 35
    answers = {c["name"]: post_json(single, token, c["request"])["decision"] for c in CASES}
    wrong = [c["name"] for c in CASES if answers[c["name"]] is not c["expected"]]
    assert wrong == []

    answers = post_json(batch, token, {"evaluations": [c["request"] for c in CASES]})["evaluations"]
    assert [a["decision"] for a in answers] == [c["expected"] for c in CASES]

    # an editor without an e-mail must not edit a todo whose application sent no (or an empty) owner
    request = {
        "subject": {"type": "user", "id": "no-mail-editor"},
        "action": {"name": "can_update_todo"},
        "resource": {"type": "todo", "id": "t-1", "properties": {"ownerID": ""}},
        "context": {"explain": True},
    }
    answer = post_json(single, token, request)
    assert answer["decision"] is False and answer["context"]["reason"] == "no_matching_rule"
    request["resource"].pop("properties")
    assert post_json(single, token, request)["decision"] is False
