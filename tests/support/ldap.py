"""A throwaway OpenLDAP server for tests and benchmarks (Debian's slapd via the PyPI ``slapd`` helper).

The server has the cosine, inetorgperson and nis schemas, a small ``accessdPerson`` schema with
an end-date attribute, the syncprov overlay (so the suffix has a ``contextCSN``, as on any
replicated OpenLDAP) and the ppolicy overlay with password policies under ``ou=policies``:

* ``cn=default``   the default policy: 3 failed binds lock for ``LOCKOUT_SECONDS``;
* ``cn=permanent`` 3 failed binds lock until an administrator unlocks (no pwdLockoutDuration);
* ``cn=service``   no lockout (the service accounts below use it, so that failed-bind tests
  never lock the sync's own bind).

Three service accounts under the suffix:

* ``cn=sync``    reads everything (the normal sync bind);
* ``cn=limited`` reads everything but is limited to 3 entries per search (size-limit test);
* ``cn=blind``   can read the containers but none of the entries below ``ou=people`` nodes.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import tempfile
from pathlib import Path

import ldap3
import slapd

HERE = Path(__file__).resolve().parent
SUFFIX = "dc=accessd,dc=test"
SERVICE_PASSWORD = "s3rvice-Pa55-not-for-prod"
POLICIES = f"ou=policies,{SUFFIX}"
DEFAULT_POLICY = f"cn=default,{POLICIES}"
PERMANENT_POLICY = f"cn=permanent,{POLICIES}"
LOCKOUT_SECONDS = 600

CONFIG = r"""dn: cn=config
objectClass: olcGlobal
cn: config
olcServerID: %(serverid)s
olcLogLevel: none
olcSizeLimit: unlimited
olcAuthzRegexp: {0}"gidnumber=%(root_gid)s\+uidnumber=%(root_uid)s,cn=peercred,cn=external,cn=auth"
  "%(rootdn)s"

dn: cn=module,cn=config
objectClass: olcModuleList
cn: module
olcModuleLoad: back_%(database)s
olcModuleLoad: ppolicy
olcModuleLoad: syncprov

%%SPLIT%%
dn: olcDatabase=config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: config
olcRootDN: %(rootdn)s

dn: olcDatabase=%(database)s,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: %(database)s
olcSuffix: %(suffix)s
olcRootDN: %(rootdn)s
olcRootPW: %(rootpw)s
olcDbDirectory: %(directory)s
olcDbMaxSize: 4000000000
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: entryUUID eq
olcDbIndex: member eq
olcLimits: {0}dn.exact="cn=limited,%(suffix)s" size=3
olcLimits: {1}dn.exact="cn=sync,%(suffix)s" size=unlimited
olcAccess: {0}to attrs=userPassword by anonymous auth by * none
olcAccess: {1}to dn.regex="^.+,ou=people,.+$" by dn.exact="cn=blind,%(suffix)s" none by * read
olcAccess: {2}to * by * read

dn: olcOverlay=ppolicy,olcDatabase={1}%(database)s,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: ppolicy
olcPPolicyDefault: cn=default,ou=policies,%(suffix)s

dn: olcOverlay=syncprov,olcDatabase={1}%(database)s,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: syncprov
"""


def _policy(name: str, lockout: bool, duration: int | None) -> str:
    lines = [
        f"dn: cn={name},{POLICIES}",
        "objectClass: applicationProcess",
        "objectClass: pwdPolicy",
        f"cn: {name}",
        "pwdAttribute: userPassword",
        f"pwdLockout: {'TRUE' if lockout else 'FALSE'}",
        "pwdMaxFailure: 3",
    ]
    if duration is not None:
        lines.append(f"pwdLockoutDuration: {duration}")
    return "\n".join(lines) + "\n\n"


class TestDirectory(slapd.Slapd):
    """slapd with our schemas, ppolicy and service accounts; ``host``/``port`` for ldap3."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, **kw):
        kw.setdefault("log_level", logging.ERROR)
        super().__init__(
            suffix=SUFFIX,
            root_pw="r00t-Pa55",
            schemas=[
                "core.ldif",
                "cosine.ldif",
                "inetorgperson.ldif",
                "nis.ldif",
                str(HERE / "accessd-schema.ldif"),
            ],
            configuration_template=CONFIG,
            datadir_prefix="accessd-slapd",
            **kw,
        )

    TMPDIR = tempfile.gettempdir()

    def _write_config(self):
        """Global settings, then the schemas, then the databases (their indexes need the schemas)."""
        head, tail = self._gen_config().split("%SPLIT%")
        self.slapadd(head, ["-n0"])
        for schema in self.schemas:
            path = schema if os.path.exists(schema) else os.path.join(self.SCHEMADIR, schema)
            self.slapadd(None, ["-n0", "-l", path])
        self.slapadd(tail, ["-n0"])

    def _setup_rundir(self):
        os.makedirs(self.testrundir)
        os.mkdir(self._db_directory)
        os.mkdir(self._slapd_conf)

    def start(self):
        super().start()
        self.init_tree()
        self.ldapadd(
            f"dn: {POLICIES}\nobjectClass: organizationalUnit\nou: policies\n\n"
            + _policy("default", True, LOCKOUT_SECONDS)
            + _policy("permanent", True, None)
            + _policy("service", False, None)
            + "".join(
                f"dn: cn={name},{SUFFIX}\nobjectClass: applicationProcess\n"
                f"objectClass: simpleSecurityObject\ncn: {name}\nuserPassword: {SERVICE_PASSWORD}\n"
                f"pwdPolicySubentry: cn=service,{POLICIES}\n\n"
                for name in ("sync", "limited", "blind")
            )
        )
        return self

    def kill(self) -> None:
        """Stop slapd abruptly (data kept); ``resume()`` starts it again."""
        if self._proc is not None:
            self._proc.kill()
            self.wait()

    def resume(self) -> None:
        self._start_slapd()

    def bind_dn(self, name: str = "sync") -> str:
        return f"cn={name},{SUFFIX}"

    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


_ou = itertools.count(1)


class People:
    """Entries of one test's subtree, written as the directory administrator."""

    def __init__(self, server: TestDirectory):
        self.server = server
        self.base = f"ou=t{next(_ou)},{SUFFIX}"
        self.people = f"ou=people,{self.base}"
        self.groups = f"ou=groups,{self.base}"
        self.conn = ldap3.Connection(
            ldap3.Server(server.host, port=server.port, get_info=ldap3.NONE),
            server.root_dn,
            server.root_pw,
            auto_bind=True,
            raise_exceptions=True,
        )
        for dn in (self.base, self.people, self.groups, f"ou=staff,{self.base}"):
            self.conn.add(dn, ["organizationalUnit"], {"ou": dn.split(",")[0][3:]})

    def dn(self, uid: str, ou: str = "people") -> str:
        return f"uid={uid},ou={ou},{self.base}"

    def add(self, uid: str, ou: str = "people", **attrs) -> str:
        dn = self.dn(uid, ou)
        values = {"cn": uid.title(), "sn": uid.title(), "uid": uid, "mail": f"{uid}@example.test", **attrs}
        self.conn.add(
            dn,
            ["inetOrgPerson", "shadowAccount", "accessdPerson"],
            {k: v for k, v in values.items() if v is not None},
        )
        return dn

    def modify(self, dn: str, **attrs) -> None:
        """Replace attributes; a value of None deletes the attribute."""
        changes = {
            k: ([(ldap3.MODIFY_DELETE, [])] if v is None else [(ldap3.MODIFY_REPLACE, [v])])
            for k, v in attrs.items()
        }
        self.conn.modify(dn, changes)

    def lock(self, dn: str, when: str = "000001010000Z") -> None:
        self.conn.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [when])]})

    def unlock(self, dn: str) -> None:
        self.conn.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_DELETE, [])]})

    def delete(self, dn: str) -> None:
        self.conn.delete(dn)

    def rename(self, dn: str, new_rdn: str, new_ou: str | None = None) -> str:
        superior = f"ou={new_ou},{self.base}" if new_ou else None
        self.conn.modify_dn(dn, new_rdn, new_superior=superior)
        return f"{new_rdn},{superior or dn.split(',', 1)[1]}"

    def group(self, name: str, *members: str) -> str:
        dn = f"cn={name},{self.groups}"
        self.conn.add(dn, ["groupOfNames"], {"cn": name, "member": list(members) or [self.base]})
        return dn

    def set_members(self, group_dn: str, *members: str) -> None:
        self.conn.modify(group_dn, {"member": [(ldap3.MODIFY_REPLACE, list(members) or [self.base])]})
