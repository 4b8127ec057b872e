"""The ANS schematrons on the 94 ANS examples, through the CDA layer, and their setting."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.config import ConfigError, Settings, load_settings
from dmp_xds.dmp.validation.ans_schematrons import (
    VOLET_TABLE_FILE,
    AnsSchematrons,
    load_ans_schematrons,
    read_volet_table,
    volet_schematron,
)
from dmp_xds.dmp.validation.cda import CdaPolicy, CdaValidator, load_schema, saxon_document
from dmp_xds.dmp.validation.schematron import SchematronError, parse_document, parse_file
from dmp_xds.dmp.validation.validators import load_validators
from dmp_xds.dmp.validation.valuesets import DATA_DIR, load_cisis_value_sets
from dmp_xds.xds.errors import ErrorCode, Severity
from dmp_xds.xds.xml import parse_bytes

ANS = Path(__file__).resolve().parents[2] / ".." / "shared" / "ans-testcontenucda"
SCHEMATRONS = ANS / "schematrons"
EXAMPLES = sorted((ANS / "ExemplesCDA").glob("*.xml"))
NS = "{urn:hl7-org:v3}"

# ANS's own example breaks ANS's structuration minimale: the patient's name carries a family
# name with qualifier SP (spouse); the CI-SIS allows only BR (birth name) and CL (used name).
FAILS_STRUCTURATION_MINIMALE = {
    "eDISP-MED_2024.01.xml": (
        "ASIP-STRUCT-MIN-StrucMin.sch",
        "d2485e87-false-d3093e0",
        "/cda:ClinicalDocument[1]/cda:recordTarget[1]/cda:patientRole[1]/cda:patient[1]/cda:name[1]",
        'Seuls les qualifiers "BR" pour le nom de famille, ou "CL" pour le nom utilisé',
    ),
}
# ANS's own examples break ANS's CI-SIS_ModelesDeContenusCDA.sch: the author of a body entry
# carries a "SCH" specialty (G15_10/SCH10, G15_10/SCH16), which the specialty code system
# deprecated on 2024-12-13 and the kit's JDV_J01 (dateMaj 20241213120000) no longer lists.
MODELES = "CI-SIS_ModelesDeContenusCDA.sch"
FAILS_MODELES_DE_CONTENUS = {
    "CANCER-FRCP_2022.01_Appareil.xml": "G15_10/SCH10",
    "CANCER-FRCP_2022.01_Transversale.xml": "G15_10/SCH10",
    "TLM-DA_2022.01_TCG.xml": "G15_10/SCH16",
    "TLM-DA_2022.01_TCG_anamnèse-non-structurée.xml": "G15_10/SCH16",
    "TLM-DA_2022.01_TE1_anamnèse-non-structurée.xml": "G15_10/SCH16",
}
# The kit ships these volet schematrons with includes that are not in the kit (nor in ANS's
# repository): they cannot be compiled, the document gets a warning and the profiles only.
# (CSE-CS8 and OBP-SAP name theirs with another case than the kit's files: they are read as on
# the Windows machines ANS writes the kit on, see test_schematron.py.)
KIT_VOLET_WITH_MISSING_INCLUDE = {
    "BIO-CR-BIO_2023.01_Electrophorese.xml": "BIO-CR-BIO_2023.01/Entete/Entete_CR-BIO.sch",
    "CARD-F-PRC-TAP_2022.01.xml": "E_AllergiesAndHypersensibilites_CARD-F-PRC-TAP.sch",
    "CNAM-HR_2021.01.xml": "S_CommentaireNonCodee-CISIS.sch",
    "CNAM-HR_2021.01_sans-info.xml": "S_CommentaireNonCodee-CISIS.sch",
}
PROFILES = ["ASIP-STRUCT-MIN-StrucMin.sch", "IHE.sch", MODELES, "CI-SIS_Modeles_ANS.sch"]
# No volet schematron: unstructured documents (nonXMLBody, templateId 1.3.6.1.4.1.19376.1.2.20),
# the "modèles de contenus" sampler, and BIO-CR-BIO documents whose volet templateId has no
# version (extension), which the table cannot tell apart.
PROFILE_ONLY = {
    "01_Modèles_contenus_CDA.xml",
    "BIO-CR-BIO_2021.01_CDA-R2-Niveau-1.xml",
    "DOC_NON_STRUCTURE_CDA-R2-N1.xml",
    "IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml",
    "TLM-CR_2022.01.xml",
    "BIO-CR-BIO_2024.01_TSH_1.xml",
    "BIO-CR-BIO_2024.01_TSH_2.xml",
    "BIO-CR-BIO_2021.01_Auto-Presentable.xml",
    "BIO-CR-BIO_2021.01_Auto-Presentable_avec-image.xml",
    "BIO-CR-BIO_2021.01_CR-2nde-intention.xml",
    "BIO-CR-BIO_2021.01_Electrophorese.xml",
    "BIO-CR-BIO_2021.01_Microbiologie_V1.xml",
    "BIO-CR-BIO_2021.01_Microbiologie_V2.xml",
} | set(KIT_VOLET_WITH_MISSING_INCLUDE)
ANEST = ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml"


@pytest.fixture(scope="module")
def ans() -> AnsSchematrons:
    return load_ans_schematrons(SCHEMATRONS)


@pytest.fixture(scope="module")
def cda(ans: AnsSchematrons) -> CdaValidator:
    value_sets = load_cisis_value_sets(ANS / "jeuxDeValeurs")
    return CdaValidator(
        load_schema(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"), value_sets, CdaPolicy.REJECT, ans
    )


def template_ids(data: bytes) -> list[tuple[str, str | None]]:
    root = etree.fromstring(data)
    document = root if root.tag == f"{NS}ClinicalDocument" else next(root.iter(f"{NS}ClinicalDocument"))
    return [(t.get("root", ""), t.get("extension")) for t in document.findall(f"{NS}templateId")]


def test_the_structuration_minimale_compiles_with_one_rule_left_out(ans: AnsSchematrons) -> None:
    # ANS's ART-DECOR export names a JDV_J07 vocabulary file it does not publish; our own header
    # check tests ClinicalDocument/code against JDV_J07.
    (skipped,) = ans.profile.skipped
    assert "voc-1.2.250.1.213.1.1.5.471-DYNAMIC.xml" in skipped


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_ans_example_against_the_ans_schematrons(ans: AnsSchematrons, path: Path) -> None:
    data = path.read_bytes()
    ran, findings = ans.validate(data.decode("utf-8-sig"), template_ids(data))
    volet = path.name.replace("IMG_CR_IMG", "IMG-CR-IMG").replace("eP-MED", "EP-MED")
    if path.name in PROFILE_ONLY:
        assert ran == PROFILES
    else:  # the volet and version of its file name
        assert ran[:-1] == PROFILES and volet.startswith(ran[-1].removeprefix("CI-SIS_").removesuffix(".sch"))
    if path.name in FAILS_MODELES_DE_CONTENUS:
        (finding,) = findings
        assert (finding.schema, finding.pattern, finding.rule, finding.is_warning) == (
            MODELES,
            "JDV_assignedAuthorCode",
            "cda:author/cda:assignedAuthor/cda:code",
            False,
        )
        assert "/cda:entry[" in finding.location  # a body entry's author, not the header's
        assert finding.location.endswith("/cda:author[1]/cda:assignedAuthor[1]/cda:code[1]")
        assert f"[{FAILS_MODELES_DE_CONTENUS[path.name]}:" in finding.message
        assert "JDV_J01_XdsAuthorSpecialty_CISIS.xml" in finding.message
    elif path.name in FAILS_STRUCTURATION_MINIMALE:
        schema, rule, location, message = FAILS_STRUCTURATION_MINIMALE[path.name]
        (finding,) = findings
        assert (finding.schema, finding.rule, finding.location, finding.is_warning) == (schema, rule, location, False)
        assert message in finding.message
    elif path.name in KIT_VOLET_WITH_MISSING_INCLUDE:
        (finding,) = findings
        assert finding.is_warning and KIT_VOLET_WITH_MISSING_INCLUDE[path.name] in finding.message
    else:
        assert findings == []


def test_the_body_profiles_compile_and_check_the_templates_they_know(ans: AnsSchematrons) -> None:
    # IHE.sch includes E_directiveAnticipee_int.sch, which the kit names E_directiveanticipee_int.sch.
    assert [p.name for p in ans.body_profiles] == PROFILES[1:]
    assert all(p.skipped == () for p in ans.body_profiles)
    # An IHE "Problem Concern Entry" act without its statusCode: IHE.sch says so.
    data = (ANS / "ExemplesCDA" / "IPS-FR_2024.01.xml").read_bytes()
    ihe = next(p for p in ans.body_profiles if p.name == "IHE.sch")
    assert ihe.validate(data.decode("utf-8-sig")) == []
    root = etree.fromstring(data)
    concern = next(
        e
        for e in root.iter(f"{NS}act")
        if any(t.get("root") == "1.3.6.1.4.1.19376.1.5.3.1.4.5.2" for t in e.findall(f"{NS}templateId"))
    )
    concern.remove(concern.find(f"{NS}statusCode"))
    findings = ihe.validate(etree.tostring(root, encoding="unicode"))
    assert findings and all(f.schema == "IHE.sch" and not f.is_warning for f in findings)
    assert any("statusCode" in f.message for f in findings), [f.message for f in findings]


def test_checks_reading_a_value_set_the_kit_lacks_are_left_out(ans: AnsSchematrons) -> None:
    # Saxon would stop the run (or find every code outside an empty value set): each is listed.
    for name, file in (
        ("CI-SIS_CANCER-D2LM-FIN_2022.01.sch", "../jeuxDeValeurs/JDV_BilanDiagnostic_CISIS.xml"),
        ("CI-SIS_CSE-CS8_2022.01.sch", "../jeuxDeValeurs/JDV_HL7_Condition_ver_status_CISIS.xml"),
    ):
        volet = ans.volet(name)
        assert not isinstance(volet, SchematronError)
        (skipped,) = volet.skipped
        assert skipped.endswith(f"needs {file}, which does not exist")
    for name in ("CI-SIS_BIO-CR-BIO_2023.01.sch", "CI-SIS_CARD-F-PRC-TAP_2022.01.sch", "CI-SIS_CNAM-HR_2021.01.sch"):
        assert isinstance(ans.volet(name), SchematronError)  # includes the kit does not have, in any case


def test_the_volet_table_names_kit_files_and_needs_the_version() -> None:
    table = read_volet_table(DATA_DIR / VOLET_TABLE_FILE)
    assert all((SCHEMATRONS / name).is_file() for name in table.values())
    assert volet_schematron(table, [("1.2.250.1.213.1.1.1.55", "2024.01")]) == "CI-SIS_BIO-CR-BIO_2024.01.sch"
    assert volet_schematron(table, [("1.2.250.1.213.1.1.1.55", None)]) is None
    assert volet_schematron(table, [("1.2.250.1.213.1.1.1.55", "2099.01")]) is None


def test_a_broken_header_is_refused_naming_the_rule_and_the_location(cda: CdaValidator) -> None:
    data = ANEST.read_bytes().replace(b'<realmCode code="FR"/>', b"", 1)
    errors = cda.validate(data)
    schematron = [e for e in errors if "ANS schematron" in e.context]
    assert schematron and all(e.code is ErrorCode.REPOSITORY_METADATA_ERROR and e.is_error for e in schematron)
    assert any(
        "ASIP-STRUCT-MIN-StrucMin.sch, rule d152e10-false-d1610e0, at /cda:ClinicalDocument[1]: "
        "(SMDS_CDAClinicalDocument): element hl7:realmCode[@code = 'FR'] is required [min 1x]." in e.context
        for e in schematron
    ), [e.context for e in schematron]
    warned = replace(cda, policy=CdaPolicy.WARN).validate(data)
    assert warned and all(e.severity is Severity.WARNING for e in warned)


def test_a_volet_rule_is_checked(cda: CdaValidator) -> None:
    # 34749-2 is in JDV_J07 (our header check accepts it) but it is not the ANEST-CR-ANEST code.
    data = ANEST.read_bytes().replace(b'<code code="77436-4"', b'<code code="34749-2"', 1)
    (error,) = cda.validate(data)
    assert error.is_error and "ANS schematron CI-SIS_ANEST-CR-ANEST_2022.01.sch" in error.context
    assert ", at /cda:ClinicalDocument[1]: [Entete_ANEST-CR-ANEST]" in error.context
    assert 'L\'élément "code" doit avoir les attributs @code="77436-4"' in error.context


def test_the_setting_comes_from_the_environment_and_the_toml_file(tmp_path: Path) -> None:
    assert load_settings(environ={"DMP_XDS_SCHEMATRONS": "/kit/schematrons"}).schematrons == "/kit/schematrons"
    toml = tmp_path / "dmp-xds.toml"
    toml.write_text('schematrons = "/srv/ans/schematrons"\n')
    assert load_settings(toml, environ={}).schematrons == "/srv/ans/schematrons"
    assert Settings().schematrons == ""  # off unless set


def test_a_missing_or_wrong_directory_stops_the_start(tmp_path: Path) -> None:
    settings = Settings(
        profile="cisis",
        value_sets=str(ANS / "jeuxDeValeurs"),
        cda_schema=str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
        schematrons=str(tmp_path / "missing"),
    )
    with pytest.raises(ConfigError, match="DMP_XDS_SCHEMATRONS: schematron directory .*missing does not exist"):
        load_validators(settings)
    with pytest.raises(ConfigError, match="has no profils/structurationMinimale"):
        load_validators(replace(settings, schematrons=str(tmp_path)))
    with pytest.raises(SchematronError):
        load_ans_schematrons(tmp_path)


def test_a_document_in_another_encoding_is_checked_as_its_utf8_twin(cda: CdaValidator) -> None:
    # Saxon is given the document's text: bytes in ISO-8859-1 decoded as such, not as UTF-8.
    data = ANEST.read_bytes().replace(b'<realmCode code="FR"/>', b"", 1)
    latin = (
        data.decode("utf-8")
        .replace('encoding="UTF-8"', 'encoding="ISO-8859-1"', 1)
        .encode("iso-8859-1", "xmlcharrefreplace")
    )
    assert latin != data and b"\xe9" in latin  # accented letters are now one byte each
    utf8_errors, latin_errors = cda.validate(data), cda.validate(latin)
    assert latin_errors == utf8_errors and any("realmCode" in e.context for e in latin_errors)


def test_threads_checking_documents_at_once_get_what_one_thread_gets(ans: AnsSchematrons) -> None:
    # The server validates documents on a thread pool: one Saxon processor parses for all of
    # them, each thread runs its own clone of each compiled schematron.
    broken = ANEST.read_bytes().replace(b'<realmCode code="FR"/>', b"", 1)
    documents = [broken, ANEST.read_bytes(), (ANS / "ExemplesCDA" / "eDISP-MED_2024.01.xml").read_bytes()]
    expected = [ans.validate(d.decode("utf-8-sig"), template_ids(d)) for d in documents]
    assert expected[0][1] and not expected[1][1] and expected[2][1]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda d: ans.validate(d.decode("utf-8-sig"), template_ids(d)), documents * 4))
    assert got == expected * 4


def _twins(path: Path) -> list[bytes]:
    """An example, and two mutations of it that the schematrons find fault with (a finding list
    to compare, not only empty ones): realmCode removed, the first code attribute changed."""
    data = path.read_bytes()
    return [
        data,
        data.replace(b'<realmCode code="FR"/>', b"", 1),
        data.replace(b' code="', b' code="X', 1),
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_saxon_reading_the_received_bytes_finds_what_it_found_on_lxml_copy(
    ans: AnsSchematrons, path: Path, tmp_path: Path
) -> None:
    # The reference path, as the CDA layer ran before: Saxon parsed the document as lxml wrote
    # it back from the tree parse_bytes made. Now it reads the client's bytes, from the
    # repository's file of them when there is one.
    received = tmp_path / "received"
    for data in _twins(path):
        root = parse_bytes(data)
        ids = template_ids(data)
        reference = ans.validate(etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True), ids)
        document = saxon_document(data, root)
        assert not isinstance(document, bytes)  # Saxon read the bytes themselves
        assert ans.validate(document, ids) == reference
        received.write_bytes(data)
        in_place = saxon_document(data, root, received)
        assert not isinstance(in_place, bytes)
        assert ans.validate(in_place, ids) == reference


def test_the_layer_given_the_documents_file_finds_what_it_finds_in_its_bytes(cda: CdaValidator, tmp_path: Path) -> None:
    broken = ANEST.read_bytes().replace(b'<realmCode code="FR"/>', b"", 1)
    received = tmp_path / "received"
    received.write_bytes(broken)
    errors, _ = cda.check(broken, None, received)
    assert any("ANS schematron" in e.context and "realmCode" in e.context for e in errors)
    assert errors == cda.check(broken)[0]


def test_saxon_refuses_a_doctype_in_the_bytes_it_reads() -> None:
    # Defence in depth behind parse_bytes: no entity is expanded, no external subset opened.
    document = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>'
    with pytest.raises(SchematronError, match="DOCTYPE"):
        parse_document(document)
    root = etree.fromstring(b"<a>boom</a>")
    assert saxon_document(document, root) == b"<?xml version='1.0' encoding='UTF-8'?>\n<a>boom</a>"


def test_saxon_refuses_a_doctype_in_the_file_it_reads(tmp_path: Path) -> None:
    received = tmp_path / "received"
    received.write_bytes(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>')
    with pytest.raises(SchematronError, match="DOCTYPE"):
        parse_file(received)
    with pytest.raises(SchematronError):
        parse_file(tmp_path / "missing")
    root = etree.fromstring(b"<a>boom</a>")
    assert saxon_document(received.read_bytes(), root, received) == (
        b"<?xml version='1.0' encoding='UTF-8'?>\n<a>boom</a>"
    )
