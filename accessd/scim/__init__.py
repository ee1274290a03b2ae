"""The SCIM 2.0 server (RFC 7643/7644) over accessd's accounts, without Flask: ``provider``
(what it publishes), ``storage`` (Users and Groups as accessd's tables, the library's interface)
over ``documents`` (rows as SCIM documents and back), ``queries`` (what SCIM sees, in SQL),
``users`` and ``groups`` (the writes) and ``writer`` (what every write shares), ``roles`` (groups
to roles), ``server`` (authentication, one transaction per request). docs/scim.md describes it."""
