"""The decision service behind the AuthZEN 1.0 API: check requests, decide, log.

Pure functions of plain JSON values plus the per-process caches (compiled engine, subjects,
decision log); no Flask. The web layer (``accessd/web/authzen.py``) only reads the body and the
caller and renders what these functions return.

Conventions (documented in docs/api.md):

* ``subject`` is ``{"type": "user", "id": <account subject id>}``. Roles, status, dates and
  attributes always come from accessd's accounts; ``subject.properties`` is ignored. An id no
  account has is denied with reason ``unknown_subject``.
* The purpose travels as ``context.purpose``. Without one, the API client's default purpose
  applies, then the resource type's (catalogue ``default_purpose``); with none of them the answer
  is a deny with reason ``purpose_required``.
* The field travels as the action's property: ``action.properties.field`` (one field) or
  ``action.properties.fields`` (several; the decision is true only if every one is allowed). With
  no field, the question is about the record as a whole: for a type with fields, true if the
  subject may see at least one of them (in full or masked); for a type without fields, the rules
  whose field column is ``*`` decide.
* ``decision`` is true only for a full allow. A masked field answers false with
  ``context.effect == "mask"`` and ``context.mask`` naming the style, so a client that knows only
  AuthZEN never shows a value in clear that it should have masked.
* An unknown resource type, action, field or purpose is a deny with its reason code, never a 400.
  In a batch, an entry that is malformed is answered ``decision: false`` with ``context.error``
  and the others are still evaluated; 400 is for a request malformed as a whole.
* Every answer is recorded in the decision log before it is returned; when the log cannot take
  it, the request fails (503) instead of answering without a record.
* Work per request is bounded: at most ``api.max_decisions`` field decisions (entries x fields,
  records x fields); beyond it the answer is 413 and nothing is decided.
"""

from __future__ import annotations

from collections.abc import Mapping

from accessd import metrics
from accessd.errors import Invalid, TooLarge
from accessd.models import utcnow
from accessd.pdp import requests as rq
from accessd.pdp.ids import new_decision_id
from accessd.pdp.paging import page_of
from accessd.pdp.requests import SUBJECT_TYPES, Request
from accessd.policy.engine import Decision, Subject
from accessd.policy.masks import render_record

SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
FIELDS_CAPABILITY = "urn:accessd:capability:field-masks"


def _row(
    decision_id, client, sid, action, rtype, rid, fields, purpose, effect, reason, revision, at=None
) -> tuple:
    """One decision-log entry, in the column order of ``accessd.pdp.decision_rows.COLUMNS``;
    ``at`` defaults to now (a call deciding many records stamps them all with one instant)."""
    return (
        at or utcnow(),
        decision_id,
        client,
        sid,
        action,
        rtype,
        rid,
        fields,
        purpose,
        effect,
        reason,
        revision,
    )


class DecisionService:
    """Decisions for one process: the compiled engine, the subject cache and the decision log."""

    def __init__(self, engines, subjects, decision_log, settings):
        self.engines = engines
        self.subjects = subjects
        self.decision_log = decision_log
        self.settings = settings

    def _record(self, rows) -> None:
        """Queue the rows in the decision log and count them (``accessd.metrics``)."""
        self.decision_log.record_many(rows)
        metrics.count_decisions(rows)

    @property
    def max_decisions(self) -> int:
        return self.settings.api.max_decisions

    # -- evaluation -----------------------------------------------------------------------------

    def evaluation(self, body: Mapping, client: str | None, default_purpose: str | None = None) -> dict:
        engine = self.engines.engine
        req = rq.evaluation(body)
        self._check_cost(self._cost(engine, req), "the request")
        result, row = self._decide(engine, req, new_decision_id(), client, default_purpose)
        self._record((row,))
        return result

    def evaluations(self, body: Mapping, client: str | None, default_purpose: str | None = None) -> dict:
        engine = self.engines.engine
        items = body.get("evaluations")
        if items is None or items == []:
            return self.evaluation(body, client, default_purpose)  # AuthZEN: no entries -> one evaluation
        if not isinstance(items, list):
            raise Invalid(f"/evaluations must be an array, not {rq.kind(items)}", pointer="/evaluations")
        if len(items) > self.settings.api.max_batch:
            raise TooLarge(
                f"/evaluations has {len(items)} entries; at most {self.settings.api.max_batch} are allowed",
                pointer="/evaluations",
            )
        options = rq.obj(body, "options", "/options", required=False) or {}
        semantic = options.get("evaluations_semantic", "execute_all")
        if semantic not in SEMANTICS:
            raise Invalid(
                f"/options/evaluations_semantic must be one of {', '.join(SEMANTICS)}",
                pointer="/options/evaluations_semantic",
            )
        entries: list[Request | Invalid] = []
        cost = 0
        for i, item in enumerate(items):
            try:
                req = rq.batch_entry(body, item, f"/evaluations/{i}")
            except Invalid as exc:
                entries.append(exc)
                cost += 1
            else:
                entries.append(req)
                cost += self._cost(engine, req)
        self._check_cost(cost, "/evaluations")
        base = new_decision_id()
        results, rows = [], []
        for i, entry in enumerate(entries):
            decision_id = f"{base}-{i}"
            if isinstance(entry, Invalid):
                result, row = _entry_error(entry, decision_id, client, items[i], body, engine.revision)
            else:
                try:
                    result, row = self._decide(engine, entry, decision_id, client, default_purpose)
                except Invalid as exc:  # a property of the wrong type: this entry only
                    exc.pointer = f"/evaluations/{i}{exc.pointer or ''}"
                    result, row = _entry_error(exc, decision_id, client, items[i], body, engine.revision)
            results.append(result)
            rows.append(row)
            if semantic == "deny_on_first_deny" and not result["decision"]:
                break
            if semantic == "permit_on_first_permit" and result["decision"]:
                break
        self._record(rows)
        return {"evaluations": results}

    def _cost(self, engine, req: Request) -> int:
        """How many field decisions answering ``req`` takes."""
        if req.fields is not None:
            return len(req.fields)
        rt = engine.catalogue.types.get(req.rtype)
        return max(1, len(rt.fields)) if rt is not None else 1

    def _check_cost(self, cost: int, where: str) -> None:
        if cost > self.max_decisions:
            raise TooLarge(
                f"{where} asks for {cost} field decisions; at most {self.max_decisions} are allowed "
                "per request (api.max_decisions): split it into several requests",
                pointer="" if where == "the request" else where,
            )

    def _decide(self, engine, req: Request, decision_id: str, client, default_purpose) -> tuple[dict, tuple]:
        subject = self.subjects.get(req.subject_id) if req.subject_type in SUBJECT_TYPES else None
        purpose = req.purpose or default_purpose
        context: dict = {"decision_id": decision_id}
        if subject is None:
            effect, reason, rules, extra = "deny", "unknown_subject", (), None
        elif req.fields is None:
            effect, reason, rules, extra = self._record_level(engine, subject, req, purpose)
        elif len(req.fields) == 1:
            d = self._one(engine, subject, req, req.fields[0], purpose)
            effect, reason, rules, extra = d.effect, d.reason, d.matched_rules, None
            if effect == "mask":
                context["mask"] = engine.catalogue.mask_style(req.rtype, req.fields[0])
        else:
            effect, reason, rules, extra = self._several(engine, subject, req, purpose, context)
        context["effect"] = effect
        if req.explain:
            context["reason"] = reason
            context["matched_rules"] = list(rules)
            context["revision"] = engine.revision
            if extra:
                context.update(extra)
        fields = list(req.fields) if req.fields else None
        row = _row(
            decision_id, client, req.subject_id, req.action, req.rtype, req.rid, fields,
            _effective_purpose(engine, req.rtype, purpose), effect, reason, engine.revision,
        )  # fmt: skip
        return {"decision": effect == "allow", "context": context}, row

    def _one(self, engine, subject: Subject, req: Request, field: str, purpose) -> Decision:
        return engine.decide(subject, req.rtype, req.action, field, purpose, req.props)

    def _record_level(self, engine, subject: Subject, req: Request, purpose):
        rt = engine.catalogue.types.get(req.rtype)
        if rt is None or not rt.fields:  # no fields to look at: the record-level (`*`) rules decide
            d = engine.decide(subject, req.rtype, req.action, None, purpose, req.props)
            return d.effect, d.reason, d.matched_rules, None
        rm = engine.mask(subject, req.rtype, req.action, purpose, [req.props])[0]
        if rm.allowed:
            effect, reason = "allow", "allowed"
        elif rm.masked:
            effect, reason = "allow", "masked"
        else:
            return "deny", rm.reason or "no_matching_rule", (), None
        rules = tuple(
            dict.fromkeys(r for f in (*rm.allowed, *rm.masked) for r in rm.matched_rules.get(f, ()))
        )
        return effect, reason, rules, {"fields": {"allowed": list(rm.allowed), "masked": list(rm.masked)}}

    def _several(self, engine, subject: Subject, req: Request, purpose, context: dict):
        effects, rules, reasons = {}, [], {}
        for f in req.fields:
            d = self._one(engine, subject, req, f, purpose)
            effects[f] = d.effect
            reasons[f] = d.reason
            rules.extend(d.matched_rules)
        context["effects"] = effects
        if all(e == "allow" for e in effects.values()):
            effect, reason = "allow", "allowed"
        elif all(e != "deny" for e in effects.values()):
            effect, reason = "mask", "masked"
        else:
            effect = "deny"
            reason = next(r for f, r in reasons.items() if effects[f] == "deny")
        return effect, reason, tuple(dict.fromkeys(rules)), {"reasons": reasons}

    # -- field masks for records ----------------------------------------------------------------

    def fields(self, body: Mapping, client: str | None, default_purpose: str | None = None) -> dict:
        """Per record: the fields allowed, masked and denied; optionally the records themselves."""
        engine = self.engines.engine
        cat = engine.catalogue
        stype, sid = rq.subject(body, "/subject")
        a = rq.obj(body, "action", "/action")
        action = rq.text(a, "name", "/action/name", max_len=rq.MAX_NAME)
        purpose, explain = rq.context(body, "/context")
        purpose = purpose or default_purpose
        options = rq.obj(body, "options", "/options", required=False) or {}
        return_records = rq.flag(options, "return_records", "/options/return_records")
        records = body.get("records")
        if not isinstance(records, list):
            raise Invalid(
                "/records must be an array of {type, id, properties} objects"
                + ("" if records is None else f", not {rq.kind(records)}"),
                pointer="/records",
            )
        limit = self.settings.api.max_records
        if len(records) > limit:
            raise TooLarge(
                f"/records has {len(records)} entries; at most {limit} are allowed", pointer="/records"
            )
        by_type: dict[str, list[int]] = {}
        parsed = [_record_parts(rec, i) for i, rec in enumerate(records)]
        for i, (rtype, _, _) in enumerate(parsed):
            by_type.setdefault(rtype, []).append(i)
        self._check_cost(
            sum(max(1, len(cat.types[t].fields)) if t in cat.types else 1 for t, _, _ in parsed), "/records"
        )

        subject = self.subjects.get(sid) if stype in SUBJECT_TYPES else None
        masks: list = [None] * len(parsed)
        for rtype, idxs in by_type.items():
            if subject is None:
                every = tuple(cat.types[rtype].fields) if rtype in cat.types else ()
                for i in idxs:
                    masks[i] = ((), (), every, "unknown_subject", None)
                continue
            try:
                out = engine.mask(subject, rtype, action, purpose, [parsed[i][2] for i in idxs])
            except Invalid:
                self._find_bad_record(engine, subject, rtype, action, purpose, idxs, parsed)
                raise
            for i, rm in zip(idxs, out, strict=True):
                masks[i] = (rm.allowed, rm.masked, rm.denied, rm.reason, rm)

        decision_id = new_decision_id()
        revision = engine.revision
        at = utcnow()  # one instant for every record of the call
        results, rows = [], []
        for (rtype, rid, props), (allowed, masked, denied, reason, rm) in zip(parsed, masks, strict=True):
            item = {
                "type": rtype,
                "id": rid,
                "allowed": list(allowed),
                "masked": list(masked),
                "denied": list(denied),
            }
            if allowed or masked:
                effect = "allow" if not masked and not denied else "partial"
                reason = "allowed" if not masked else "masked"
            else:
                effect = "deny"
                reason = reason or "no_matching_rule"
            if explain:
                item["reason"] = reason
                if rm is not None:
                    item["matched_rules"] = {
                        f: list(rm.matched_rules.get(f, ())) for f in (*allowed, *masked)
                    }
            if return_records and rtype in cat.types:
                item["record"] = render_record(cat.types[rtype].fields, props, allowed, masked)
            results.append(item)
            rows.append(
                _row(
                    decision_id, client, sid, action, rtype, rid, [*allowed, *masked] or None,
                    _effective_purpose(engine, rtype, purpose), effect, reason, revision, at,
                )
            )  # fmt: skip
        self._record(rows)
        out = {"decision_id": decision_id, "results": results}
        if explain:
            out["revision"] = revision
        return out

    def _find_bad_record(self, engine, subject, rtype, action, purpose, idxs, parsed) -> None:
        """Re-raise a property error with the pointer of the record at fault."""
        for i in idxs:
            try:
                engine.mask(subject, rtype, action, purpose, [parsed[i][2]])
            except Invalid as exc:
                ptr = (exc.pointer or "").replace("/resource/", f"/records/{i}/", 1)
                raise Invalid(exc.message, pointer=ptr) from None

    # -- search ---------------------------------------------------------------------------------

    def search_subject(self, body: Mapping, client: str | None, default_purpose: str | None = None) -> dict:
        """Which subjects (accounts) may do the action on the resource."""
        engine = self.engines.engine
        stype, _ = rq.subject(body, "/subject", need_id=False)
        rtype, rid, props = rq.resource(body, "/resource")
        action, fields = rq.action(body, "/action")
        purpose = rq.context(body, "/context")[0] or default_purpose
        page = page_of(body)
        hits = []
        if stype in SUBJECT_TYPES:
            for subject in self.subjects.all():
                req = Request(stype, subject.id, rtype, rid, props, action, fields, purpose, False)
                if self._allows(engine, subject, req):
                    hits.append({"type": stype, "id": subject.id})
        self._log_search(client, "*", action, rtype, rid, fields, purpose, len(hits), engine)
        return page.result(hits)

    def search_resource(self, body: Mapping, client: str | None, default_purpose: str | None = None) -> dict:
        """accessd keeps no inventory of records, so a resource search lists the *fields* of the
        described record (``resource.properties``) the subject may do the action on: one result per
        field, ``{"type", "id", "properties": {"field", "effect"}}``."""
        engine = self.engines.engine
        stype, sid = rq.subject(body, "/subject")
        rtype, rid, props = rq.resource(body, "/resource", need_id=False)
        action, _ = rq.action(body, "/action")
        purpose = rq.context(body, "/context")[0] or default_purpose
        page = page_of(body)
        subject = self.subjects.get(sid) if stype in SUBJECT_TYPES else None
        hits = []
        rt = engine.catalogue.types.get(rtype)
        if subject is not None and rt is not None and rt.fields:
            rm = engine.mask(subject, rtype, action, purpose, [props])[0]
            for f in rt.fields:
                effect = rm.effect(f)
                if effect != "deny":
                    hits.append(
                        {"type": rtype, "id": rid or "*", "properties": {"field": f, "effect": effect}}
                    )
        self._log_search(client, sid, action, rtype, rid, None, purpose, len(hits), engine)
        return page.result(hits)

    def search_action(self, body: Mapping, client: str | None, default_purpose: str | None = None) -> dict:
        """Which actions the subject may do on the record as a whole (see docs/api.md)."""
        engine = self.engines.engine
        stype, sid = rq.subject(body, "/subject")
        rtype, rid, props = rq.resource(body, "/resource")
        purpose = rq.context(body, "/context")[0] or default_purpose
        page = page_of(body)
        subject = self.subjects.get(sid) if stype in SUBJECT_TYPES else None
        hits = []
        rt = engine.catalogue.types.get(rtype)
        if subject is not None and rt is not None:
            for action in rt.actions:
                req = Request(stype, sid, rtype, rid, props, action, None, purpose, False)
                if self._allows(engine, subject, req):
                    hits.append({"name": action})
        self._log_search(client, sid, "*", rtype, rid, None, purpose, len(hits), engine)
        return page.result(hits)

    def _allows(self, engine, subject: Subject, req: Request) -> bool:
        if req.fields is None:
            return self._record_level(engine, subject, req, req.purpose)[0] == "allow"
        return all(self._one(engine, subject, req, f, req.purpose).effect == "allow" for f in req.fields)

    def _log_search(self, client, sid, action, rtype, rid, fields, purpose, count, engine) -> None:
        purpose = _effective_purpose(engine, rtype, purpose)
        fields = list(fields) if fields else None
        row = _row(
            new_decision_id(), client, sid or "*", action, rtype, rid, fields, purpose,
            "search", f"{count} results", engine.revision,
        )  # fmt: skip
        self._record((row,))

    # -- discovery ------------------------------------------------------------------------------

    @staticmethod
    def configuration(base_url: str) -> dict:
        """The AuthZEN metadata document; ``base_url`` is the configured public URL, never a
        request's Host header (which any client can set)."""
        base = base_url.rstrip("/")
        return {
            "policy_decision_point": base,
            "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
            "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
            "search_subject_endpoint": f"{base}/access/v1/search/subject",
            "search_resource_endpoint": f"{base}/access/v1/search/resource",
            "search_action_endpoint": f"{base}/access/v1/search/action",
            # capabilities are identifiers (AuthZEN §9); the field-mask call is accessd's own
            # extension, advertised with its endpoint in an extra member clients may ignore
            "capabilities": [FIELDS_CAPABILITY],
            "accessd_fields_endpoint": f"{base}/access/v1/fields",
        }


def _record_parts(rec, i: int) -> tuple[str, str, dict]:
    """A field-mask call's record ``i`` as (type, id, properties), or Invalid naming the member at
    fault. The first test is the whole rule for the common well-formed record, so that the
    pointers are written only for the error."""
    if type(rec) is dict:
        rtype, rid, props = rec.get("type"), rec.get("id"), rec.get("properties")
        if (
            type(rtype) is str
            and 0 < len(rtype) <= rq.MAX_NAME
            and type(rid) is str
            and 0 < len(rid) <= rq.MAX_ID
            and (props is None or type(props) is dict)
        ):
            return rtype, rid, props or {}
    ptr = f"/records/{i}"
    if not isinstance(rec, dict):
        raise Invalid(f"{ptr} must be an object, not {rq.kind(rec)}", pointer=ptr)
    rtype = rq.text(rec, "type", ptr + "/type", max_len=rq.MAX_NAME)
    rid = rq.text(rec, "id", ptr + "/id")
    props = rq.obj(rec, "properties", ptr + "/properties", required=False) or {}
    return rtype, rid, props


def _effective_purpose(engine, rtype: str, purpose: str | None) -> str | None:
    """The purpose a decision was made for: the request's or client's, else the type's default."""
    return engine.resolve_purpose(rtype, purpose)


def _entry_error(exc: Invalid, decision_id: str, client, item, body: Mapping, revision) -> tuple[dict, tuple]:
    """A malformed batch entry: answered ``decision: false`` with the error, and recorded."""
    merged = {}
    if isinstance(item, dict):
        merged = {k: item[k] if k in item else body.get(k) for k in ("subject", "resource", "action")}
    sid = _peek(merged, "subject", "id") or ""
    rtype = _peek(merged, "resource", "type") or ""
    action = _peek(merged, "action", "name") or ""
    context = {
        "decision_id": decision_id,
        "effect": "deny",
        "error": {"status": 400, "error": exc.code, "message": exc.message, "pointer": exc.pointer or ""},
    }
    row = _row(decision_id, client, sid, action, rtype, _peek(merged, "resource", "id"), None, None,
               "deny", "invalid_request", revision)  # fmt: skip
    return {"decision": False, "context": context}, row


def _peek(merged: Mapping, member: str, key: str) -> str | None:
    """A string member for the log of a malformed entry, if it is one (checked strings only)."""
    v = merged.get(member)
    v = v.get(key) if isinstance(v, dict) else None
    if not isinstance(v, str):
        return None
    try:
        rq.check_text(v, "")
    except Invalid:
        return None
    return v[: rq.MAX_ID]
