"""The identity options of `dmp-xds dmp modify|open`, applied to the data the DMP gave."""

from __future__ import annotations

import click
import pytest

from dmp_xds.cli.dmp_lps import IDENTITY_NAMES, _changed
from dmp_xds.dmp.model import Address, Demographics, Telecom

KNOWN = Demographics(
    "VALJEAN", "", ("JEAN",), "M", "M", "19620419", (Address(("12 rue des Lilas",), "93100", "MONTREUIL"),)
)


def options(**given: object) -> dict[str, object]:
    return {name: given.get(name) for name in IDENTITY_NAMES}


def test_only_what_is_given_changes() -> None:
    assert _changed(KNOWN, options()) == KNOWN
    changed = _changed(KNOWN, options(birth_name="Champmathieu", given=("jean", "marie")))
    assert (changed.birth_name, changed.given_names, changed.usage_name) == (
        "CHAMPMATHIEU",
        ("JEAN", "MARIE"),
        "VALJEAN",
    )
    assert changed.addresses == KNOWN.addresses


def test_address_and_telecoms() -> None:
    changed = _changed(
        KNOWN,
        options(address="3 rue de la Paix; Bât. B|75002|PARIS|FRANCE", phone=("0102030405",), email=("a@b.fr",)),
    )
    assert changed.addresses == (Address(("3 rue de la Paix", "Bât. B"), "75002", "PARIS", "FRANCE"),)
    assert changed.telecoms == (Telecom("tel:0102030405"), Telecom("mailto:a@b.fr"))


def test_a_bad_birth_date_is_a_usage_error() -> None:
    with pytest.raises(click.BadParameter, match="YYYYMMDD"):
        _changed(KNOWN, options(birth_date="1962-04-19"))
