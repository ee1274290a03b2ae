"""bench/cedar_policy.py: Cedar decides every translated question as the engine does.

A small policy uses each construct the translation handles (role and field-group hierarchies,
wildcards, mask level, deny, dates with the empty date, ordering, lists of dates, ``not in``, a
substring test, a chained comparison, nested attributes, ``r.field`` / ``r.act``, a default
purpose, the account checks) plus two rules Cedar cannot express. Seeded requests over every
combination are decided by the engine and by cedarpy (sliced and whole); effects and matched
rules must be identical, and only the untranslatable rules' cell is left out.
"""

import itertools
import json
import random
from datetime import date, datetime

import cedarpy
import pytest

from accessd.policy.engine import Engine, Subject
from accessd.policy.policyset import PolicySet
from accessd.policy.reference.synthetic import Request
from bench import cedar_policy

CATALOGUE = """\
version: 1
purposes: {care: care, billing: billing}
roles: {clerk: clerk, lead: lead, auditor: auditor}
bases: {clinical: clinical}
subject_attributes:
  region: {type: string}
  level: {type: int}
  org.unit: {type: string}
resource_types:
  doc:
    actions: [read, update]
    default_purpose: care
    properties:
      owner: {type: string}
      region: {type: string}
      until: {type: date}
      hold: {type: bool}
      score: {type: int}
      state: {type: string, default: open}
      creator.id: {type: string}
    fields:
      a: {sensitivity: confidential, mask: redact}
      b: {sensitivity: confidential, mask: redact}
      c: {sensitivity: confidential, mask: redact}
"""

RULES = """\
g, lead, clerk
g, clerk, basis:clinical
g2, a, grp, doc
g2, grp, top, doc
p, clerk, doc, read, top, care, True, allow, mask, group-mask
p, lead, doc, read, *, *, r.obj.owner == r.sub.id || r.obj.creator.id == r.sub.id, allow, full, own
p, *, doc, *, *, *, r.obj.until != "" && r.obj.until < r.env.today && !r.obj.hold, deny, -, expired
p, auditor, doc, read, *, billing, r.obj.until in ["2025-06-01", ""], allow, full, dates-in
p, clerk, doc, update, b, care, r.obj.state not in ("closed", "void") && "rt" in r.obj.region, \
allow, full, substr
p, *, doc, read, c, *, 1 <= r.obj.score < 4 && r.sub.level > 2 && r.field != "a", allow, full, chain
p, *, doc, read, b, care, !g(r.sub.id, "basis:clinical") && r.act == "read", deny, -, basis
p, clerk, doc, read, *, *, r.obj.region != "" && r.sub.org.unit != "" && r.obj.region == r.sub.org.unit \
&& r.obj.until >= "2025-01-01", allow, full, region
p, lead, doc, update, *, billing, r.obj.state != "" && r.obj.state < "m", allow, full, text-order
p, lead, doc, update, a, billing, r.obj.region != "" && r.sub.region != "" && r.obj.region in r.sub.region, \
allow, full, substr-attr
""".replace("\\\n", "")

TODAY = date(2025, 6, 1)


@pytest.fixture(scope="module")
def policy():
    return PolicySet.from_files({"policy.csv": RULES, "catalogue.yaml": CATALOGUE})


def subjects() -> list[Subject]:
    out = []
    roles = [frozenset(), frozenset({"clerk"}), frozenset({"lead"}), frozenset({"auditor", "clerk"})]
    for i, (r, region, level) in enumerate(itertools.product(roles, ("north", ""), (0, 3))):
        out.append(Subject(f"u{i}", r, {"region": region, "level": level, "org": {"unit": region}}))
    lead = frozenset({"lead"})
    out += [
        Subject("gone", lead, status="suspended"),
        Subject("early", lead, start_date=date(2025, 6, 2)),
        Subject("late", lead, end_date=date(2025, 5, 31)),
    ]
    return out


def requests(subs: list[Subject], n: int) -> list[Request]:
    rng = random.Random(5)
    out = []
    for _ in range(n):
        s = rng.choice(subs)
        props = {
            "owner": rng.choice((s.id, "u0", "")),
            "region": rng.choice(("north", "", "northern", "south")),
            "until": rng.choice(("", "2025-06-01", "2025-05-31", "2025-06-02", "2024-12-31")),
            "hold": rng.random() < 0.3,
            "score": rng.choice((0, 1, 3, 4)),
            "state": rng.choice(("open", "closed", "void", "draft", "")),
            "creator": {"id": rng.choice((s.id, "u1"))},
        }
        out.append(
            Request(
                s,
                "doc",
                rng.choice(("read", "update")),
                rng.choice(("a", "b", "c", None)),
                rng.choice(("care", "billing", None)),
                props,
                rng.choice((TODAY, date(2025, 1, 1), date(2026, 1, 1))),
            )
        )
    return out


def test_untranslatable_rules_are_left_out_with_their_cell(policy):
    cp = cedar_policy.translate(policy)
    assert set(cp.skipped) == {"text-order", "substr-attr"}
    assert "no text order" in cp.skipped["text-order"]
    assert "like needs a literal" in cp.skipped["substr-attr"]
    assert cp.skipped_cells == {("doc", "update", "billing")}
    assert not cp.covers("doc", "update", "billing") and cp.covers("doc", "update", "care")
    assert len(cp.policies) == len(policy.rules) - 2 + len(cedar_policy.ACCOUNT_IDS)


@pytest.mark.parametrize("sliced", [True, False])
def test_cedar_decides_as_the_engine(policy, sliced):
    engine = Engine(policy, revision=1)
    cp = cedar_policy.translate(policy)
    subs = subjects()
    base = cedarpy.Entities.from_json_str(json.dumps(cedar_policy.base_entities(policy, engine, subs)))
    stream = requests(subs, 3000)
    work, left_out = cedar_policy.batches(cp, engine, stream, sliced=sliced, size=700)
    out = cedar_policy.run(cp, base, work)
    skipped = [
        q for q in stream if q.action == "update" and engine.resolve_purpose("doc", q.purpose) == "billing"
    ]
    assert left_out == len(skipped) and len(out) == len(stream) - len(skipped)
    seen = set()
    for i, (effect, res) in out.items():
        q = stream[i]
        d = engine.decide(q.subject, q.rtype, q.action, q.field, q.purpose, q.properties, q.today)
        assert not res.diagnostics.errors
        assert (effect, cedar_policy.matched_rules(cp, res, effect)) == (d.effect, sorted(d.matched_rules)), q
        seen.add(d.reason)
        seen.update(d.matched_rules)
    # the stream reaches every translated rule and every account check
    assert seen >= {r.id for r in policy.rules} - set(cp.skipped)
    assert seen >= {"account_suspended", "account_not_started", "account_ended", "masked"}


def test_subjects_cedar_cannot_hold(policy):
    engine = Engine(policy)
    clash = Subject("clerk", frozenset({"lead"}))
    with pytest.raises(cedar_policy.Untranslatable, match="also a role"):
        cedar_policy.user_entity(policy, engine, clash)
    leaving = Subject("u1", frozenset(), departure_at=datetime(2030, 1, 1).astimezone())
    with pytest.raises(cedar_policy.Untranslatable, match="wall clock"):
        cedar_policy.user_entity(policy, engine, leaving)


def test_dates_keep_their_order_as_longs():
    texts = ["", "2024-12-31", "2025-01-01", "2025-06-01", "2099-12-31"]
    longs = [cedar_policy.date_long(t) for t in texts]
    assert longs == sorted(longs) and len(set(longs)) == len(longs)
    with pytest.raises(cedar_policy.Untranslatable):
        cedar_policy.date_long("2025-6-1")
