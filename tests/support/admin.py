"""What the admin UI's services need from a test: an actor's reach that holds every admin right."""

from __future__ import annotations

from pathlib import Path

from accessd.console.permissions import ACTIONS, Reach
from accessd.policy import load_policy_dir
from accessd.policy.engine import Engine

POLICIES = Path(__file__).resolve().parents[2] / "policies"

#: an actor who may do every admin_ui action (an ``admin``): may grant and change anyone
EVERYTHING = Reach(Engine(load_policy_dir(POLICIES)), frozenset(ACTIONS))
