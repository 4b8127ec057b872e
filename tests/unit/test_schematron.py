"""The Schematron -> XSLT 3 compiler (validation/schematron.py), run with Saxon on small schemas."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.dmp.validation.schematron import (
    Finding,
    SchematronError,
    SchematronValidator,
    assemble,
    compile_schematron,
    document_literals,
    parse_document,
)

SCH = "http://purl.oclc.org/dsdl/schematron"


def schema(body: str, attributes: str = "") -> str:
    """An ISO Schematron schema (XSLT 2 binding, prefix h for HL7 v3) around `body`."""
    return (
        f'<schema xmlns="{SCH}" queryBinding="xslt2" {attributes}>'
        '<ns prefix="h" uri="urn:hl7-org:v3"/><ns prefix="xs" uri="http://www.w3.org/2001/XMLSchema"/>'
        + body
        + "</schema>"
    )


def document(body: str) -> str:
    return f'<ClinicalDocument xmlns="urn:hl7-org:v3">{body}</ClinicalDocument>'


def run(tmp_path: Path, sch: str, doc: str, files: dict[str, str] | None = None) -> list[Finding]:
    for name, text in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    path = tmp_path / "rules.sch"
    path.write_text(sch, encoding="utf-8")
    return SchematronValidator(path).validate(doc)


def test_a_failed_assert_gives_its_message_rule_and_location(tmp_path: Path) -> None:
    sch = schema(
        '<pattern id="header"><rule id="R1" context="h:ClinicalDocument/h:code">'
        '<assert test="@codeSystem">code <value-of select="@code"/> needs a codeSystem</assert>'
        '<assert test="@code">code needs a code</assert></rule></pattern>'
    )
    findings = run(tmp_path, sch, document('<id root="1"/><code code="X"/>'))
    assert findings == [
        Finding("rules.sch", "header", "R1", "error", "/h:ClinicalDocument[1]/h:code[1]", "code X needs a codeSystem")
    ]


def test_a_valid_document_has_no_finding(tmp_path: Path) -> None:
    sch = schema('<pattern id="p"><rule context="h:code"><assert test="@codeSystem">no</assert></rule></pattern>')
    assert run(tmp_path, sch, document('<code code="X" codeSystem="1.2"/>')) == []


def test_a_report_fires_when_its_test_is_true_and_roles_are_kept(tmp_path: Path) -> None:
    sch = schema(
        '<pattern id="p"><rule context="h:title">'
        '<report role="warning" test="string-length(.) = 0">empty title</report></rule></pattern>'
    )
    (finding,) = run(tmp_path, sch, document("<title/>"))
    assert (finding.message, finding.role, finding.is_warning) == ("empty title", "warning", True)
    assert run(tmp_path, sch, document("<title>CR</title>")) == []


def test_in_a_pattern_only_the_first_matching_rule_checks_a_node(tmp_path: Path) -> None:
    # ISO Schematron: a node is the context of at most one rule per pattern; another pattern
    # checks it again.
    sch = schema(
        '<pattern id="a"><rule context="h:code[@code=\'X\']"><assert test="false()">first</assert></rule>'
        '<rule context="h:code"><assert test="false()">second</assert></rule></pattern>'
        '<pattern id="b"><rule context="h:code"><assert test="false()">other pattern</assert></rule>'
        "</pattern>"
    )
    messages = [f.message for f in run(tmp_path, sch, document('<code code="X"/><code code="Y"/>'))]
    assert messages == ["first", "second", "other pattern", "other pattern"]  # pattern by pattern


def test_abstract_patterns_are_instantiated_with_their_parameters(tmp_path: Path) -> None:
    # $path must not be rewritten inside $path_code (longest name first, whole names only).
    sch = schema(
        '<pattern abstract="true" id="coded"><rule context="$path">'
        '<assert test="@code = $path_code"><value-of select="$label"/> must be <value-of select="$path_code"/>'
        "</assert></rule></pattern>"
        '<pattern is-a="coded" id="document-code"><param name="path" value="h:ClinicalDocument/h:code"/>'
        '<param name="path_code" value="\'11502-2\'"/><param name="label" value="\'code\'"/></pattern>'
    )
    (finding,) = run(tmp_path, sch, document('<code code="X"/>'))
    assert (finding.pattern, finding.message) == ("document-code", "code must be 11502-2")


def test_extends_brings_the_abstract_rules_checks_recursively(tmp_path: Path) -> None:
    sch = schema(
        '<pattern id="types"><rule abstract="true" id="ANY"><assert test="not(@nullFlavor)">'
        "no nullFlavor</assert></rule>"
        '<rule abstract="true" id="CE"><extends rule="ANY"/><assert test="@code">CE needs a code</assert>'
        "</rule></pattern>"
        '<pattern id="p"><rule context="h:code"><extends rule="CE"/></rule></pattern>'
    )
    messages = [f.message for f in run(tmp_path, sch, document('<code nullFlavor="UNK"/>'))]
    assert messages == ["no nullFlavor", "CE needs a code"]


def test_pattern_lets_are_global_and_rule_lets_local(tmp_path: Path) -> None:
    # The ANS volets declare their value set paths in a "variables" pattern used by the others.
    sch = schema(
        '<pattern id="variables"><let name="expected" value="\'FR\'"/></pattern>'
        '<pattern id="p"><rule context="h:realmCode"><let name="found" value="@code"/>'
        '<assert test="$found = $expected">realm <value-of select="$found"/></assert></rule></pattern>'
    )
    assert [f.message for f in run(tmp_path, sch, document('<realmCode code="US"/>'))] == ["realm US"]
    assert run(tmp_path, sch, document('<realmCode code="FR"/>')) == []


def test_only_the_patterns_of_the_default_phase_run(tmp_path: Path) -> None:
    sch = schema(
        '<phase id="main"><active pattern="on"/></phase>'
        '<pattern id="on"><rule context="h:title"><assert test="false()">on</assert></rule></pattern>'
        '<pattern id="off"><rule context="h:title"><assert test="false()">off</assert></rule></pattern>',
        'defaultPhase="main"',
    )
    assert [f.message for f in run(tmp_path, sch, document("<title/>"))] == ["on"]


def test_includes_are_resolved_relative_to_the_including_file(tmp_path: Path) -> None:
    files = {
        "inc/pattern.sch": f'<pattern xmlns="{SCH}" id="inc"><include href="rule.sch"/></pattern>',
        "inc/rule.sch": f'<rule xmlns="{SCH}" context="h:title"><assert test="string(.)">title</assert></rule>',
    }
    sch = schema('<include href="inc/pattern.sch"/>')
    assert [f.pattern for f in run(tmp_path, sch, document("<title/>"), files)] == ["inc"]


def test_a_missing_include_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "rules.sch"
    path.write_text(schema('<include href="nowhere.sch"/>'), encoding="utf-8")
    with pytest.raises(SchematronError, match="nowhere.sch"):
        assemble(path)


def test_documents_resolve_against_the_schema_file_and_are_read_once(tmp_path: Path) -> None:
    value_set = (
        '<RetrieveValueSetResponse xmlns="urn:ihe:iti:svs:2008"><ValueSet><ConceptList>'
        '<Concept code="{}" codeSystem="2.16.840.1.113883.5.25"/></ConceptList></ValueSet>'
        "</RetrieveValueSetResponse>"
    )
    sch = schema(
        '<ns prefix="svs" uri="urn:ihe:iti:svs:2008"/>'
        '<pattern id="variables"><let name="jdv" value="\'jdv/conf.xml\'"/></pattern>'
        '<pattern id="p"><rule context="h:confidentialityCode"><let name="c" value="@code"/>'
        '<assert test="document($jdv)//svs:Concept[@code = $c]">not in the value set</assert>'
        "<assert test=\"not(doc('jdv/other.xml')//svs:Concept[@code = $c])\">in the other one</assert>"
        "</rule></pattern>"
    )
    files = {"jdv/conf.xml": value_set.format("N"), "jdv/other.xml": value_set.format("V")}
    assert run(tmp_path, sch, document('<confidentialityCode code="N"/>'), files) == []
    assert [f.message for f in run(tmp_path, sch, document('<confidentialityCode code="V"/>'), files)] == [
        "not in the value set",
        "in the other one",
    ]
    assert document_literals(etree.fromstring(sch.encode())) == ["jdv/conf.xml", "jdv/other.xml"]
    # Read once, when the schema is compiled: the runs use those copies, not the files (with
    # several documents, looking them up by document-uri() found none: Saxon read every file
    # again on every run).
    validator = SchematronValidator(tmp_path / "rules.sch")
    for name in files:
        (tmp_path / name).unlink()
    assert validator.validate(document('<confidentialityCode code="N"/>')) == []


@pytest.mark.parametrize(
    "variables, check, missing",
    [
        ("", "<assert test=\"@code = doc('voc-missing.xml')//@code\">needs the vocabulary</assert>", "voc-missing.xml"),
        # Through variables: the ANS volets name their value sets in pattern lets (CANCER-D2LM-FIN
        # names one the kit does not have); without it no code can be told good or bad.
        (
            '<pattern id="variables"><let name="jdv-missing" value="\'jdv/missing.xml\'"/></pattern>',
            '<let name="vs" value="document($jdv-missing)"/>'
            '<assert test="@code = $vs//svs:Concept/@code">not in the value set</assert>',
            "jdv/missing.xml",
        ),
    ],
)
def test_an_assert_reading_a_document_that_does_not_exist_is_left_out_and_listed(
    tmp_path: Path, variables: str, check: str, missing: str
) -> None:
    sch = schema(
        '<ns prefix="svs" uri="urn:ihe:iti:svs:2008"/>'
        + variables
        + f'<pattern id="p"><rule id="R" context="h:code">{check}'
        '<assert test="@codeSystem">needs a codeSystem</assert></rule></pattern>'
    )
    path = tmp_path / "rules.sch"
    path.write_text(sch, encoding="utf-8")
    validator = SchematronValidator(path)
    assert validator.skipped == (f"p / R: needs {missing}, which does not exist",)
    assert [f.message for f in validator.validate(document('<code code="X"/>'))] == ["needs a codeSystem"]


def test_schema_errors_are_reported() -> None:
    with pytest.raises(SchematronError, match="not an ISO Schematron schema"):
        compile_schematron(etree.fromstring(b"<schema/>"), "file:///x.sch")
    bad_is_a = schema('<pattern is-a="nothing" id="p"/>')
    with pytest.raises(SchematronError, match="is-a nothing"):
        compile_schematron(etree.fromstring(bad_is_a.encode()), "file:///x.sch")
    bad_extends = schema('<pattern id="p"><rule context="h:x"><extends rule="nothing"/></rule></pattern>')
    with pytest.raises(SchematronError, match="extends nothing"):
        compile_schematron(etree.fromstring(bad_extends.encode()), "file:///x.sch")


def test_an_expression_saxon_refuses_is_a_compile_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.sch"
    path.write_text(
        schema('<pattern id="p"><rule context="h:x"><assert test="((">x</assert></rule></pattern>'), encoding="utf-8"
    )
    with pytest.raises(SchematronError, match="does not compile"):
        SchematronValidator(path)


def test_each_kind_of_rule_context_finds_its_nodes(tmp_path: Path) -> None:
    # A pattern's templates run on the nodes its rule contexts select from the document node:
    # every form of context must find what matching it against each node would.
    contexts = [
        "h:section/*[not(self::h:title)]",  # a wildcard last step (the "closed" patterns)
        "/h:ClinicalDocument/h:code",  # from the root
        "//h:component[h:section]/h:section/h:title",  # from anywhere
        "h:entry[2]",  # position among siblings, on the first step
        "h:id | /h:ClinicalDocument/h:setId",  # a union of a relative and a rooted branch
        "h:value except h:value[@x]",  # set operators
        "/",  # the document node
        "h:title/text()",  # not an element
    ]
    rules = "".join(
        f'<pattern id="p{n}"><rule context="{c}"><report test="true()">{n}</report></rule></pattern>'
        for n, c in enumerate(contexts)
    )
    doc = document(
        '<id root="1"/><code code="X"/><setId root="2"/><component><section><title>T</title><entry/>'
        '<entry><value/><value x="1"/></entry></section></component>'
    )
    found = [(f.message, f.location) for f in run(tmp_path, schema(rules), doc)]
    s = "/h:ClinicalDocument[1]/h:component[1]/h:section[1]"
    assert found == [
        ("0", f"{s}/h:entry[1]"),
        ("0", f"{s}/h:entry[2]"),
        ("1", "/h:ClinicalDocument[1]/h:code[1]"),
        ("2", f"{s}/h:title[1]"),
        ("3", f"{s}/h:entry[2]"),
        ("4", "/h:ClinicalDocument[1]/h:id[1]"),
        ("4", "/h:ClinicalDocument[1]/h:setId[1]"),
        ("5", f"{s}/h:entry[2]/h:value[1]"),
        ("6", "/"),
        ("7", f"{s}/h:title[1]/text()[1]"),
    ]


def test_a_context_failing_on_a_node_does_not_match_it(tmp_path: Path) -> None:
    # XSLT: an error while matching a pattern means "no match", the run goes on; the candidate
    # selection must not stop the run either.
    sch = schema(
        '<pattern id="p"><rule context="h:value[xs:integer(@v) gt 1]"><report test="true()">big '
        '<value-of select="@v"/></report></rule><rule context="h:value"><report test="true()">other '
        '<value-of select="@v"/></report></rule></pattern>'
    )
    doc = document('<value v="5"/><value v="x"/><value v="0"/>')
    assert [f.message for f in run(tmp_path, sch, doc)] == ["big 5", "other x", "other 0"]


def test_a_document_parsed_once_serves_every_schematron(tmp_path: Path) -> None:
    sch = schema(
        '<pattern id="p"><rule context="h:code"><assert test="@codeSystem">no system</assert></rule></pattern>'
    )
    path = tmp_path / "rules.sch"
    path.write_text(sch, encoding="utf-8")
    validator = SchematronValidator(path)
    parsed = parse_document(document('<code code="X"/>'))
    assert validator.validate(parsed) == validator.validate(parsed) == validator.validate(document('<code code="X"/>'))
    assert [f.message for f in validator.validate(parsed)] == ["no system"]
    with pytest.raises(SchematronError, match="Saxon cannot read the document"):
        parse_document("<not-closed>")


def test_bytes_are_read_with_the_encoding_their_declaration_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a temporary file (saxonche parses text or files), removed once read.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    sch = schema(
        '<pattern id="p"><rule context="h:title"><report test="true()"><value-of select="."/></report></rule></pattern>'
    )
    path = tmp_path / "rules.sch"
    path.write_text(sch, encoding="utf-8")
    latin = ('<?xml version="1.0" encoding="ISO-8859-1"?>' + document("<title>Séjour</title>")).encode("iso-8859-1")
    assert [f.message for f in SchematronValidator(path).validate(latin)] == ["Séjour"]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_an_include_is_found_whatever_the_case_of_its_name(tmp_path: Path) -> None:
    # The ANS kit is made on Windows: IHE.sch includes E_directiveAnticipee_int.sch, the kit
    # has E_directiveanticipee_int.sch.
    files = {
        "inc/E_directiveanticipee_int.sch": f'<pattern xmlns="{SCH}" id="inc"><rule context="h:title">'
        '<assert test="string(.)">title</assert></rule></pattern>'
    }
    sch = schema('<include href="inc/E_directiveAnticipee_int.sch"/>')
    assert [f.pattern for f in run(tmp_path, sch, document("<title/>"), files)] == ["inc"]
    # Two files that differ only in case: which one is meant cannot be told.
    (tmp_path / "inc" / "E_DIRECTIVEANTICIPEE_INT.sch").write_text(files["inc/E_directiveanticipee_int.sch"])
    with pytest.raises(SchematronError, match="E_directiveAnticipee_int.sch .* does not exist"):
        assemble(tmp_path / "rules.sch")
