"""Benchmark: directory sync of 10,000 people in 50 groups against a raw ldap3 paged search.

Usage: .venv/bin/python -m bench.ldap_sync [--people 10000] [--groups 50] [--database-url URL]

Starts a throwaway slapd (mdb, no fsync), loads the people with ldapadd, then measures in the same
run: a raw ldap3 paged search of the same users and groups (the baseline, best of 3), a first full
sync into an empty database, a second full sync with no changes, and an incremental sync after
100 changes. Prints each time, its ratio to the raw search and PASS/FAIL against the targets:

* first full sync   <= 3 x raw search + the database writes (the write time is reported apart)
* unchanged re-sync <= 1.5 x raw search, and zero rows written besides the run record
* incremental       proportional to the changes: <= 15% of the unchanged full sync for 1% changed
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import ldap3

from accessd.config import load_settings
from accessd.db import Database
from accessd.lifecycle.directory import Directory
from accessd.lifecycle.sync import run_sync
from tests.support.ldap import SERVICE_PASSWORD, SUFFIX, TestDirectory
from tests.support.lifecycle import table_counts

ROLES = ["reception", "therapist", "billing", "marketing", "dpo", "it_support"]


def ldif(people: int, groups: int) -> str:
    out = [
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for i in range(people):
        out.append(
            f"dn: uid=u{i:05d},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nobjectClass: shadowAccount\n"
            f"uid: u{i:05d}\ncn: User {i}\nsn: {i}\ndisplayName: User Number {i}\n"
            f"mail: u{i:05d}@example.test\nemployeeNumber: E{i:06d}\ndepartmentNumber: dept{i % 20}\n"
            f"title: Title {i % 7}\nl: region{i % 4}\n"
        )
    for g in range(groups):
        members = "".join(f"member: uid=u{i:05d},ou=people,{SUFFIX}\n" for i in range(g, people, groups))
        out.append(
            f"dn: cn=group{g:02d},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: group{g:02d}\n{members}"
        )
    return "\n".join(out)


def raw_search(
    server: TestDirectory, attributes: list[str], group_attributes: list[str]
) -> tuple[float, int]:
    """The baseline: ldap3 paged searches of the same users and groups, nothing else."""
    start = time.perf_counter()
    conn = ldap3.Connection(
        ldap3.Server(server.host, port=server.port, get_info=ldap3.NONE),
        server.bind_dn("sync"),
        SERVICE_PASSWORD,
        auto_bind=True,
        read_only=True,
    )
    n = 0
    for base, flt, attrs in (
        (f"ou=people,{SUFFIX}", "(objectClass=inetOrgPerson)", attributes),
        (f"ou=groups,{SUFFIX}", "(objectClass=groupOfNames)", group_attributes),
    ):
        n += sum(
            1
            for _ in conn.extend.standard.paged_search(
                base, flt, attributes=attrs, paged_size=500, generator=True
            )
        )
    conn.unbind()
    return time.perf_counter() - start, n


def best(fn, repeat=3):
    return min(fn() for _ in range(repeat))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="accessd-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    db = Database(url)
    db.upgrade()
    server = TestDirectory()
    server.start()
    try:
        t = time.perf_counter()
        server.ldapadd(ldif(args.people, args.groups))
        print(
            f"loaded {args.people:,} people in {args.groups} groups into slapd "
            f"in {time.perf_counter() - t:.1f}s"
        )
        settings = load_settings(
            env={},
            overrides={
                "database_url": url,
                "ldap": {
                    "url": server.url(),
                    "bind_dn": server.bind_dn("sync"),
                    "bind_password": SERVICE_PASSWORD,
                    "user_base": f"ou=people,{SUFFIX}",
                    "group_base": f"ou=groups,{SUFFIX}",
                    "page_size": 500,
                    "group_roles": {f"group{g:02d}": [ROLES[g % len(ROLES)]] for g in range(args.groups)},
                },
            },
        )
        d = Directory(settings.ldap)
        user_attrs = d.user_attributes()
        group_attrs = [*d.mapping["group_member"], *d.mapping["group_name"], *d.mapping["modified"]]

        def raw():
            return raw_search(server, user_attrs, group_attrs)[0]

        raw_search(server, user_attrs, group_attrs)  # warm slapd's cache
        results = []

        raw1 = best(raw)
        first = run_sync(db, settings, actor="bench")
        assert first.status == "succeeded" and first.counts.get("join") == args.people, first
        t_first = sum(first.timings.values())
        write = first.timings["write"]
        ok = t_first <= 3 * raw1 + write
        results.append(("first full sync", t_first, raw1, f"<= 3x raw + writes ({write:.2f}s)", ok))

        before = table_counts(db)
        raw2 = best(raw)
        second = run_sync(db, settings, actor="bench")
        t_second = sum(second.timings.values())
        after = table_counts(db)
        after["sync_run"] -= 1
        written = sum(after.values()) - sum(before.values())
        ok = t_second <= 1.5 * raw2 and second.counts == {} and written == 0
        results.append(("unchanged full re-sync", t_second, raw2, f"<= 1.5x raw, {written} rows written", ok))

        conn = ldap3.Connection(
            ldap3.Server(server.host, port=server.port, get_info=ldap3.NONE),
            server.root_dn,
            server.root_pw,
            auto_bind=True,
        )
        step = max(1, args.people // args.changes)
        for i in range(0, args.people, step)[: args.changes]:
            conn.modify(f"uid=u{i:05d},ou=people,{SUFFIX}", {"title": [(ldap3.MODIFY_REPLACE, ["Changed"])]})
        conn.unbind()
        raw3 = best(raw)
        inc = run_sync(db, settings, kind="incremental", actor="bench")
        t_inc = sum(inc.timings.values())
        assert inc.counts == {"update": args.changes}, inc.counts
        ok = t_inc <= 0.15 * t_second
        results.append(
            (
                f"incremental ({args.changes} changes)",
                t_inc,
                raw3,
                f"<= 15% of unchanged full ({0.15 * t_second:.2f}s); read {inc.seen} entries",
                ok,
            )
        )

        print(
            f"database: {db.dialect}; raw = ldap3 paged search of {args.people:,} users "
            f"+ {args.groups} groups"
        )
        print(f"{'measurement':28} {'time':>8} {'raw':>8} {'ratio':>7}  target")
        for name, took, base, target, passed in results:
            print(
                f"{name:28} {took:7.2f}s {base:7.2f}s {took / base:6.2f}x  {target}  "
                f"{'PASS' if passed else 'FAIL'}"
            )
        print("first run phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in first.timings.items()))
        print("unchanged phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in second.timings.items()))
        return 0 if all(r[-1] for r in results) else 1
    finally:
        server.stop()
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
