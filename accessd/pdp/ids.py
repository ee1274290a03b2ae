"""Decision ids: unique across workers, hosts and restarts, and cheap on the decision path."""

from __future__ import annotations

import itertools
import os
import secrets


class _DecisionIds:
    """Decision ids: a random per-process prefix and a counter -- unique across workers and
    restarts, and far cheaper than a uuid4 (a syscall and an object) on every decision."""

    def __init__(self):
        self.reset()
        os.register_at_fork(after_in_child=self.reset)  # a forked worker must not repeat ids

    def reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_decision_id = _DecisionIds()
