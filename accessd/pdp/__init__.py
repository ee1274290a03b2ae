"""The policy decision point: AuthZEN requests in, decisions (each with its log record) out.

``requests`` reads and checks request bodies, ``paging`` pages search results, ``service`` decides,
``ids`` names decisions; ``decision_log`` writes every decision (``decision_rows`` turns them
into database rows) and ``decision_queries`` reads them back; ``subjects``, ``tokens`` and
``revisions`` are the per-process caches of accounts, API clients and the compiled policy. No
Flask here: ``accessd/web/`` is the HTTP layer over it.
"""
