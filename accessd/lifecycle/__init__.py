"""Joiners, movers and leavers: the directory, the sync, and the one offboarding routine (no Flask).

* ``directory`` (connection and paged searches), ``directory_mapping`` (what to read),
  ``directory_entries`` (search results -> people and groups, departure signals, LDAP values);
* ``group_roles`` (roles from nested group membership);
* ``sync`` (orchestration: run, approve, reject, list, show) over ``sync_plan`` (directory vs
  accounts -> plan), ``sync_actions`` (the planned actions as dataclasses), ``sync_apply``
  (writing a plan, thresholds) and ``sync_runs`` (the run records), one at a time by ``locks``;
* ``offboarding`` (offboard and re-enable: the routine every trigger calls).
"""
