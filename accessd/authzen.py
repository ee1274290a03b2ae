"""The decision service behind the AuthZEN 1.0 API: parse and check requests, decide, log.

Pure functions of plain JSON values plus the per-process caches (compiled engine, subjects,
decision log); no Flask. The web layer (``accessd/web/authzen.py``) only reads the body and the
caller and renders what these functions return.

Conventions (documented in docs/api.md):

* ``subject`` is ``{"type": "user", "id": <account subject id>}``. Roles, status, dates and
  attributes always come from accessd's accounts; ``subject.properties`` is ignored. An id no
  account has is denied with reason ``unknown_subject``.
* The purpose travels as ``context.purpose``; explanations are asked for with
  ``context.explain: true``.
* The field travels as the action's property: ``action.properties.field`` (one field) or
  ``action.properties.fields`` (several; the decision is true only if every one is allowed). With
  no field, the question is about the record as a whole: true if the subject may see at least
  one field of it (in full or masked).
* ``decision`` is true only for a full allow. A masked field answers false with
  ``context.effect == "mask"`` and ``context.mask`` naming the style, so a client that knows only
  AuthZEN never shows a value in clear that it should have masked.
* An unknown resource type or action is bad input (400 naming the member); an unknown field or
  purpose is a deny with its reason code.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import os
import secrets
from collections.abc import Mapping

from accessd.errors import Invalid, TooLarge
from accessd.models import utcnow
from accessd.policy.engine import Decision, Subject, mask_value

log = logging.getLogger("accessd.authzen")

SUBJECT_TYPES = ("user",)
SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
MAX_ID = 200
MAX_NAME = 64
DEFAULT_PAGE = 100
MAX_PAGE = 1000
FIELDS_CAPABILITY = "urn:accessd:capability:field-masks"


# --------------------------------------------------------------------------------------------
# decision ids: a random per-process prefix and a counter -- unique across workers and restarts,
# and far cheaper than a uuid4 (a syscall and an object) on every decision


class _DecisionIds:
    def __init__(self):
        self.reset()
        os.register_at_fork(after_in_child=self.reset)  # a forked worker must not repeat ids

    def reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_decision_id = _DecisionIds()


# --------------------------------------------------------------------------------------------
# input checking


def parse_body(data: bytes) -> dict:
    """The request body as a JSON object, or Invalid naming what is wrong."""
    if not data:
        raise Invalid("the request body is empty; send a JSON object", pointer="")
    try:
        body = json.loads(data)
    except UnicodeDecodeError:
        raise Invalid("the request body is not UTF-8 text", pointer="") from None
    except ValueError as exc:
        raise Invalid(f"the request body is not valid JSON: {exc}", pointer="") from None
    except RecursionError:
        raise Invalid("the request body is nested too deeply", pointer="") from None
    if not isinstance(body, dict):
        raise Invalid(f"the request body must be a JSON object, not {_kind(body)}", pointer="")
    return body


def _kind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _obj(parent: Mapping, key: str, ptr: str, required: bool = True) -> dict | None:
    v = parent.get(key)
    if v is None:
        if required:
            raise Invalid(f"{ptr} is required", pointer=ptr)
        return None
    if not isinstance(v, dict):
        raise Invalid(f"{ptr} must be an object, not {_kind(v)}", pointer=ptr)
    return v


def _str(parent: Mapping, key: str, ptr: str, required: bool = True, max_len: int = MAX_ID) -> str | None:
    v = parent.get(key)
    if v is None:
        if required:
            raise Invalid(f"{ptr} is required", pointer=ptr)
        return None
    if not isinstance(v, str):
        raise Invalid(f"{ptr} must be a string, not {_kind(v)}", pointer=ptr)
    if not v or len(v) > max_len:
        raise Invalid(f"{ptr} must be 1-{max_len} characters", pointer=ptr)
    return v


def _bool(parent: Mapping, key: str, ptr: str) -> bool:
    v = parent.get(key, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise Invalid(f"{ptr} must be true or false, not {_kind(v)}", pointer=ptr)
    return v


class Request:
    """One checked evaluation request (after batch defaults were applied)."""

    __slots__ = (
        "subject_type",
        "subject_id",
        "rtype",
        "rid",
        "props",
        "action",
        "fields",
        "purpose",
        "explain",
    )

    def __init__(self, subject_type, subject_id, rtype, rid, props, action, fields, purpose, explain):
        self.subject_type = subject_type
        self.subject_id = subject_id
        self.rtype = rtype
        self.rid = rid
        self.props = props
        self.action = action
        self.fields = fields  # None: the record as a whole; else a tuple of field names
        self.purpose = purpose
        self.explain = explain


def _subject(body: Mapping, ptr: str, need_id: bool = True) -> tuple[str, str | None]:
    s = _obj(body, "subject", ptr)
    stype = _str(s, "type", ptr + "/type", max_len=MAX_NAME)
    sid = _str(s, "id", ptr + "/id", required=need_id)
    _obj(s, "properties", ptr + "/properties", required=False)
    return stype, sid


def _resource(body: Mapping, ptr: str, catalogue, need_id: bool = True) -> tuple[str, str | None, dict]:
    r = _obj(body, "resource", ptr)
    rtype = _str(r, "type", ptr + "/type", max_len=MAX_NAME)
    rid = _str(r, "id", ptr + "/id", required=need_id)
    props = _obj(r, "properties", ptr + "/properties", required=False) or {}
    if rtype not in catalogue.types:
        raise Invalid(
            f"{ptr}/type: unknown resource type {rtype!r}; known: {', '.join(sorted(catalogue.types))}",
            pointer=ptr + "/type",
        )
    return rtype, rid, props


def _action(body: Mapping, ptr: str, catalogue, rtype: str) -> tuple[str, tuple[str, ...] | None]:
    a = _obj(body, "action", ptr)
    name = _str(a, "name", ptr + "/name", max_len=MAX_NAME)
    actions = catalogue.types[rtype].actions
    if name not in actions:
        raise Invalid(
            f"{ptr}/name: {rtype} has no action {name!r}; known: {', '.join(actions)}", pointer=ptr + "/name"
        )
    props = _obj(a, "properties", ptr + "/properties", required=False)
    fields = None
    if props:
        one = _str(props, "field", ptr + "/properties/field", required=False, max_len=MAX_NAME)
        many = props.get("fields")
        if one is not None and many is not None:
            raise Invalid(f"{ptr}/properties: give field or fields, not both", pointer=ptr + "/properties")
        if one is not None:
            fields = (one,)
        elif many is not None:
            fptr = ptr + "/properties/fields"
            if not isinstance(many, list) or not many:
                raise Invalid(f"{fptr} must be a non-empty array of field names", pointer=fptr)
            if len(many) > 1000:
                raise Invalid(f"{fptr} may name at most 1000 fields", pointer=fptr)
            for i, f in enumerate(many):
                if not isinstance(f, str) or not f or len(f) > MAX_NAME:
                    raise Invalid(
                        f"{fptr}/{i} must be a field name (1-{MAX_NAME} characters)", pointer=f"{fptr}/{i}"
                    )
            fields = tuple(dict.fromkeys(many))
    return name, fields


def _context(body: Mapping, ptr: str) -> tuple[str | None, bool]:
    c = _obj(body, "context", ptr, required=False)
    if not c:
        return None, False
    return _str(c, "purpose", ptr + "/purpose", required=False, max_len=MAX_NAME), _bool(
        c, "explain", ptr + "/explain"
    )


def parse_evaluation(body: Mapping, catalogue, ptr: str = "") -> Request:
    stype, sid = _subject(body, ptr + "/subject")
    rtype, rid, props = _resource(body, ptr + "/resource", catalogue)
    action, fields = _action(body, ptr + "/action", catalogue, rtype)
    purpose, explain = _context(body, ptr + "/context")
    return Request(stype, sid, rtype, rid, props, action, fields, purpose, explain)


# --------------------------------------------------------------------------------------------
# the service


class DecisionService:
    """Decisions for one process: the compiled engine, the subject cache and the decision log."""

    def __init__(self, engines, subjects, decision_log, settings):
        self.engines = engines
        self.subjects = subjects
        self.decision_log = decision_log
        self.settings = settings

    # -- evaluation -----------------------------------------------------------------------------

    def evaluation(self, body: Mapping, client: str | None) -> dict:
        engine = self.engines.engine
        req = parse_evaluation(body, engine.catalogue)
        decision_id = new_decision_id()
        result, row = self._decide(engine, req, decision_id, client, "")
        self.decision_log.record(*row)
        return result

    def evaluations(self, body: Mapping, client: str | None) -> dict:
        engine = self.engines.engine
        items = body.get("evaluations")
        if items is None or items == []:
            return self.evaluation(body, client)  # AuthZEN: no entries -> a single evaluation
        if not isinstance(items, list):
            raise Invalid(f"/evaluations must be an array, not {_kind(items)}", pointer="/evaluations")
        if len(items) > self.settings.api.max_batch:
            raise TooLarge(
                f"/evaluations has {len(items)} entries; at most {self.settings.api.max_batch} are allowed",
                pointer="/evaluations",
            )
        options = _obj(body, "options", "/options", required=False) or {}
        semantic = options.get("evaluations_semantic", "execute_all")
        if semantic not in SEMANTICS:
            raise Invalid(
                f"/options/evaluations_semantic must be one of {', '.join(SEMANTICS)}",
                pointer="/options/evaluations_semantic",
            )
        requests = []
        for i, item in enumerate(items):
            ptr = f"/evaluations/{i}"
            if not isinstance(item, dict):
                raise Invalid(f"{ptr} must be an object, not {_kind(item)}", pointer=ptr)
            merged = {
                k: item[k] if k in item else body.get(k) for k in ("subject", "resource", "action", "context")
            }
            requests.append(_parse_entry(merged, engine.catalogue, ptr, item))
        base = new_decision_id()
        results, rows = [], []
        for i, req in enumerate(requests):
            result, row = self._decide(engine, req, f"{base}-{i}", client, f"/evaluations/{i}")
            results.append(result)
            rows.append(row)
            if semantic == "deny_on_first_deny" and not result["decision"]:
                break
            if semantic == "permit_on_first_permit" and result["decision"]:
                break
        self.decision_log.record_many(rows)
        return {"evaluations": results}

    def _decide(self, engine, req: Request, decision_id: str, client, ptr: str) -> tuple[dict, tuple]:
        try:
            return self._decide_checked(engine, req, decision_id, client)
        except Invalid as exc:  # a property of the wrong type: point into this entry
            if ptr and exc.pointer:
                raise Invalid(exc.message, pointer=ptr + exc.pointer) from None
            raise

    def _decide_checked(self, engine, req: Request, decision_id: str, client) -> tuple[dict, tuple]:
        subject = self.subjects.get(req.subject_id) if req.subject_type in SUBJECT_TYPES else None
        context: dict = {"decision_id": decision_id}
        if subject is None:
            effect, reason, rules, extra = "deny", "unknown_subject", (), None
        elif req.fields is None:
            effect, reason, rules, extra = self._record_level(engine, subject, req)
        elif len(req.fields) == 1:
            d = self._one(engine, subject, req, req.fields[0])
            effect, reason, rules, extra = d.effect, d.reason, d.matched_rules, None
            if effect == "mask":
                context["mask"] = engine.catalogue.mask_style(req.rtype, req.fields[0])
        else:
            effect, reason, rules, extra = self._several(engine, subject, req, context)
        context["effect"] = effect
        if req.explain:
            context["reason"] = reason
            context["matched_rules"] = list(rules)
            context["revision"] = engine.revision
            if extra:
                context.update(extra)
        row = (
            utcnow(),
            decision_id,
            client,
            req.subject_id,
            req.action,
            req.rtype,
            req.rid,
            list(req.fields) if req.fields else None,
            req.purpose,
            effect,
            reason,
            engine.revision,
        )
        return {"decision": effect == "allow", "context": context}, row

    def _one(self, engine, subject: Subject, req: Request, field: str) -> Decision:
        return engine.decide(subject, req.rtype, req.action, field, req.purpose, req.props)

    def _record_level(self, engine, subject: Subject, req: Request):
        rm = engine.mask(subject, req.rtype, req.action, req.purpose, [req.props])[0]
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

    def _several(self, engine, subject: Subject, req: Request, context: dict):
        effects, rules, reasons = {}, [], {}
        for f in req.fields:
            d = self._one(engine, subject, req, f)
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

    def fields(self, body: Mapping, client: str | None) -> dict:
        """Per record: the fields allowed, masked and denied; optionally the records themselves."""
        engine = self.engines.engine
        cat = engine.catalogue
        stype, sid = _subject(body, "/subject")
        a = _obj(body, "action", "/action")
        action = _str(a, "name", "/action/name", max_len=MAX_NAME)
        purpose, explain = _context(body, "/context")
        options = _obj(body, "options", "/options", required=False) or {}
        return_records = _bool(options, "return_records", "/options/return_records")
        records = body.get("records")
        if not isinstance(records, list):
            raise Invalid(
                "/records must be an array of {type, id, properties} objects"
                + ("" if records is None else f", not {_kind(records)}"),
                pointer="/records",
            )
        limit = self.settings.api.max_records
        if len(records) > limit:
            raise TooLarge(
                f"/records has {len(records)} entries; at most {limit} are allowed", pointer="/records"
            )
        by_type: dict[str, list[int]] = {}
        parsed = []
        for i, rec in enumerate(records):
            ptr = f"/records/{i}"
            if not isinstance(rec, dict):
                raise Invalid(f"{ptr} must be an object, not {_kind(rec)}", pointer=ptr)
            rtype = _str(rec, "type", ptr + "/type", max_len=MAX_NAME)
            rid = _str(rec, "id", ptr + "/id")
            props = _obj(rec, "properties", ptr + "/properties", required=False) or {}
            if rtype not in cat.types:
                raise Invalid(f"{ptr}/type: unknown resource type {rtype!r}", pointer=ptr + "/type")
            if action not in cat.types[rtype].actions:
                raise Invalid(f"/action/name: {rtype} has no action {action!r}", pointer="/action/name")
            by_type.setdefault(rtype, []).append(i)
            parsed.append((rtype, rid, props))

        subject = self.subjects.get(sid) if stype in SUBJECT_TYPES else None
        masks: list = [None] * len(parsed)
        for rtype, idxs in by_type.items():
            group = [parsed[i][2] for i in idxs]
            if subject is None:
                every = tuple(cat.types[rtype].fields)
                for i in idxs:
                    masks[i] = ((), (), every, "unknown_subject", None)
                continue
            try:
                out = engine.mask(subject, rtype, action, purpose, group)
            except Invalid:
                self._find_bad_record(engine, subject, rtype, action, purpose, idxs, parsed)
                raise
            for i, rm in zip(idxs, out, strict=True):
                masks[i] = (rm.allowed, rm.masked, rm.denied, rm.reason, rm)

        decision_id = new_decision_id()
        now = utcnow()
        revision = engine.revision
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
            if return_records:
                item["record"] = _render(cat.types[rtype].fields, props, allowed, masked)
            results.append(item)
            rows.append(
                (
                    now,
                    decision_id,
                    client,
                    sid,
                    action,
                    rtype,
                    rid,
                    [*allowed, *masked] or None,
                    purpose,
                    effect,
                    reason,
                    revision,
                )
            )
        self.decision_log.record_many(rows)
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

    def search_subject(self, body: Mapping, client: str | None) -> dict:
        """Which subjects (accounts) may do the action on the resource."""
        engine = self.engines.engine
        stype, _ = _subject(body, "/subject", need_id=False)
        rtype, rid, props = _resource(body, "/resource", engine.catalogue)
        action, fields = _action(body, "/action", engine.catalogue, rtype)
        purpose, _ = _context(body, "/context")
        offset, limit = _page(body)
        hits = []
        if stype in SUBJECT_TYPES:
            for subject in self.subjects.all():
                req = Request(stype, subject.id, rtype, rid, props, action, fields, purpose, False)
                if self._allows(engine, subject, req):
                    hits.append({"type": stype, "id": subject.id})
        self._log_search(client, "*", action, rtype, rid, fields, purpose, len(hits), engine.revision)
        return _paged(hits, offset, limit)

    def search_resource(self, body: Mapping, client: str | None) -> dict:
        """accessd keeps no inventory of records, so a resource search lists the *fields* of the
        described record (``resource.properties``) the subject may do the action on: one result per
        field, ``{"type", "id", "properties": {"field", "effect"}}``."""
        engine = self.engines.engine
        stype, sid = _subject(body, "/subject")
        rtype, rid, props = _resource(body, "/resource", engine.catalogue, need_id=False)
        action, _ = _action(body, "/action", engine.catalogue, rtype)
        purpose, _ = _context(body, "/context")
        offset, limit = _page(body)
        subject = self.subjects.get(sid) if stype in SUBJECT_TYPES else None
        hits = []
        if subject is not None:
            rm = engine.mask(subject, rtype, action, purpose, [props])[0]
            for f in engine.catalogue.types[rtype].fields:
                effect = rm.effect(f)
                if effect != "deny":
                    hits.append(
                        {"type": rtype, "id": rid or "*", "properties": {"field": f, "effect": effect}}
                    )
        self._log_search(client, sid, action, rtype, rid, None, purpose, len(hits), engine.revision)
        return _paged(hits, offset, limit)

    def search_action(self, body: Mapping, client: str | None) -> dict:
        """Which actions the subject may do on the record as a whole (see docs/api.md)."""
        engine = self.engines.engine
        stype, sid = _subject(body, "/subject")
        rtype, rid, props = _resource(body, "/resource", engine.catalogue)
        purpose, _ = _context(body, "/context")
        offset, limit = _page(body)
        subject = self.subjects.get(sid) if stype in SUBJECT_TYPES else None
        hits = []
        if subject is not None:
            for action in engine.catalogue.types[rtype].actions:
                req = Request(stype, sid, rtype, rid, props, action, None, purpose, False)
                if self._allows(engine, subject, req):
                    hits.append({"name": action})
        self._log_search(client, sid, "*", rtype, rid, None, purpose, len(hits), engine.revision)
        return _paged(hits, offset, limit)

    def _allows(self, engine, subject: Subject, req: Request) -> bool:
        if req.fields is None:
            return self._record_level(engine, subject, req)[0] == "allow"
        return all(self._one(engine, subject, req, f).effect == "allow" for f in req.fields)

    def _log_search(self, client, sid, action, rtype, rid, fields, purpose, count, revision) -> None:
        self.decision_log.record(
            utcnow(),
            new_decision_id(),
            client,
            sid or "*",
            action,
            rtype,
            rid,
            list(fields) if fields else None,
            purpose,
            "search",
            f"{count} results",
            revision,
        )

    # -- discovery ------------------------------------------------------------------------------

    @staticmethod
    def configuration(base_url: str) -> dict:
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


def _parse_entry(merged: dict, catalogue, ptr: str, item: dict) -> Request:
    """Parse one batch entry; members missing from the entry point at the top-level default."""
    try:
        return parse_evaluation(merged, catalogue, ptr)
    except Invalid as exc:
        p = exc.pointer or ""
        member = p[len(ptr) + 1 :].split("/", 1)[0] if p.startswith(ptr + "/") else ""
        if member and member not in item:  # the fault is in the top-level default
            p = p[len(ptr) :]
            raise Invalid(exc.message.replace(exc.pointer, p), pointer=p) from None
        raise


def _render(specs: Mapping, props: Mapping, allowed, masked) -> dict:
    """The record in catalogue order, denied fields removed, masked fields masked; properties that
    are not catalogue fields are left out."""
    show = set(allowed)
    hide = set(masked)
    out = {}
    for f, spec in specs.items():
        if f not in props:
            continue
        if f in show:
            out[f] = props[f]
        elif f in hide and spec.mask != "none":
            out[f] = mask_value(props[f], spec.mask)
    return out


# --------------------------------------------------------------------------------------------
# paging (AuthZEN search: page.token / page.limit -> page.next_token / count / total)


def _page(body: Mapping) -> tuple[int, int]:
    page = _obj(body, "page", "/page", required=False) or {}
    limit = page.get("limit", DEFAULT_PAGE)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"/page/limit must be an integer from 1 to {MAX_PAGE}", pointer="/page/limit")
    token = page.get("token")
    offset = 0
    if token not in (None, ""):
        if not isinstance(token, str):
            raise Invalid("/page/token must be a string from page.next_token", pointer="/page/token")
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode("ascii") + b"=="))
            offset = int(data["o"])
            if offset < 0:
                raise ValueError
        except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
            raise Invalid("/page/token is not a token this service issued", pointer="/page/token") from None
    return offset, limit


def _paged(hits: list, offset: int, limit: int) -> dict:
    chunk = hits[offset : offset + limit]
    nxt = offset + len(chunk)
    token = ""
    if nxt < len(hits):
        token = base64.urlsafe_b64encode(json.dumps({"o": nxt}).encode()).decode().rstrip("=")
    return {"results": chunk, "page": {"next_token": token, "count": len(chunk), "total": len(hits)}}
