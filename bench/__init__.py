"""Benchmarks, run as modules from the repository root: ``.venv/bin/python -m bench.decisions``,
``-m bench.http``, ``-m bench.ldap_sync`` (see the README). Running them as modules keeps bench/
off ``sys.path``, so bench/http.py never shadows the standard library's ``http``."""
