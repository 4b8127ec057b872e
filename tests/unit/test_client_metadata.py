"""The metadata builder: one DocumentEntry, its SubmissionSet, HasMember/Original, from options
or from a CDA header; and the ebRIM it encodes to is accepted by our own decoder/validator."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest

from dmp_xds.tools.client.metadata import (
    DEFAULT_CLASS_CODE,
    FORMAT_CDA_PDF,
    FORMAT_MIME_TYPE_SUFFICIENT,
    build_submission,
    build_submission_from_cda,
    hl7_ts_to_dtm,
    parse_code,
)
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Code
from factories import ans_example

PATIENT = "1234567890123^^^&1.2.250.1.213.1.4.8&ISO"
OID_2_25 = re.compile(r"^2\.25\.\d+$")


def _options() -> dict[str, object]:
    return dict(
        patient_id=PATIENT,
        mime_type="text/plain",
        title="Note",
        class_code=DEFAULT_CLASS_CODE,
        type_code=Code("11488-4", "2.16.840.1.113883.6.1", "CR"),
        format_code=FORMAT_MIME_TYPE_SUFFICIENT,
        confidentiality_code=Code("N", "2.16.840.1.113883.5.25"),
        healthcare_facility_type_code=Code("SA01", "1.2.250.1.71.4.2.4"),
        practice_setting_code=Code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9"),
        author_person="801234567897^MULLER^Charles^^^DR^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
        author_institution="Clinique^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1120456789",
        source_id="1.2.3.4",
    )


def test_one_document_one_submission_set_one_has_member() -> None:
    data = b"hello\r\n"
    when = datetime(2024, 3, 12, 9, 45, tzinfo=UTC)
    submission = build_submission(data, submission_time=when, **_options())  # type: ignore[arg-type]
    (entry,) = submission.documents
    ss = submission.submission_set
    (association,) = submission.associations
    assert (entry.entry_uuid, ss.entry_uuid) == ("Document01", "SubmissionSet01")  # symbolic ids
    assert OID_2_25.match(entry.unique_id) and OID_2_25.match(ss.unique_id) and entry.unique_id != ss.unique_id
    assert entry.patient_id == ss.patient_id == entry.source_patient_id == PATIENT
    assert entry.hash == hashlib.sha1(data).hexdigest() and entry.size == len(data)
    assert entry.creation_time == ss.submission_time == "20240312094500"
    assert entry.authors[0].person.startswith("801234567897^MULLER")
    # SA01 is not in JDV_J03: the contentTypeCode is 97 "Type d'activité indifférencié"
    assert ss.source_id == "1.2.3.4" and ss.content_type_code.key() == ("97", "1.2.250.1.213.2.2")
    assert association.association_type == v.HAS_MEMBER
    assert (association.source, association.target) == (ss.entry_uuid, entry.entry_uuid)
    assert association.slots == {v.SLOT_SUBMISSION_SET_STATUS: ["Original"]}


def test_encoded_submission_passes_our_own_decoder_and_validator() -> None:
    from dmp_xds.xds.ebrim.decode import decode_submit_objects_request
    from dmp_xds.xds.ebrim.encode import encode_submit_objects_request

    submission = build_submission_from_cda(ans_example("CSE-CS8_2024.01.xml"))
    decoded = decode_submit_objects_request(encode_submit_objects_request(submission))
    assert [d.unique_id for d in decoded.documents] == ["1.2.250.1.213.1.1.1.5.1.2024.1.1"]
    assert decoded.submission_set.patient_id == "223042545611404^^^&1.2.250.1.213.1.4.8&ISO"
    assert not decoded.problems
    from dmp_xds.xds.validation.xds import Transaction, validate_submission

    assert validate_submission(decoded, Transaction.ITI41) == []


def test_from_cda_header() -> None:
    submission = build_submission_from_cda(ans_example("CSE-CS8_2024.01.xml"))
    (entry,) = submission.documents
    assert entry.unique_id == "1.2.250.1.213.1.1.1.5.1.2024.1.1"
    assert entry.mime_type == "text/xml"
    assert entry.type_code.code == "CERT_DECL"
    # classCode from the typeCode (ANS table ASS_X04): a certificate
    assert entry.class_code == Code("52", "1.2.250.1.213.1.1.4.1", "Certificat, déclaration")
    # formatCode from the CSE-CS8 templateId (ANS table ASS_A11), in JDV_J10
    assert entry.format_code == Code(
        "urn:asip:ci-sis:cse-cs8:2017", "1.2.250.1.213.1.1.4.2.282", "Certificat de santé du 8ème jour de l'enfant"
    )
    assert [c.code for c in entry.confidentiality_codes] == ["N"]
    assert entry.healthcare_facility_type_code.code == "SA03"
    assert entry.practice_setting_code.code == "ETABLISSEMENT"
    assert entry.creation_time == "20210503104500"  # +0100 moved to UTC
    assert entry.service_start_time == "20210503104500" and entry.service_stop_time is None
    assert entry.language_code == "fr-FR"
    assert [c.code for c in entry.event_codes] == ["11429006"]
    (author,) = entry.authors
    assert author.person == "801234567897^MULLER^Charles^^DR^M^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
    assert author.institutions == ["Clinique du Belvédère^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1120456789"]
    assert author.specialties == ["G15_10/SM40^Médecin - Pédiatrie (SM)^1.2.250.1.213.1.1.4.5"]
    assert entry.legal_authenticator.startswith("801234567897^MULLER")
    assert entry.source_patient_info[0] == "PID-3|223042545611404^^^&1.2.250.1.213.1.4.8&ISO"
    assert "PID-7|20230425" in entry.source_patient_info


def test_options_override_the_header_and_pid3_follows_the_patient() -> None:
    submission = build_submission_from_cda(
        ans_example("DOC_NON_STRUCTURE_CDA-R2-N1.xml"),
        patient_id=PATIENT,
        class_code=Code("10", "1.2.250.1.213.1.1.4.1"),
        title=None,
    )
    (entry,) = submission.documents
    assert entry.patient_id == PATIENT and entry.source_patient_info[0] == f"PID-3|{PATIENT}"
    assert entry.class_code.code == "10"
    assert entry.format_code == FORMAT_CDA_PDF  # nonXMLBody application/pdf
    assert entry.title[0].value == "Compte rendu d'examens biologiques"  # None = not given


def test_parse_code() -> None:
    assert parse_code("N^2.16.840.1.113883.5.25^Normal") == Code("N", "2.16.840.1.113883.5.25", "Normal")
    assert parse_code("N^2.16.840.1.113883.5.25") == Code("N", "2.16.840.1.113883.5.25", "")
    with pytest.raises(ValueError):
        parse_code("N")


@pytest.mark.parametrize(
    ("ts", "dtm"),
    [
        ("20210503114500+0100", "20210503104500"),
        ("202105030030-0200", "202105030230"),
        ("20210101003000.123+0100", "20201231233000"),
        ("20230425", "20230425"),
        ("20230425120000", "20230425120000"),
        (None, None),
    ],
)
def test_hl7_ts_to_dtm(ts: str | None, dtm: str | None) -> None:
    assert hl7_ts_to_dtm(ts) == dtm
