"""The pure parts of the patient's space: the web principal under the policy, the metadata of a
patient-authored document under the IHE rules and the CI-SIS profile, what a page shows of a
DocumentEntry, the list's query parameters, the notes."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from dmp_xds.dmp.ins import nir_key
from dmp_xds.dmp.policy import (
    Action,
    DocumentFacts,
    RecordState,
    document_action,
    document_visible,
    list_authorizations,
    record_access,
)
from dmp_xds.dmp.validation.validators import Validators
from dmp_xds.dmp.validation.valuesets import load_cisis_value_sets
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.web_principal import patient_principal
from dmp_xds.services import patient_seeds as seeds
from dmp_xds.services import patient_space as ps
from dmp_xds.storage.queries import parse_stored_query
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Author, Code
from dmp_xds.xds.model.ids import assign_entry_uuids
from dmp_xds.xds.validation.xds import Transaction
from factories import make_document_entry

ANS_VALUE_SETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "ans-testcontenucda" / "jeuxDeValeurs"
PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
PARENT = "2700599123456^^^&1.2.250.1.213.1.4.10&ISO"
NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
RECORD = RecordState(PATIENT, "open", True, True, representatives=(PARENT,))


def facts(*codes: tuple[str, str]) -> DocumentFacts:
    return DocumentFacts.of("1.2.3", codes, ["899999999999^MARTIN"])


def test_the_web_patient_is_a_patient_without_vihf() -> None:
    me = patient_principal(PATIENT, "Marie Dupont")
    assert me.is_patient and not me.is_professional and me.vouched_by == ""
    assert me.authentication_mode == sv.AUTHENTICATION_WEB and not me.is_direct and not me.is_indirect
    assert record_access(me, RECORD, Action.SEARCH, NOW).allowed
    assert list_authorizations(me, RECORD, NOW).allowed
    assert document_action(me, RECORD, facts(), Action.MASK, NOW).allowed
    assert document_action(me, RECORD, facts(), Action.DELETE, NOW).allowed
    assert not document_visible(me, RECORD, facts(sv.INVISIBLE_TO_PATIENT), NOW).allowed
    assert not record_access(
        me, replace(RECORD, patient_id="1750599123456^^^&1.2.250.1.213.1.4.10&ISO"), Action.SEARCH, NOW
    ).allowed


def test_a_web_representative_speaks_for_the_declared_minor_only() -> None:
    parent = patient_principal(PATIENT, representative_id=PARENT)
    assert parent.is_representative and parent.user_id == PARENT and parent.patient_id == PATIENT
    assert record_access(parent, RECORD, Action.SEARCH, NOW).allowed
    assert not document_visible(parent, RECORD, facts(sv.INVISIBLE_TO_REPRESENTATIVES), NOW).allowed
    assert not record_access(parent, replace(RECORD, representatives=()), Action.SEARCH, NOW).allowed


@pytest.mark.parametrize("mime_type", ["application/pdf", "image/jpeg", "text/plain"])
def test_a_patient_authored_document_passes_the_ihe_rules_and_the_cisis_profile(mime_type: str) -> None:
    nir = "2840599123456"
    patient = f"{nir}{nir_key(nir):02d}^^^&1.2.250.1.213.1.4.8&ISO"  # an INS-NIR, with its key
    author = seeds.patient_author(patient, "DUPONT", "Marie")
    submission = seeds.patient_document(patient, author, "Mes allergies", "DOCPAT01", mime_type, "20261130")
    entry = submission.documents[0]
    entry.hash, entry.size, entry.repository_unique_id = "0" * 40, 10, "1.2.250.1.999.1.2"
    validators = Validators(value_sets=load_cisis_value_sets(ANS_VALUE_SETS))
    errors = validators.metadata_errors(submission, Transaction.ITI41)
    assert [e.context for e in errors if e.is_error] == []
    assert (entry.class_code.code, entry.format_code.code[:14]) == (
        "11",
        "urn:ihe:iti:xd" if mime_type != "image/jpeg" else "urn:ihe:iti-fr",
    )
    assert author.person.startswith(f"{nir}{nir_key(nir):02d}^DUPONT^Marie^")
    assert assign_entry_uuids(submission) is not None


def test_png_has_no_cisis_format() -> None:
    """JDV_J10 lists no formatCode for PNG: the patient's PNG is refused under either profile,
    rather than registered with a format the DMP does not know."""
    with pytest.raises(ps.Refused) as refused:
        seeds.patient_document(PATIENT, Author(), "x", "DOCPAT04", "image/png", "20261130")
    assert refused.value.status == 415


def test_what_a_page_shows_of_a_document() -> None:
    entry = make_document_entry(
        confidentiality_codes=[Code("MASQUE_PS", "1.2.250.1.213.1.1.4.13")],
        status=v.STATUS_ARCHIVED,
    )
    shown = ps.summary(entry, PATIENT)
    assert (shown.title, shown.type_code, shown.created) == (
        "Compte rendu de consultation",
        "11488-4",
        "20240312093000",
    )
    assert shown.masked and shown.status == "archived" and not shown.patient_authored
    assert shown.authors[0].name == "Dr Jeanne MARTIN" and shown.authors[0].structure_id == "3750100041"
    mine = make_document_entry(authors=[seeds.patient_author(PATIENT, "DUPONT", "Marie")])
    assert ps.summary(mine, PATIENT).patient_authored


def test_the_list_is_an_iti18_find_documents() -> None:
    slots = ps._query_slots(PATIENT, ps.DocumentFilter("DOCPAT01", "2026-01-01", "2026-12-31", "Mar'tin"))
    query = parse_stored_query(v.SQ_FIND_DOCUMENTS, slots)
    assert not isinstance(query, list), query
    assert query.text(v.P_DE_PATIENT_ID) == PATIENT
    assert query.texts(v.P_DE_STATUS) == ps.LISTED_STATUSES
    assert query.texts(v.P_DE_AUTHOR_PERSON) == ("%Mar'tin%",)
    with pytest.raises(ps.Refused):
        ps._query_slots(PATIENT, ps.DocumentFilter(created_from="hier"))


def test_a_mask_is_a_new_version_and_a_deletion_a_status_change() -> None:
    entry = make_document_entry(status=v.STATUS_APPROVED, version="2", logical_id="urn:uuid:1")
    version = ps.new_version(entry, [ps.MASKED])
    assert version.documents[0].logical_id == "urn:uuid:1" and version.documents[0].confidentiality_codes == [ps.MASKED]
    assert version.associations[0].slots[v.SLOT_PREVIOUS_VERSION] == ["2"]
    deletion = ps.status_change(entry, v.STATUS_DELETED).associations[0]
    assert (deletion.association_type, deletion.target) == (v.UPDATE_AVAILABILITY_STATUS, entry.entry_uuid)
    assert deletion.slots[v.SLOT_NEW_STATUS] == [v.STATUS_DELETED]


def test_notes() -> None:
    assert (
        seeds.note_text("allergies", "  Pénicilline  \n arachide ")
        == "Mes allergies\n\nPénicilline\n arachide\n".encode()
    )
    listed = [
        replace(
            ps.summary(make_document_entry(), PATIENT),
            title="Mes allergies",
            type_code="DOCPAT01",
            patient_authored=True,
        )
    ]
    info = {i.kind: i.current for i in seeds.my_information(listed)}
    assert info["allergies"] is listed[0] and info["treatments"] is None
