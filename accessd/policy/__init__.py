"""The decision engine: pure Python, no Flask. See docs/policy.md."""

from accessd.policy.engine import Decision, Engine, RecordMask, Subject, mask_value
from accessd.policy.model import PolicySet, load_policy_dir

__all__ = ["Decision", "Engine", "PolicySet", "RecordMask", "Subject", "load_policy_dir", "mask_value"]
