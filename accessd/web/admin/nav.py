"""The admin UI's navigation: (endpoint, label, admin_ui action needed to see the link)."""

from __future__ import annotations

NAV: list[tuple[str, str, str]] = [
    ("admin.dashboard", "Dashboard", "view"),
    ("admin.people", "People", "view"),
    ("admin.roles", "Roles", "view"),
    ("admin.matrix", "Permissions", "view"),
    ("admin.revisions", "Revisions", "view"),
    ("admin.simulator", "Simulator", "view"),
    ("admin.sync_runs", "Sync", "view"),
    ("admin.audit", "Audit", "view_logs"),
    ("admin.decisions", "Decisions", "view_logs"),
    ("admin.clients", "Integrations", "view"),
]
