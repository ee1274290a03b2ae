"""Joiners, movers and leavers from every source: the directory and its sync, HR events, the one
set of lifecycle routines (no Flask).

* ``directory`` (connection and paged searches), ``directory_mapping`` (what to read),
  ``directory_entries`` (search results -> people and groups, departure signals, LDAP values);
* ``group_roles`` (roles from nested group membership);
* ``sync`` (orchestration: run, approve, reject, list, show) over ``sync_plan`` (directory vs
  accounts -> plan), ``sync_actions`` (the planned actions as dataclasses), ``sync_apply``
  (writing a plan, thresholds) and ``sync_runs`` (the run records), one at a time by ``locks``;
* ``states`` (the typed sources and statuses), ``offboarding`` (offboard, cancel_departure,
  suspend, resume, reenable: the routines every trigger calls), ``signals`` (what a change tells
  connected applications, through :mod:`accessd.ssf`);
* ``hr_requests`` (verifying and reading a signed HR event), ``hr_events`` (applying it),
  ``stale`` (the stale and orphan account sweep).
"""
