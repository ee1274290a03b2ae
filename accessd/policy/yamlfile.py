"""Line-aware YAML loading for policy files: every mapping remembers the line it and its keys were
written on, so a mistake can be reported as ``file:line: reason``.

:func:`load_yaml` parses (libyaml's parser when built, always a safe loader) into
:class:`LineDict` mappings; :func:`check_keys` refuses unknown and missing keys. Both raise
:class:`accessd.errors.PolicyError`.
"""

from __future__ import annotations

from typing import Any

import yaml

from accessd.errors import PolicyError


class LineDict(dict):
    """A YAML mapping that remembers where it and each of its keys were written."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when built
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping key is not a scalar", key_node.start_mark
            ) from None
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, file: str) -> Any:
    """Parse YAML; mappings become :class:`LineDict`. Syntax errors raise PolicyError with the line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(str(x) for x in (exc.context, exc.problem) if x) or str(exc)
        raise PolicyError(file, line, f"YAML error: {reason}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(file, None, f"YAML error: {exc}") from None


def check_keys(d: Any, allowed: set[str], file: str, what: str, required: set[str] = frozenset()) -> None:
    """``d`` must be a mapping holding only ``allowed`` keys and every ``required`` one."""
    if not isinstance(d, dict):
        line = getattr(d, "line", None)
        raise PolicyError(file, line, f"{what} must be a mapping")
    for key in d:
        if key not in allowed:
            raise PolicyError(
                file, d.line_of(key), f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})"
            )
    for key in sorted(required):
        if key not in d:
            raise PolicyError(file, d.line, f"{what} is missing {key!r}")
