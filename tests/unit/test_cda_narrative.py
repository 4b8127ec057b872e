"""The CDA rendered as HTML: every example of the ANS kit renders with the section titles of its
source, the narrative elements become their HTML counterparts, and hostile input gives no HTML
that can run."""

from __future__ import annotations

import lxml.html
import pytest
from lxml import etree

from dmp_xds.dmp.cda.header import CdaError, clinical_document
from dmp_xds.dmp.cda.narrative import ALLOWED_ATTRIBUTES, ALLOWED_ELEMENTS, MAX_DEPTH, narrative_html
from dmp_xds.xds.vocabulary import NS_HL7
from dmp_xds.xds.xml import parse_bytes
from factories import ANS_EXAMPLES, ans_example

EXAMPLES = sorted(p.name for p in ANS_EXAMPLES.glob("*.xml"))
HEADINGS = ("h3", "h4", "h5", "h6")
H = f"{{{NS_HL7}}}"


def inert(html: str) -> lxml.html.HtmlElement:
    """The HTML parsed as a browser would, after checking it holds nothing that can run: only
    whitelisted elements and attributes, links to http(s) only."""
    assert "<script" not in html.lower() and "javascript:" not in html.lower()
    fragment = lxml.html.fragment_fromstring(html)
    for element in fragment.iter():
        assert isinstance(element.tag, str), "a comment or processing instruction in the output"
        assert element.tag in ALLOWED_ELEMENTS, element.tag
        for name, value in element.attrib.items():
            assert name in ALLOWED_ATTRIBUTES and not name.startswith("on"), name
            if name == "href":
                assert value.startswith(("http://", "https://")), value
    return fragment


def depth(element: etree._Element) -> int:
    return 1 + max((depth(child) for child in element), default=0)


def source_titles(data: bytes) -> list[str]:
    root = clinical_document(parse_bytes(data))
    body = root.find(f"{H}component/{H}structuredBody")
    if body is None:
        return []
    titles = (section.find(f"{H}title") for section in body.iter(f"{H}section"))
    return [t for t in (" ".join("".join(e.itertext()).split()) for e in titles if e is not None) if t]


def test_the_kit_has_its_94_examples() -> None:
    assert len(EXAMPLES) == 94, f"{len(EXAMPLES)} examples in {ANS_EXAMPLES} (DMP_XDS_ANS_TESTCONTENUCDA)"


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_ans_example_renders_with_its_section_titles(name: str) -> None:
    data = ans_example(name)
    fragment = inert(narrative_html(data))
    headings = [" ".join(h.text_content().split()) for h in fragment.iter(*HEADINGS)]
    assert headings == source_titles(data)
    title = fragment.find(".//h2")
    assert title is not None and title.text_content() == " ".join(
        "".join(clinical_document(parse_bytes(data)).find(f"{H}title").itertext()).split()
    )


def test_the_kit_examples_have_sections_to_compare() -> None:
    structured = [name for name in EXAMPLES if source_titles(ans_example(name))]
    assert len(structured) >= 85  # all but the unstructured (nonXMLBody) ones


def test_header_names_patient_date_author_and_custodian() -> None:
    fragment = inert(narrative_html(ans_example("ANEST-CR-ANEST_2022.01.xml")))
    facts = {dt.text_content(): dt.getnext().text_content() for dt in fragment.iter("dt")}
    assert fragment.find(".//h2").text_content() == "Compte rendu d'anesthésie"
    assert "PAT-TROIS" in facts["Patient"] and "28/03/1979" in facts["Patient"]
    assert "INS 279035121518989" in facts["Patient"]
    assert facts["Date du document"] == "19/03/2020 à 11:17"
    assert "LEGRIS" in facts["Auteur"] and "Hôpital Européen Georges Pompidou" in facts["Auteur"]
    assert facts["Structure responsable (conservation)"] == "Hôpital Européen Georges Pompidou"


def test_an_unstructured_pdf_is_said_so_without_its_bytes() -> None:
    data = ans_example("BIO-CR-BIO_2021.01_CDA-R2-Niveau-1.xml")
    html = narrative_html(data)
    inert(html)
    assert "Document non structuré (PDF)" in html
    assert "JVBERi0" not in html  # the base64 of "%PDF-"


# --- small documents built for one element each --------------------------------------------


def cda(*narratives: etree._Element | str, body: etree._Element | None = None) -> etree._Element:
    """A minimal ClinicalDocument with one section per narrative (an element, or XML text put in
    the section's text), or with `body` as its component's body."""
    root = etree.Element(f"{H}ClinicalDocument", nsmap={None: NS_HL7})
    etree.SubElement(root, f"{H}id", root="1.2.3", extension="doc")
    etree.SubElement(root, f"{H}title").text = "Titre"
    component = etree.SubElement(root, f"{H}component")
    if body is not None:
        component.append(body)
        return root
    structured = etree.SubElement(component, f"{H}structuredBody")
    for number, narrative in enumerate(narratives, 1):
        section = etree.SubElement(etree.SubElement(structured, f"{H}component"), f"{H}section")
        etree.SubElement(section, f"{H}title").text = f"Section {number}"
        if isinstance(narrative, str):
            narrative = etree.fromstring(f'<text xmlns="{NS_HL7}">{narrative}</text>')
        section.append(narrative)
    return root


def narrative_of(html: str) -> lxml.html.HtmlElement:
    found = inert(html).find(".//div[@class='cda-narrative']")
    assert found is not None
    return found


def test_narrative_elements_become_their_html_counterparts() -> None:
    html = narrative_html(
        cda(
            "<paragraph>un <content styleCode='Bold'>gras</content>, <content styleCode='Italics'>italique</content>,"
            " <content styleCode='Underline Bold'>souligné</content><br/>suite<sup>2</sup></paragraph>"
            "<list listType='ordered'><caption>Étapes</caption><item>un</item><item>deux</item></list>"
            "<list><item>point</item></list>"
            "<table><caption>Résultats</caption><thead><tr><th>Examen</th><th>Valeur</th></tr></thead>"
            "<tbody><tr><td colspan='2'>Hb <content>13</content></td></tr></tbody></table>"
            "<paragraph><linkHtml href='https://www.e-cancer.fr/x?a=1&amp;b=2'>INCa</linkHtml></paragraph>"
            "<footnote>une note</footnote><renderMultiMedia referencedObject='img1'><caption>ECG</caption>"
            "</renderMultiMedia><content revised='delete'>barré</content>"
        )
    )
    narrative = narrative_of(html)
    paragraph = narrative.find("p")
    assert paragraph.find("strong").text == "gras" and paragraph.find("em").text == "italique"
    assert paragraph.find("u/strong").text == "souligné"
    assert paragraph.find("br") is not None and paragraph.find("sup").text == "2"
    assert [li.text for li in narrative.findall("ol/li")] == ["un", "deux"]
    assert narrative.find("p[@class='cda-caption']").text == "Étapes"
    assert [li.text for li in narrative.findall("ul/li")] == ["point"]
    table = narrative.find("table")
    assert table.find("caption").text == "Résultats"
    assert [th.text for th in table.findall("thead/tr/th")] == ["Examen", "Valeur"]
    cell = table.find("tbody/tr/td")
    assert cell.get("colspan") == "2" and cell.text_content() == "Hb 13"
    link = narrative.find(".//a")
    assert link.get("href") == "https://www.e-cancer.fr/x?a=1&b=2" and link.text == "INCa"
    assert "noopener" in link.get("rel")
    assert narrative.find("small[@class='cda-footnote']").text == "une note"
    assert "ECG" in narrative.find("span[@class='cda-media']").text
    assert "barré" not in html


def test_plain_text_non_xml_body_is_shown_as_text() -> None:
    body = etree.Element(f"{H}nonXMLBody")
    text = etree.SubElement(body, f"{H}text", mediaType="text/plain", representation="B64")
    text.text = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PiBib25qb3Vy"  # "<script>alert(1)</script> bonjour"
    html = narrative_html(cda(body=body))
    fragment = inert(html)
    assert fragment.find(".//pre").text == "<script>alert(1)</script> bonjour"  # as text, escaped in the HTML
    assert "&lt;script&gt;" in html


# --- hostile input -------------------------------------------------------------------------

XHTML = "http://www.w3.org/1999/xhtml"


@pytest.mark.parametrize(
    "narrative",
    [
        "<script>alert(1)</script><paragraph>après</paragraph>",
        f"<h:script xmlns:h='{XHTML}'>alert(1)</h:script><h:img xmlns:h='{XHTML}' src='x' onerror='alert(1)'/>",
        f"<h:a xmlns:h='{XHTML}' href='javascript:alert(1)'>lien</h:a>",
        "<paragraph onclick='alert(1)' style='background:url(javascript:alert(1))' ID='p1'>texte</paragraph>",
        "<content onmouseover='alert(1)' styleCode='Bold' class='x'>texte</content>",
        "<linkHtml href='javascript:alert(1)'>lien</linkHtml>",
        "<linkHtml href='  JaVaScRiPt:alert(1)'>lien</linkHtml>",
        "<linkHtml href='java&#9;script:alert(1)'>lien</linkHtml>",
        "<linkHtml href='data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='>lien</linkHtml>",
        "<linkHtml href='https://x.example/&quot;onmouseover=&quot;alert(1)'>lien</linkHtml>",
        "<linkHtml href='vbscript:msgbox(1)' onclick='alert(1)'>lien</linkHtml>",
        "<paragraph>&lt;script&gt;alert(1)&lt;/script&gt; &amp;lt;img src=x onerror=alert(1)&amp;gt;</paragraph>",
        "<table onload='alert(1)'><tbody><tr><td colspan='2 onclick=alert(1)' rowspan='9999'>x</td></tr></tbody>"
        "</table>",
        "<renderMultiMedia referencedObject='x'><caption><script>alert(1)</script></caption></renderMultiMedia>",
        "<paragraph><!-- <script>alert(1)</script> --><?php echo 1; ?>fin</paragraph>",
    ],
)
def test_hostile_narrative_gives_no_executable_html(narrative: str) -> None:
    inert(narrative_html(cda(narrative)))


def test_text_that_looks_like_markup_stays_text() -> None:
    html = narrative_html(cda("<paragraph>&lt;script&gt;alert(1)&lt;/script&gt;</paragraph>"))
    assert narrative_of(html).find("p").text == "<script>alert(1)</script>"
    assert "&lt;script&gt;" in html


def test_title_and_header_values_are_text() -> None:
    root = cda("<paragraph>x</paragraph>")
    root.find(f"{H}title").text = "<img src=x onerror=alert(1)>"
    section_title = root.find(f".//{H}section/{H}title")
    section_title.text = "<script>alert(1)</script>"
    fragment = inert(narrative_html(root))
    assert fragment.find(".//h2").text == "<img src=x onerror=alert(1)>"
    assert fragment.find(".//h3").text == "<script>alert(1)</script>"


def test_a_doctype_with_entities_is_refused() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x "<script>alert(1)</script>">]>'
        + f'<ClinicalDocument xmlns="{NS_HL7}"><id root="1"/><title>&x;</title></ClinicalDocument>'.encode()
    )
    with pytest.raises(CdaError):
        narrative_html(data)


def test_not_a_cda_document_is_refused() -> None:
    with pytest.raises(CdaError):
        narrative_html(b"<html><script>alert(1)</script></html>")
    with pytest.raises(CdaError):
        narrative_html(b"not xml")


def test_huge_nesting_is_rendered_to_a_bounded_depth() -> None:
    text = etree.Element(f"{H}text")
    inner = text
    for level in range(5000):
        inner = etree.SubElement(inner, f"{H}{('content', 'paragraph', 'list', 'item')[level % 4]}")
    inner.text = "au fond"
    html = narrative_html(cda(text))
    fragment = inert(html)
    assert "au fond" in fragment.text_content()
    assert depth(fragment) < 3 * MAX_DEPTH + 20


def test_deeply_nested_sections_are_rendered_to_a_bounded_depth() -> None:
    root = cda("<paragraph>haut</paragraph>")
    section = root.find(f".//{H}section")
    for level in range(3000):
        section = etree.SubElement(etree.SubElement(section, f"{H}component"), f"{H}section")
        etree.SubElement(section, f"{H}title").text = f"niveau {level}"
    fragment = inert(narrative_html(root))
    assert "niveau 2999" in fragment.text_content()
    assert depth(fragment) < 2 * MAX_DEPTH + 20


def test_bytes_and_parsed_trees_render_alike() -> None:
    data = ans_example("ANEST-CR-ANEST_2022.01.xml")
    assert (
        narrative_html(data)
        == narrative_html(parse_bytes(data))
        == narrative_html(etree.ElementTree(parse_bytes(data)))
    )
