"""``scim.*`` settings: the group-role mapping and the limits are checked at start."""

from __future__ import annotations

import pytest

from accessd.config import load_settings


@pytest.mark.parametrize(
    ("scim", "problem"),
    [
        (
            {"group_roles": {"Billing": [1]}},
            "scim.group_roles: 'Billing' must map to a role or a list of roles",
        ),
        (
            {"group_roles": {"Billing": [" "]}},
            "scim.group_roles: 'Billing' must map to a role or a list of roles",
        ),
        ({"group_roles": ["Billing"]}, "scim.group_roles: must be a table of group name = [roles]"),
        ({"max_results": 0}, "scim.max_results: must be positive"),
        ({"bulk_max_operations": -1}, "scim.bulk_max_operations: must be positive"),
    ],
)
def test_bad_scim_settings_are_named(scim, problem):
    assert problem in load_settings(env={}, overrides={"scim": scim}).validate()


def test_the_mapping_comes_from_the_environment_as_json():
    env = {"ACCESSD_SCIM_GROUP_ROLES": '{"Billing": ["billing"], "Front desk": "reception"}'}
    settings = load_settings(env=env)
    assert settings.scim.group_roles == {"Billing": ["billing"], "Front desk": "reception"}
    assert not [p for p in settings.validate() if p.startswith("scim")]
