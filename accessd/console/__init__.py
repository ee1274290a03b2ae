"""Services behind the admin web UI: plain functions over the database, no Flask.

Views in :mod:`accessd.web.admin` call these with the app's :class:`~accessd.db.Database` and an
``actor``; they return plain data (dataclasses, dicts), never live ORM objects.
"""
