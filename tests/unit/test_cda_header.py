"""The CDA header reader on the ANS example documents (read in place, never copied here)."""

from __future__ import annotations

import pytest

from dmp_xds.dmp.cda.header import CdaError, InstanceId, read_cda_header
from dmp_xds.xds.xml import UnsafeXmlError
from factories import ANS_EXAMPLES, ans_example


def test_certificate_header_fields() -> None:
    header = read_cda_header(ans_example("CSE-CS8_2024.01.xml"))
    assert header.document_id == InstanceId("1.2.250.1.213.1.1.1.5.1.2024.1.1")
    assert header.unique_id == "1.2.250.1.213.1.1.1.5.1.2024.1.1"
    assert header.title.startswith("PREMIER CERTIFICAT DE SANTE")
    assert (header.code.code, header.code.code_system) == ("CERT_DECL", "1.2.250.1.213.1.1.4.12")
    assert header.effective_time == "20210503114500+0100"
    assert (header.confidentiality_code.code, header.confidentiality_code.code_system) == (
        "N",
        "2.16.840.1.113883.5.25",
    )
    assert header.language_code == "fr-FR"
    assert header.patient_ins == InstanceId("1.2.250.1.213.1.4.8", "223042545611404")
    assert header.patient.birth_time == "20230425" and header.patient.gender == "F"
    assert header.patient.name.family == "DECOURCY"
    (author,) = header.authors
    assert author.ids == (InstanceId("1.2.250.1.71.4.2.1", "801234567897"),)
    assert author.specialty.code == "G15_10/SM40"
    assert (author.person.family, author.person.given) == ("MULLER", ("Charles",))
    assert author.organization.name == "Clinique du Belvédère"
    assert author.organization.ids == (InstanceId("1.2.250.1.71.4.2.2", "1120456789"),)
    assert header.legal_authenticator.ids == author.ids
    (event,) = header.service_events
    assert event.code.code == "11429006" and event.low == "20210503114500+0100" and event.high is None
    assert header.practice_setting.code == "ETABLISSEMENT"
    assert header.healthcare_facility_type.code == "SA03"
    assert header.structured


def test_unstructured_pdf_document() -> None:
    header = read_cda_header(ans_example("DOC_NON_STRUCTURE_CDA-R2-N1.xml"))
    assert header.non_xml_body_media_type == "application/pdf"
    assert not header.structured
    assert header.code.code == "11502-2"
    assert header.patient_ins.root == "1.2.250.1.213.1.4.10"  # a test NIR


def test_self_presenting_document_is_read_from_its_embedded_cda() -> None:
    header = read_cda_header(ans_example("BIO-CR-BIO_2021.01_Auto-Presentable.xml"))
    assert header.unique_id == "1.2.250.1.213.1.1.1.55.2021.1.1"
    assert header.code.code == "11502-2"


@pytest.mark.parametrize("name", sorted(p.name for p in ANS_EXAMPLES.glob("*.xml")) or ["(no examples)"])
def test_every_example_gives_the_xds_essentials(name: str) -> None:
    header = read_cda_header(ans_example(name))
    assert header.document_id.root
    assert header.code is not None and header.code.code_system
    assert header.confidentiality_code is not None
    assert header.effective_time
    assert header.patient_ins is not None
    assert header.authors and (header.authors[0].ids or header.authors[0].device)


def test_not_a_cda() -> None:
    with pytest.raises(CdaError):
        read_cda_header(b"<html xmlns='http://www.w3.org/1999/xhtml'/>")
    with pytest.raises(CdaError):
        read_cda_header(b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>")  # no id


def test_dtd_is_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        read_cda_header(b'<!DOCTYPE x [<!ENTITY e "x">]><ClinicalDocument xmlns="urn:hl7-org:v3"/>')
