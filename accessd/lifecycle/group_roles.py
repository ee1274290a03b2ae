"""Directory roles from group membership: ``ldap.group_roles`` applied through nested groups."""

from __future__ import annotations

from collections import defaultdict

from accessd.lifecycle.directory_entries import DirectoryGroup, norm_dn


class RoleResolver:
    """Maps a member DN to roles through ``ldap.group_roles``, expanding nested groups.

    A group's roles reach members of groups nested in it up to ``depth_limit`` levels; cycles are
    detected and reported (each group is visited once per path).
    """

    def __init__(self, groups: list[DirectoryGroup], group_roles: dict, depth_limit: int):
        self.warnings: list[str] = []
        by_dn = {norm_dn(g.dn): g for g in groups}
        by_cn: dict[str, list[str]] = defaultdict(list)
        for g in groups:
            by_cn[g.name.lower()].append(norm_dn(g.dn))
        # group -> roles it grants directly
        roles: dict[str, set[str]] = defaultdict(set)
        for ref, rs in (group_roles or {}).items():
            rs = [rs] if isinstance(rs, str) else list(rs)
            targets = [norm_dn(ref)] if "=" in ref else by_cn.get(ref.lower(), [])
            for t in targets:
                if t in by_dn:
                    roles[t].update(rs)
            if not any(t in by_dn for t in targets):
                self.warnings.append(f"group_roles: group {ref!r} was not found in the directory")
        # child -> parents (member-of), for expanding upwards
        parents: dict[str, set[str]] = defaultdict(set)
        for gdn, g in by_dn.items():
            for m in g.members:
                parents[norm_dn(m)].add(gdn)
        self._parents = parents
        self._group_roles = roles
        self._cache: dict[str, dict[str, str]] = {}
        self._depth_limit = depth_limit
        self._by_dn = by_dn
        self._reported: set[str] = set()

    def _expand(self, group: str) -> dict[str, str]:
        """Roles (-> granting group DN) of ``group`` and every group it is nested in."""
        if group in self._cache:
            return self._cache[group]
        out: dict[str, str] = {}
        stack = [(group, 0, frozenset([group]))]
        while stack:
            g, depth, path = stack.pop()
            for r in self._group_roles.get(g, ()):
                if r not in out or self._by_dn[g].dn < out[r]:
                    out[r] = self._by_dn[g].dn
            for parent in sorted(self._parents.get(g, ())):
                if parent in path:
                    self._warn(
                        f"group nesting cycle: {self._by_dn[g].dn} is a member of {self._by_dn[parent].dn}, "
                        "which already contains it; ignoring that link"
                    )
                    continue
                if depth + 1 > self._depth_limit:
                    self._warn(
                        f"group nesting deeper than {self._depth_limit} at {self._by_dn[parent].dn}; "
                        "ignoring deeper levels"
                    )
                    continue
                stack.append((parent, depth + 1, path | {parent}))
        self._cache[group] = out
        return out

    def _warn(self, text: str) -> None:
        if text not in self._reported:
            self._reported.add(text)
            self.warnings.append(text)

    def roles_of(self, dn: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for g in sorted(self._parents.get(norm_dn(dn), ())):
            for role, ref in self._expand(g).items():
                if role not in out or ref < out[role]:
                    out[role] = ref
        return out
