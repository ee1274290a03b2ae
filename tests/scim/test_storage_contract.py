"""The storage follows the ``scim2_server`` storage contract: the library's own test suite
(``ScimStorageContract``) run against accessd's tables, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from scim2_models import UniquenessException
from scim2_server.testing import ScimStorageContract

from accessd.scim import provider as scim_provider
from accessd.scim.roles import GroupRoles
from accessd.scim.storage import AccountStorage
from tests.scim.conftest import MAPPING

# only what accessd keeps (see accessd/scim/provider.py): the contract's users carry more
KEPT = {"userName", "displayName", "title", "active", "emails"}


class TestAccountStorage(ScimStorageContract):
    @pytest.fixture
    def provider(self):
        return scim_provider.build(max_results=1000, bulk_max_operations=1000, max_payload_bytes=1 << 20)

    @pytest.fixture
    def storage(self, db, provider):
        with db.session() as session, provider:
            yield AccountStorage(session, provider, GroupRoles(MAPPING), actor="scim:test", event_ref="t")

    def search_users(self):
        users = []
        for u in super().search_users():
            kept = {k: v for k, v in u.items() if k in KEPT}
            if "emails" in kept:  # one address, a work one
                kept["emails"] = [{"value": e["value"], "type": "work"} for e in kept["emails"]][:1]
            if scim_provider.ENTERPRISE in u:
                kept[scim_provider.ENTERPRISE] = u[scim_provider.ENTERPRISE]
            users.append(kept)
        return users

    def test_update_frees_the_former_unique_values(self, storage, user_type, user_model):
        """Deliberately unlike the contract: a renamed user keeps the subject id it was created
        with (its key in decisions and audit), so a new user cannot take the old userName as its
        subject id -- 409, saying why -- while any other new userName is fine."""
        (user,) = self.create_users(storage, user_type, user_model, "bjensen")
        user.user_name = "babs"
        storage.update(user_type, user)

        with pytest.raises(UniquenessException, match="subject id"):
            self.create_users(storage, user_type, user_model, "bjensen")
        self.create_users(storage, user_type, user_model, "bjensen2")
