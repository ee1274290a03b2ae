"""The decision engine: pure Python, no Flask. See docs/policy.md.

A policy directory is parsed file by file (``yamlfile``, ``catalogue``, ``rules``), checked
across files into a ``PolicySet`` (``policyset``, with conditions checked by ``condition_check``),
compiled to lookup tables (``conditions``, ``compile``) and decided by the ``engine`` (record masks
in ``masks``). ``cases`` runs a policy's YAML test cases, ``diff`` compares two policies, and
``reference`` holds the casbin reference the engine is proven against.
"""

from accessd.policy.engine import Decision, Engine, Subject
from accessd.policy.masks import RecordMask, mask_value
from accessd.policy.policyset import PolicySet, load_policy_dir

__all__ = ["Decision", "Engine", "PolicySet", "RecordMask", "Subject", "load_policy_dir", "mask_value"]
