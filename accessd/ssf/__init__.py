"""OpenID Shared Signals (SSF 1.0) transmitter: signing keys, streams, the outbox of Security
Event Tokens (CAEP session-revoked and token-claims-change, RISC account-disabled and
account-enabled) and their push (RFC 8935) and poll (RFC 8936) delivery. Flask-free.

``events`` (event types, subject formats, SET claims), ``keys`` (ES256 keys, JWKS),
``streams`` (the management API and `accessd stream`), ``outbox`` (rows written in the
transaction of a change; `accessd events`), ``delivery`` (the push thread), ``poll``
(RFC 8936). docs/ssf.md describes them for receivers and administrators."""
