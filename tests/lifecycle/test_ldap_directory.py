"""Directory access: mapping (OpenLDAP and Active Directory), escaping, and reads cut short."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from accessd import clock
from accessd.config import LdapSettings
from accessd.errors import DirectoryUnavailable
from accessd.lifecycle.directory import Directory
from accessd.lifecycle.directory_mapping import changed_since, filters_for
from accessd.lifecycle.sync import run_sync
from accessd.models import Account
from tests.support.ldap import People, TestDirectory
from tests.support.lifecycle import make_settings, table_counts


def ad_directory() -> Directory:
    return Directory(
        LdapSettings(url="ldap://dc.example.test", user_base="dc=example,dc=test", flavour="active_directory")
    )


def ad_item(uac: int = 512, expires: int = 0) -> tuple[dict, uuid.UUID]:
    guid = uuid.uuid4()
    attrs = {
        "sAMAccountName": ["jdoe"],
        "employeeID": ["4711"],
        "displayName": ["Jane Doe"],
        "userAccountControl": [str(uac)],
        "accountExpires": [str(expires)],
        "uSNChanged": ["1234"],
    }
    return {
        "dn": "CN=Jane Doe,OU=Staff,DC=example,DC=test",
        "attributes": attrs,
        "raw_attributes": {"objectGUID": [guid.bytes_le]},
    }, guid


def filetime(d: dt.datetime) -> int:
    return int((d - dt.datetime(1601, 1, 1)).total_seconds() * 10_000_000)


def test_active_directory_defaults_map_guid_username_and_employee_id():
    item, guid = ad_item()
    entry = ad_directory().to_entry(item)
    assert entry.key == str(guid)
    assert entry.profile["username"] == "jdoe" and entry.profile["employee_number"] == "4711"
    assert entry.disabled_reason is None and entry.end_date is None and entry.modified == "1234"
    assert filters_for(LdapSettings(flavour="active_directory")) == (
        "(&(objectCategory=person)(objectClass=user))",
        "(objectClass=group)",
    )


def test_active_directory_account_disable_bit_is_a_departure():
    entry = ad_directory().to_entry(ad_item(uac=514)[0])
    assert entry.disabled_reason == "directory: account disabled (userAccountControl ACCOUNTDISABLE)"


def test_active_directory_account_expires_in_the_past_departs_and_in_the_future_schedules():
    past = ad_directory().to_entry(ad_item(expires=filetime(dt.datetime(2024, 3, 1)))[0])
    assert past.disabled_reason.startswith("directory: account expires 2024-03-01")
    assert past.end_date == dt.date(2024, 2, 29)
    future_day = dt.datetime.combine(clock.today() + dt.timedelta(days=20), dt.time())
    future = ad_directory().to_entry(ad_item(expires=filetime(future_day))[0])
    assert future.disabled_reason is None and future.end_date == future_day.date() - dt.timedelta(days=1)
    never = ad_directory().to_entry(ad_item(expires=0x7FFFFFFFFFFFFFFF)[0])
    assert never.end_date is None


def test_high_water_mark_filters_escape_the_value():
    flt = changed_since("(objectClass=inetOrgPerson)", "modifyTimestamp", "2026*)(uid=*")
    assert flt == r"(&(objectClass=inetOrgPerson)(modifyTimestamp>=2026\2a\29\28uid=\2a))"
    assert changed_since("(o=x)", "entryCSN", "a") == "(&(o=x)(!(entryCSN<=a)))"


def test_unknown_mapping_keys_are_rejected_with_the_known_ones_named():
    from accessd.errors import Invalid

    with pytest.raises(Invalid, match="unknown mapping keys surname"):
        Directory(LdapSettings(url="ldap://x", user_base="o=x", attributes={"surname": "sn"}))


@pytest.fixture
def own_server():
    """A private slapd for tests that stop it."""
    server = TestDirectory()
    server.start()
    yield server
    server.stop()


def _populate(server, n):
    people = People(server)
    for i in range(n):
        people.add(f"p{i}")
    return people


def test_a_read_cut_short_by_the_server_stopping_raises_instead_of_returning_part(own_server):
    people = _populate(own_server, 10)
    settings = make_settings(own_server, people, ldap={"page_size": 2}).ldap
    read = []
    with Directory(settings) as d, pytest.raises(DirectoryUnavailable, match="incomplete"):  # noqa: PT012
        for entry in d.users():
            read.append(entry)
            if len(read) == 3:
                own_server.kill()
    assert 0 < len(read) < 10


def test_a_sync_interrupted_mid_paging_fails_and_changes_nobody(own_server, db):
    people = _populate(own_server, 10)
    settings = make_settings(own_server, people, db.url, ldap={"page_size": 2}, sync={"progress_every": 1})
    assert run_sync(db, settings).counts == {"join": 10}
    for i in range(9):  # a real departure wave is waiting in the directory ...
        people.lock(people.dn(f"p{i}"))
    before = table_counts(db)

    def stop_after_first_pages(count):
        if count == 4:
            own_server.kill()

    result = run_sync(db, settings, progress=stop_after_first_pages)

    assert result.status == "failed" and "incomplete" in result.reason
    after = table_counts(db)
    assert after.pop("sync_run") == before.pop("sync_run") + 1 and after == before
    with db.session() as s:
        assert set(s.scalars(select(Account.status))) == {"active"}
    own_server.resume()
    assert run_sync(db, settings).status == "pending_approval", "once readable, the wave needs approval"
