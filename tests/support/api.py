"""Request builders for the API tests; the demo client record comes from :mod:`accessd.demo`."""

from __future__ import annotations

import json
import urllib.request

from accessd.demo import CLIENT_RECORD

CUSTOMER = CLIENT_RECORD


def evaluation(
    subject,
    action="read",
    field=None,
    purpose="care",
    props=None,
    rid="123",
    rtype="customer",
    explain=False,
    fields=None,
):
    """An AuthZEN evaluation request body."""
    action_obj = {"name": action}
    if field is not None:
        action_obj["properties"] = {"field": field}
    if fields is not None:
        action_obj["properties"] = {"fields": fields}
    body = {
        "subject": {"type": "user", "id": subject},
        "resource": {"type": rtype, "id": rid, "properties": dict(CUSTOMER if props is None else props)},
        "action": action_obj,
        "context": {"purpose": purpose},
    }
    if explain:
        body["context"]["explain"] = True
    return body


def post_json(url: str, token: str, body: dict) -> dict:
    """POST a JSON body with a bearer token to a running server; the decoded JSON answer."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
