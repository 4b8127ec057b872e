"""Parametrages: the professional's card data and practice situations."""

from __future__ import annotations

from dataclasses import dataclass

from dmp_xds.security.vihf import Principal
from dmp_xds.services.professional_site.common import (
    require_professional,
)


@dataclass(frozen=True)
class PracticeSituation:
    structure_id: str
    organization: str


@dataclass(frozen=True)
class CardSettings:
    """Parametrages: what the card says of its holder. This server has no directory (RPPS/FINESS)
    and keeps no preference: the practice situations are the sign-in's structure and any the
    certificate names, the first one the default."""

    national_id: str
    given_name: str
    family_name: str
    profession: str
    specialties: tuple[str, ...]
    card_type: str
    subject: str
    fingerprint: str
    situations: tuple[PracticeSituation, ...]
    default_situation: PracticeSituation | None


def card_settings(principal: Principal) -> CardSettings:
    require_professional(principal)
    card = principal.signer
    # An IGC-Santé card's certificate names its holder, not where they work (no O, no OU): the
    # structure is the one the sign-in acts for (the VIHF's Identifiant_Structure on the SOAP
    # side), then any the certificate names. Without a directory, that is all there is to offer.
    named = [PracticeSituation(principal.structure_id, "")] if principal.structure_id else []
    if (card.structure_id or card.organization) and card.structure_id != principal.structure_id:
        named.append(PracticeSituation(card.structure_id, card.organization))
    situations = tuple(named)
    return CardSettings(
        card.national_id,
        card.given_name,
        card.family_name,
        card.profession_code or principal.profession_code,
        card.specialties or ((principal.specialty,) if principal.specialty else ()),
        card.card_type or principal.card_type,
        card.subject,
        card.fingerprint,
        situations,
        situations[0] if situations else None,
    )
