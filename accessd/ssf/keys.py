"""The keys that sign Security Event Tokens: ES256 (ECDSA on P-256), managed by accessd in
``ssf_key`` and published as a JWKS (RFC 7517).

A key is made on first need (the first SET, or the first JWKS request) and its ``kid`` is its
RFC 7638 thumbprint. The current key is the newest one not retired; :func:`rotate` retires it
and makes a new one. The JWKS lists the current key and every key retired less than
``ssf.key_retention_days`` ago, so a receiver can still verify a SET signed before a rotation that
is delivered after it (a retry, a paused stream). Two processes that find no key at the same
moment may each make one: both are published, and the newer signs from then on.

The private JWK lives only in the database column; it is never shown, logged or returned.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from accessd import audit
from accessd.models import SsfKey, utcnow
from accessd.ssf.events import TYP

ALG = "ES256"
_CURVE = "P-256"

_parsed: dict[str, ECKey] = {}  # kid -> private key, parsed once per process
_lock = threading.Lock()


def signing_key(session: Session) -> tuple[str, ECKey]:
    """The current key (made now if there is none), as (kid, private key)."""
    kid = session.scalar(
        select(SsfKey.kid).where(SsfKey.retired_at.is_(None)).order_by(SsfKey.created_at.desc()).limit(1)
    )
    if kid is None:
        return _create(session)
    key = _parsed.get(kid)
    if key is None:
        row = session.get(SsfKey, kid)
        key = ECKey.import_key(json.loads(row.private_jwk))
        with _lock:
            _parsed[kid] = key
    return kid, key


def sign(kid: str, key: ECKey, claims: dict) -> str:
    """``claims`` as a compact JWS with the SET header (``typ`` secevent+jwt, ``alg``, ``kid``)."""
    return jwt.encode({"typ": TYP, "alg": ALG, "kid": kid}, claims, key, algorithms=[ALG])


def rotate(session: Session, actor: str) -> str:
    """Retire the current key(s) and make a new one (audited); returns the new kid."""
    now = utcnow()
    retired = []
    for row in session.scalars(select(SsfKey).where(SsfKey.retired_at.is_(None))):
        row.retired_at = now
        retired.append(row.kid)
    session.flush()
    kid, _ = _create(session)
    audit.record(session, actor, "ssf.key.rotate", f"ssf_key:{kid}", {"retired": retired})
    return kid


def jwks(session: Session, retention_days: int) -> dict:
    """The public keys receivers verify SETs with: the current one (made now if there is none)
    and those retired within ``retention_days``, newest first."""
    cutoff = utcnow() - dt.timedelta(days=retention_days)
    rows = list(
        session.scalars(
            select(SsfKey)
            .where(or_(SsfKey.retired_at.is_(None), SsfKey.retired_at > cutoff))
            .order_by(SsfKey.created_at.desc())
        )
    )
    if not any(r.retired_at is None for r in rows):
        _create(session)
        return jwks(session, retention_days)
    return {"keys": [_public(r) for r in rows]}


def _public(row: SsfKey) -> dict:
    public = ECKey.import_key(json.loads(row.private_jwk)).as_dict(private=False)
    return {**public, "kid": row.kid, "use": "sig", "alg": ALG}


def _create(session: Session) -> tuple[str, ECKey]:
    key = ECKey.generate_key(_CURVE, private=True)
    kid = key.thumbprint()
    session.add(SsfKey(kid=kid, private_jwk=json.dumps(key.as_dict(private=True)), created_at=utcnow()))
    session.flush()
    with _lock:
        _parsed[kid] = key
    return kid, key
