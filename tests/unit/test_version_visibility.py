"""Every version of a document is seen as its latest version says, as pure decisions: the
DMP policy (security.policy) through the caller's DocumentAccess (security.gate), the rule in
DocumentAccess.shows and transactions.rights.hidden_versions, and a query answer restricted
by it (transactions.iti18.restrict)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from dmp_xds.dmp.policy import Authorization, RecordState
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder
from dmp_xds.security.vihf import Principal
from dmp_xds.services.gate import DocumentAccess, with_canonical_patient
from dmp_xds.services.gate import document_access as access_to_record
from dmp_xds.services.iti18 import Outside, restrict
from dmp_xds.services.rights import hidden_versions
from dmp_xds.storage.queries import QueryRows
from dmp_xds.xds.model import Author, Code, DocumentEntry

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
OTHER_PATIENT = "1750599123456^^^&1.2.250.1.213.1.4.10&ISO"
AUTHOR, ATTENDING, COLLEAGUE = "810001234565", "810002345675", "810003456786"
HOLDER = Holder("professional", "", "", "", "", "", "", "CN=x", "00")
NORMAL = Code("N", "2.16.840.1.113883.5.25")
MASKED = Code(sv.MASKED_FROM_PROFESSIONALS[1], sv.MASKED_FROM_PROFESSIONALS[0])
NOT_TOLD = Code(sv.INVISIBLE_TO_PATIENT[1], sv.INVISIBLE_TO_PATIENT[0])


def professional(user_id: str) -> Principal:
    return Principal(
        "professional",
        user_id,
        "Dr X",
        ("10",),
        "1990000099",
        "SA07",
        sv.ACCESS_NORMAL,
        "",
        PATIENT,
        "lps 1",
        "",
        "_id",
        HOLDER,
    )


def the_patient() -> Principal:
    return Principal(
        "patient",
        PATIENT,
        "patient",
        (sv.PATIENT_ROLE,),
        "",
        "",
        sv.ACCESS_NORMAL,
        "",
        PATIENT,
        "portal 1",
        "",
        "_id",
        HOLDER,
    )


RECORD = RecordState(
    PATIENT,
    "open",
    True,
    False,
    authorizations=(
        Authorization("professional", AUTHOR, NOW + dt.timedelta(days=365)),
        Authorization("professional", COLLEAGUE, NOW + dt.timedelta(days=365)),
        Authorization("attending", ATTENDING, NOW + dt.timedelta(days=365)),
    ),
)


def access(principal: Principal) -> DocumentAccess:
    return access_to_record(principal, RECORD, NOW)


def version(number: int, *codes: Code) -> DocumentEntry:
    return DocumentEntry(
        f"urn:uuid:00000000-0000-0000-0000-00000000000{number}",
        unique_id="1.2.3.4",
        patient_id=PATIENT,
        logical_id="urn:uuid:00000000-0000-0000-0000-000000000001",
        version=str(number),
        confidentiality_codes=[NORMAL, *codes],
        authors=[Author(person=f"{AUTHOR}^MARTIN^Marie")],
    )


V1, V2_MASKED, V3_UNMASKED = version(1), version(2, MASKED), version(3)
PATIENTS = {V1.entry_uuid: PATIENT, V2_MASKED.entry_uuid: PATIENT}


def test_masked_in_its_latest_version_every_version_is_hidden_from_a_colleague() -> None:
    latest = {V1.entry_uuid: V2_MASKED, V2_MASKED.entry_uuid: V2_MASKED}
    assert access(professional(COLLEAGUE)).visible(V1)  # alone, version 1 is not masked
    assert hidden_versions(access(professional(COLLEAGUE)), PATIENTS, latest) == set(PATIENTS)
    for sees_it in (professional(AUTHOR), professional(ATTENDING), the_patient()):
        assert hidden_versions(access(sees_it), PATIENTS, latest) == set(), sees_it.user_id


def test_unmasked_in_its_latest_version_every_version_is_visible_again() -> None:
    patients = {**PATIENTS, V3_UNMASKED.entry_uuid: PATIENT}
    latest = dict.fromkeys(patients, V3_UNMASKED)
    assert not access(professional(COLLEAGUE)).visible(V2_MASKED)  # alone, version 2 is masked
    assert hidden_versions(access(professional(COLLEAGUE)), patients, latest) == set()


def test_invisible_to_the_patient_in_its_latest_version_hides_the_older_ones_from_them() -> None:
    not_told = replace(V2_MASKED, confidentiality_codes=[NORMAL, NOT_TOLD])
    latest = dict.fromkeys(PATIENTS, not_told)
    assert hidden_versions(access(the_patient()), PATIENTS, latest) == set(PATIENTS)
    assert hidden_versions(access(professional(COLLEAGUE)), PATIENTS, latest) == set()


def test_no_latest_version_or_another_patient_hides_it() -> None:
    colleague = access(professional(COLLEAGUE))
    assert not colleague.shows(PATIENT, None)  # deleted meanwhile
    assert not colleague.shows(OTHER_PATIENT, V3_UNMASKED)
    assert not colleague.shows(PATIENT, replace(V3_UNMASKED, patient_id=OTHER_PATIENT))
    assert colleague.shows(PATIENT, V3_UNMASKED)
    no_record = access_to_record(professional(AUTHOR), None, NOW)
    assert not no_record.shows(PATIENT, V3_UNMASKED)


def test_a_query_answer_judges_older_versions_and_association_ends_by_the_latest() -> None:
    """GetDocuments of version 1 and GetAssociations naming it, for a colleague, once masked."""
    colleague = access(professional(COLLEAGUE))
    link = ("urn:uuid:link", "urn:uuid:ss", V1.entry_uuid, "Approved", {})
    rows = QueryRows(documents=[(V1.entry_uuid, PATIENT, "Deprecated", {})], associations=[link])
    outside = Outside({"urn:uuid:ss": ("SubmissionSet", PATIENT)}, {V1.entry_uuid: V2_MASKED})
    assert restrict(rows, colleague, outside) == QueryRows()
    only_link = QueryRows(associations=[link])
    ends = Outside(
        {"urn:uuid:ss": ("SubmissionSet", PATIENT), V1.entry_uuid: ("DocumentEntry", PATIENT)},
        {V1.entry_uuid: V2_MASKED},
    )
    assert restrict(only_link, colleague, ends) == QueryRows()
    unmasked = Outside(ends.ends, {V1.entry_uuid: V3_UNMASKED})
    assert restrict(only_link, colleague, unmasked) == only_link


def test_an_anchored_answer_loses_what_only_a_hidden_document_brought() -> None:
    """GetRelatedDocuments of a visible document whose only relation is to a hidden one: the
    answer is that of a document with no relation (empty), not the document alone."""
    colleague = access(professional(COLLEAGUE))
    visible = replace(V3_UNMASKED, entry_uuid="urn:uuid:transform", logical_id="urn:uuid:transform")
    relation = ("urn:uuid:xfrm", visible.entry_uuid, V1.entry_uuid, "Approved", {})
    rows = QueryRows(documents=[(visible.entry_uuid, PATIENT, "Approved", {})], associations=[relation])
    outside = Outside(
        {V1.entry_uuid: ("DocumentEntry", PATIENT)}, {V1.entry_uuid: V2_MASKED, visible.entry_uuid: visible}
    )
    assert restrict(rows, colleague, outside) == QueryRows(documents=rows.documents)  # not anchored
    assert restrict(rows, colleague, outside, anchored=True) == QueryRows()
    # GetFoldersForDocument: the folder comes through a membership link, not returned itself.
    member = ("urn:uuid:member", "urn:uuid:folder", V1.entry_uuid, "Approved", {})
    folders = QueryRows(folders=[("urn:uuid:folder", PATIENT, "Approved", {})], links=[member])
    assert restrict(folders, colleague, outside, anchored=True) == QueryRows()
    shown = Outside(outside.ends, {V1.entry_uuid: V3_UNMASKED})
    assert restrict(folders, colleague, shown, anchored=True) == QueryRows(folders=folders.folders)


def test_the_vihf_patient_in_the_dmp_form_is_the_ins_alone() -> None:
    """The VIHF names its patient `INS^^^&OID&ISO^NH`: from authentication on, the INS alone."""
    for resource_id in (PATIENT + "^NH", PATIENT + "^NH^^20100907"):
        principal = replace(professional(AUTHOR), patient_id=resource_id)
        assert with_canonical_patient(principal).patient_id == PATIENT
    malformed = replace(professional(AUTHOR), patient_id=PATIENT + "^PI")
    assert with_canonical_patient(malformed).patient_id == PATIENT + "^PI"
