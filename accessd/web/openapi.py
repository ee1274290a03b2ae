"""GET /openapi.json: the OpenAPI 3.1 description of the decision API (public, no token)."""

from __future__ import annotations

from flask import Blueprint

from accessd.pdp.requests import MAX_FIELDS, MAX_ID, MAX_NAME
from accessd.pdp.service import SEMANTICS
from accessd.web.responses import json_response

bp = Blueprint("openapi", __name__)

_STR = {"type": "string", "minLength": 1, "maxLength": MAX_ID}
_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME}
_PROPS = {"type": "object", "additionalProperties": True}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


# the members of an evaluation, and of each entry of a batch (where they override the top level)
_EVALUATION = {
    "subject": _ref("Subject"),
    "resource": _ref("Resource"),
    "action": _ref("Action"),
    "context": _ref("Context"),
}


def _errors(*codes: int) -> dict:
    text = {
        400: "Bad input; `pointer` names the member at fault",
        401: "Missing or bad bearer token",
        403: "The token's scope does not allow this endpoint",
        413: "Body, batch, record list or number of field decisions too large",
        415: "The body is not declared as JSON (Content-Type: application/json)",
        503: "Temporarily unable to answer with a decision record (see Retry-After)",
    }
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": _ref("Error")}}}
        for c in codes
    }


def _post(summary: str, request: str, response: str, description: str = "") -> dict:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
            "responses": {
                "200": {
                    "description": "Decided",
                    "content": {"application/json": {"schema": _ref(response)}},
                },
                **_errors(400, 401, 403, 413, 415, 503),
            },
        }
    }


SCHEMAS = {
    "Subject": {
        "type": "object",
        "required": ["type", "id"],
        "properties": {
            "type": {**_NAME, "description": "`user` (an accessd account)"},
            "id": {**_STR, "description": "the account's subject id"},
            "properties": {
                **_PROPS,
                "description": "ignored: roles, status and attributes come from accessd",
            },
        },
    },
    "SubjectQuery": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": _NAME, "id": _STR, "properties": _PROPS},
    },
    "Resource": {
        "type": "object",
        "required": ["type", "id"],
        "properties": {
            "type": {**_NAME, "description": "a resource type of the catalogue, e.g. `customer`"},
            "id": _STR,
            "properties": {**_PROPS, "description": "the record's attributes the policy reads"},
        },
    },
    "ResourceQuery": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": _NAME, "id": _STR, "properties": _PROPS},
    },
    "Action": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {**_NAME, "description": "an action of the resource type, e.g. `read`"},
            "properties": {
                "type": "object",
                "properties": {
                    "field": {**_NAME, "description": "the field asked about"},
                    "fields": {"type": "array", "minItems": 1, "maxItems": MAX_FIELDS, "items": _NAME},
                },
            },
        },
    },
    "Context": {
        "type": "object",
        "properties": {
            "purpose": {
                **_NAME,
                "description": "a purpose declared in the policy catalogue; without one, the API "
                "client's or the resource type's default purpose applies",
            },
            "explain": {
                "type": "boolean",
                "description": "add reason, matched_rules and revision to the answer",
            },
        },
    },
    "EvaluationRequest": {
        "type": "object",
        "required": ["subject", "resource", "action"],
        "properties": _EVALUATION,
    },
    "EvaluationResponse": {
        "type": "object",
        "required": ["decision"],
        "properties": {
            "decision": {"type": "boolean"},
            "context": {
                "type": "object",
                "properties": {
                    "decision_id": {"type": "string"},
                    "effect": {"type": "string", "enum": ["allow", "mask", "deny"]},
                    "mask": {"type": "string", "enum": ["last4", "redact", "none"]},
                    "reason": {"type": "string"},
                    "matched_rules": {"type": "array", "items": {"type": "string"}},
                    "revision": {"type": ["integer", "null"]},
                },
            },
        },
    },
    "EvaluationsRequest": {
        "type": "object",
        "properties": {
            **_EVALUATION,
            "evaluations": {"type": "array", "items": {"type": "object", "properties": _EVALUATION}},
            "options": {
                "type": "object",
                "properties": {"evaluations_semantic": {"type": "string", "enum": list(SEMANTICS)}},
            },
        },
    },
    "EvaluationsResponse": {
        "type": "object",
        "properties": {
            "decision": {"type": "boolean"},
            "context": {"type": "object"},
            "evaluations": {"type": "array", "items": _ref("EvaluationResponse")},
        },
    },
    "Record": {
        "type": "object",
        "required": ["type", "id"],
        "properties": {"type": _NAME, "id": _STR, "properties": _PROPS},
    },
    "FieldsRequest": {
        "type": "object",
        "required": ["subject", "action", "records"],
        "properties": {
            "subject": _ref("Subject"),
            "action": {"type": "object", "required": ["name"], "properties": {"name": _NAME}},
            "context": _ref("Context"),
            "records": {"type": "array", "maxItems": 1000, "items": _ref("Record")},
            "options": {"type": "object", "properties": {"return_records": {"type": "boolean"}}},
        },
    },
    "FieldsResponse": {
        "type": "object",
        "properties": {
            "decision_id": {"type": "string"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "id": {"type": "string"},
                        "allowed": {"type": "array", "items": {"type": "string"}},
                        "masked": {"type": "array", "items": {"type": "string"}},
                        "denied": {"type": "array", "items": {"type": "string"}},
                        "record": {"type": "object"},
                    },
                },
            },
        },
    },
    "Page": {
        "type": "object",
        "properties": {
            "token": {"type": "string"},
            "limit": {"type": "integer", "minimum": 0, "maximum": 1000},
        },
    },
    "SubjectSearchRequest": {
        "type": "object",
        "required": ["subject", "resource", "action"],
        "properties": {
            "subject": _ref("SubjectQuery"),
            "resource": _ref("Resource"),
            "action": _ref("Action"),
            "context": _ref("Context"),
            "page": _ref("Page"),
        },
    },
    "ResourceSearchRequest": {
        "type": "object",
        "required": ["subject", "resource", "action"],
        "properties": {
            "subject": _ref("Subject"),
            "resource": _ref("ResourceQuery"),
            "action": _ref("Action"),
            "context": _ref("Context"),
            "page": _ref("Page"),
        },
    },
    "ActionSearchRequest": {
        "type": "object",
        "required": ["subject", "resource"],
        "properties": {
            "subject": _ref("Subject"),
            "resource": _ref("Resource"),
            "context": _ref("Context"),
            "page": _ref("Page"),
        },
    },
    "SearchResponse": {
        "type": "object",
        "properties": {
            "results": {"type": "array", "items": {"type": "object"}},
            "page": {
                "type": "object",
                "properties": {
                    "next_token": {"type": "string"},
                    "count": {"type": "integer"},
                    "total": {"type": "integer"},
                },
            },
        },
    },
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "pointer": {"type": "string", "description": "JSON pointer of the member at fault"},
        },
    },
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "accessd decision API",
        "version": "1.0",
        "description": "OpenID AuthZEN Authorization API 1.0 plus a field-mask call for whole "
        "records. See docs/api.md.",
    },
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": SCHEMAS},
    "paths": {
        "/access/v1/evaluation": _post("One access evaluation", "EvaluationRequest", "EvaluationResponse"),
        "/access/v1/evaluations": _post(
            "A batch of evaluations with defaults", "EvaluationsRequest", "EvaluationsResponse"
        ),
        "/access/v1/fields": _post(
            "Field masks for up to max_records records", "FieldsRequest", "FieldsResponse"
        ),
        "/access/v1/search/subject": _post(
            "Subjects that may do the action", "SubjectSearchRequest", "SearchResponse"
        ),
        "/access/v1/search/resource": _post(
            "Fields of the record the subject may act on", "ResourceSearchRequest", "SearchResponse"
        ),
        "/access/v1/search/action": _post(
            "Actions the subject may do on the record", "ActionSearchRequest", "SearchResponse"
        ),
        "/.well-known/authzen-configuration": {
            "get": {
                "summary": "AuthZEN PDP metadata",
                "responses": {
                    "200": {
                        "description": "Endpoints",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/api/v1/decisions": {
            "get": {
                "summary": "The decision log (scope admin)",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": "string"}}
                    for n in ("resource", "subject", "since", "until", "limit", "offset")
                ],
                "responses": {"200": {"description": "Decisions, newest first"}, **_errors(400, 401, 403)},
            }
        },
        "/healthz": {"get": {"summary": "Process up", "responses": {"200": {"description": "ok"}}}},
        "/readyz": {
            "get": {
                "summary": "Database reachable and a policy revision loaded",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
    },
}


@bp.get("/openapi.json")
def openapi():
    return json_response(DOCUMENT)
