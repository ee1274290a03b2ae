"""The policy decision point: AuthZEN requests in, decisions (each with its log record) out.

``requests`` reads and checks request bodies, ``paging`` pages search results, ``service`` decides.
No Flask here: ``accessd/web/authzen.py`` is the HTTP layer over :class:`service.DecisionService`.
"""
