"""The connection to an LDAP directory (OpenLDAP or Active Directory): bind and paged searches.

``Directory(settings.ldap)`` binds (plain, ldaps:// or StartTLS) and runs paged searches. Every
failure -- connect, bind, a missing base DN, a page that could not be read, a size or time
limit -- raises :class:`DirectoryUnavailable` with the reason; a search never answers "no users"
when it could not read. The bind password is never logged or put in an error message.

What is read comes from :mod:`accessd.lifecycle.directory_mapping` (attribute mapping, filters);
results become people and groups through :mod:`accessd.lifecycle.directory_entries`.

High-water marks: :meth:`Directory.high_water_mark` reads the point the directory has reached
*before* a run reads anything (contextCSN, highestCommittedUSN), so a change committed while the
pages are read is read again by the next incremental run instead of being skipped.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import ssl
from collections.abc import Callable, Collection, Iterator

import ldap3
from ldap3.core.exceptions import LDAPException

from accessd.config import LdapSettings
from accessd.errors import DirectoryUnavailable, Invalid
from accessd.lifecycle.directory_entries import DirectoryEntry, DirectoryGroup, EntryReader, first, norm_dn
from accessd.lifecycle.directory_mapping import (
    CLOCK_MARGIN,
    changed_since,
    clock_mark,
    filters_for,
    mapping_for,
    subject_attribute_mapping,
    user_attributes,
)

log = logging.getLogger(__name__)

PAGED_RESULTS = "1.2.840.113556.1.4.319"


class Directory:
    """A read-only connection to the directory; use as a context manager."""

    def __init__(
        self,
        settings: LdapSettings,
        *,
        subject_attributes: Collection[str] | None = None,
        progress: Callable[[int], None] | None = None,
        progress_every: int = 1000,
    ):
        """``subject_attributes``: the policy's declared subject attributes (which extra keys of
        ``ldap.attributes`` to read); None rejects any key that is not a mapping key."""
        if not settings.url:
            raise Invalid("ldap.url is not configured")
        if not settings.user_base:
            raise Invalid("ldap.user_base is not configured")
        self.settings = settings
        self.mapping = mapping_for(settings)
        extra, self.warnings = subject_attribute_mapping(settings, subject_attributes)
        self.entries = EntryReader(self.mapping, extra, settings.password_policy_dn, self.warnings)
        self.user_filter, self.group_filter = filters_for(settings)
        self.progress = progress
        self.progress_every = progress_every
        self.conn: ldap3.Connection | None = None
        self._read = 0

    # connection ------------------------------------------------------------------------------

    def __enter__(self) -> Directory:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> None:
        s = self.settings
        where = s.url
        conn = ldap3.Connection(
            _server(s),
            user=s.bind_dn or None,
            password=s.bind_password or None,
            auto_bind=ldap3.AUTO_BIND_NONE,
            raise_exceptions=False,
            read_only=True,
            receive_timeout=s.timeout_seconds,
            return_empty_attributes=False,
        )
        try:
            conn.open()
            if s.start_tls and not s.url.startswith("ldaps://") and not conn.start_tls():
                raise DirectoryUnavailable(f"StartTLS with {where} failed: {_describe(conn.result)}")
            if not conn.bind():
                who = s.bind_dn or "anonymous"
                raise DirectoryUnavailable(f"bind to {where} as {who} failed: {_describe(conn.result)}")
        except LDAPException as exc:
            raise DirectoryUnavailable(f"cannot reach the directory at {where}: {_exc_text(exc)}") from None
        self.conn = conn
        log.debug("bound to %s as %s", where, s.bind_dn or "anonymous")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(LDAPException):
                self.conn.unbind()
            self.conn = None

    # searching -------------------------------------------------------------------------------

    def paged_search(
        self, base: str, filter_: str, attributes: list[str], *, counted: bool = True
    ) -> Iterator[dict]:
        """Yield every matching entry (``dn``, ``attributes``, ``raw_attributes``) page by page;
        ``counted`` entries (people and groups, not policies) feed the progress callback.

        Raises DirectoryUnavailable unless every page was read: callers may treat what they
        receive as complete only when the generator finished without raising.
        """
        if self.conn is None:
            raise DirectoryUnavailable("not connected to the directory")
        s = self.settings
        cookie = None
        pages = 0
        count = 0
        while True:
            try:
                self.conn.search(
                    base,
                    filter_,
                    ldap3.SUBTREE,
                    attributes=attributes,
                    paged_size=s.page_size,
                    paged_cookie=cookie,
                    size_limit=s.size_limit,
                    time_limit=s.timeout_seconds,
                )
            except LDAPException as exc:
                raise DirectoryUnavailable(
                    f"reading {base} failed after {pages} pages ({count} entries): {_exc_text(exc)}; "
                    "the read is incomplete"
                ) from None
            result = self.conn.result
            code = result.get("result")
            if code == 32:
                raise DirectoryUnavailable(f"the base DN {base} does not exist (noSuchObject)")
            if code == 4:
                raise DirectoryUnavailable(
                    f"reading {base} hit a size limit after {count} entries (sizeLimitExceeded); "
                    "raise the server's limit for the bind DN or use paging"
                )
            if code == 3:
                raise DirectoryUnavailable(f"reading {base} hit a time limit (timeLimitExceeded)")
            if code != 0:
                raise DirectoryUnavailable(f"reading {base} failed: {_describe(result)}")
            for item in self.conn.response or ():
                if item.get("type") == "searchResEntry":
                    count += 1
                    self._read += counted
                    if counted and self.progress and self._read % self.progress_every == 0:
                        self.progress(self._read)
                    yield item
            pages += 1
            control = (result.get("controls") or {}).get(PAGED_RESULTS)
            cookie = control["value"]["cookie"] if control else None
            if not cookie:
                return

    def user_attributes(self) -> list[str]:
        """The LDAP attributes a user search asks for."""
        return user_attributes(self.mapping, self.entries.extra)

    # before a read ---------------------------------------------------------------------------

    def _base_entry(self, base: str, attributes: list[str]) -> dict:
        """The attributes of one entry (base scope); {} when it cannot be read."""
        try:
            ok = self.conn.search(base, "(objectClass=*)", ldap3.BASE, attributes=attributes)
        except LDAPException:
            return {}
        return self.conn.response[0]["attributes"] if ok and self.conn.response else {}

    @functools.cached_property
    def naming_context(self) -> str | None:
        """The directory suffix that holds ``user_base`` (from the root DSE)."""
        contexts = self._base_entry("", ["namingContexts"]).get("namingContexts", [])
        base = norm_dn(self.settings.user_base)
        matching = [c for c in contexts if base == norm_dn(c) or base.endswith("," + norm_dn(c))]
        return max(matching, key=len) if matching else None

    def high_water_mark(self) -> tuple[str | None, str | None]:
        """The change sequence the directory has reached now, read *before* a run reads entries:
        the next incremental run reads everything changed after it, including changes made while
        this run was reading. Returns (mark, warning).

        entryCSN: the smallest contextCSN of the suffix (one value per provider; the smallest, so
        a change replicated late from any provider is not skipped). uSNChanged: the root DSE's
        highestCommittedUSN (None without one: the next incremental run reads everything).
        Otherwise (timestamps, or OpenLDAP without the syncprov overlay) this host's clock less
        CLOCK_MARGIN.
        """
        attribute = self.mapping["modified"][0]
        if attribute.lower() == "entrycsn" and (suffix := self.naming_context):
            values = self._base_entry(suffix, ["contextCSN"]).get("contextCSN") or []
            if values:
                return min(values), None
        if attribute.lower() == "usnchanged":
            usn = self._base_entry("", ["highestCommittedUSN"]).get("highestCommittedUSN")
            if usn:
                return str(usn[0] if isinstance(usn, list) else usn), None
        if attribute.lower() == "usnchanged":  # no clock can stand in for a USN
            return None, "the directory publishes no highestCommittedUSN; the next incremental run reads all"
        warning = None
        if attribute.lower() == "entrycsn":
            warning = (
                "the directory publishes no contextCSN (load the syncprov overlay); the high-water "
                f"mark is this host's clock less {CLOCK_MARGIN.seconds // 60} minutes"
            )
        return clock_mark(attribute), warning

    def load_password_policies(self) -> None:
        """Read every ppolicy entry's lockout duration (one search of the suffix), before the
        users, so that locks can be classified as they are read."""
        if not self.mapping["locked"]:
            return
        base = self.naming_context or self.settings.user_base
        attributes = ["pwdLockout", "pwdLockoutDuration"]
        for item in self.paged_search(base, "(objectClass=pwdPolicy)", attributes, counted=False):
            attrs = item["attributes"]
            lockout = str(first(attrs, ["pwdLockout"]) or "FALSE").upper() == "TRUE"
            duration = first(attrs, ["pwdLockoutDuration"])
            self.entries.lockout_seconds[norm_dn(item["dn"])] = int(duration or 0) if lockout else 0

    def users(self, since: str | None = None) -> Iterator[DirectoryEntry]:
        """Every user (or, with ``since``, those changed at or after that timestamp)."""
        flt = self.user_filter
        if since:
            flt = changed_since(flt, self.mapping["modified"][0], since)
        for item in self.paged_search(self.settings.user_base, flt, self.user_attributes()):
            entry = self.to_entry(item)
            if entry is not None:
                yield entry

    def groups(self, since: str | None = None) -> Iterator[DirectoryGroup]:
        """Every group under ``group_base`` (default: ``user_base``) with its direct members."""
        base = self.settings.group_base or self.settings.user_base
        flt = self.group_filter
        modified = self.mapping["modified"]
        if since:
            flt = changed_since(flt, modified[0], since)
        member_attr = self.mapping["group_member"]
        name_attr = self.mapping["group_name"]
        for item in self.paged_search(base, flt, [*member_attr, *name_attr, *modified]):
            attrs = item["attributes"]
            members = [m for a in member_attr for m in attrs.get(a, ())]
            yield DirectoryGroup(
                dn=item["dn"],
                name=first(attrs, name_attr) or "",
                members=members,
                modified=first(attrs, modified),
            )

    def to_entry(self, item: dict) -> DirectoryEntry | None:
        """Map one user search result (see :meth:`EntryReader.to_entry`)."""
        return self.entries.to_entry(item)


def _server(s: LdapSettings) -> ldap3.Server:
    tls = None
    if s.url.startswith("ldaps://") or s.start_tls:
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if s.tls_verify else ssl.CERT_NONE, ca_certs_file=s.ca_file or None
        )
    try:
        return ldap3.Server(
            s.url,
            use_ssl=s.url.startswith("ldaps://"),
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=s.timeout_seconds,
        )
    except LDAPException as exc:
        raise DirectoryUnavailable(f"invalid ldap.url {s.url!r}: {exc}") from exc


def _describe(result: dict | None) -> str:
    if not result:
        return "no answer"
    text = f"{result.get('description')} (code {result.get('result')})"
    if result.get("message"):
        text += f": {result['message']}"
    return text


def _exc_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def check_password(settings: LdapSettings, dn: str, password: str) -> bool:
    """Whether ``dn`` binds with ``password`` (an admin's directory sign-in): False for wrong
    credentials (and always for an empty password, which LDAP would take as an anonymous bind);
    :class:`DirectoryUnavailable` when the directory cannot be reached (never "wrong password")."""
    if not dn or not password:
        return False
    conn = ldap3.Connection(
        _server(settings),
        user=dn,
        password=password,
        auto_bind=ldap3.AUTO_BIND_NONE,
        raise_exceptions=False,
        read_only=True,
        receive_timeout=settings.timeout_seconds,
    )
    try:
        conn.open()
        if settings.start_tls and not settings.url.startswith("ldaps://") and not conn.start_tls():
            raise DirectoryUnavailable(f"StartTLS with {settings.url} failed: {_describe(conn.result)}")
        if conn.bind():
            return True
        if (conn.result or {}).get("result") == 49:  # invalidCredentials
            return False
        raise DirectoryUnavailable(f"sign-in bind to {settings.url} failed: {_describe(conn.result)}")
    except LDAPException as exc:
        raise DirectoryUnavailable(
            f"cannot reach the directory at {settings.url}: {_exc_text(exc)}"
        ) from None
    finally:
        with contextlib.suppress(LDAPException):
            conn.unbind()
