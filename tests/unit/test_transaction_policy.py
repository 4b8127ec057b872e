"""Every XDS action an endpoint answers has its line in the security gate's policy, so that an
authenticated server applies the right right (and traces the right action) to each."""

from __future__ import annotations

from dmp_xds.dmp.policy import Action
from dmp_xds.services.pipeline import TRANSACTION_POLICY
from dmp_xds.storage import trail as t
from dmp_xds.transport.soap.service import ENDPOINT_ACTIONS
from dmp_xds.xds import vocabulary as v


def test_every_xds_action_has_a_policy() -> None:
    xds_actions = set(ENDPOINT_ACTIONS["registry"]) | set(ENDPOINT_ACTIONS["repository"])
    assert xds_actions - set(TRANSACTION_POLICY) == set()


def test_delete_and_update_are_their_own_rights() -> None:
    assert TRANSACTION_POLICY[v.ACTION_ITI62] == (Action.DELETE, t.DELETE)
    assert TRANSACTION_POLICY[v.ACTION_ITI57] == (Action.UPDATE, t.UPDATE)
