"""A CDA R2 document as readable HTML: its header and the narrative of its sections, and nothing
that can run.

The patient's space and the professionals' site show a stored document in the page. The CDA's
human-readable content is its narrative block (`section/text`, the CDA "StrucDocText" elements:
paragraph, list, table, content, br, linkHtml, renderMultiMedia, footnote...), which the
document's author fills and nobody has cleaned: it is rendered into a small whitelist of HTML
elements (`ALLOWED_ELEMENTS`), built with lxml's element API, so that every text is escaped by
the serializer and every attribute is one this module wrote:

- no element of the input is copied: each CDA element is mapped to an HTML element chosen here,
  an unknown element (an XHTML `script`, an `iframe`, a misspelt tag) gives its text only;
- no attribute of the input is copied except a `linkHtml` href of scheme http or https (and a
  table cell's spans, as numbers); no style, no event handler, no ID;
- the coded entries (`entry`) are machine data the narrative already says: not rendered;
- the nesting rendered is bounded (`MAX_DEPTH`): deeper content is given as text.

An unstructured document (`nonXMLBody`) is said as such, with its media type: the page shows a
PDF inline separately; a plain-text one (`text/plain`, base64 or not) is shown as text.

The bytes of a document are parsed with the project's secure parser (no DTD, no entity).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from lxml import etree

from dmp_xds.dmp.cda.header import CdaAuthor, CdaError, CdaOrganization, PersonName, clinical_document, header_of
from dmp_xds.dmp.ins import INS_ROOTS
from dmp_xds.xds.vocabulary import NS_HL7
from dmp_xds.xds.xml import UnsafeXmlError, parse_bytes

# Every HTML element and attribute this module may write: the tests hold the output to them.
ALLOWED_ELEMENTS = frozenset(
    {
        "article", "header", "section", "div", "p", "span", "h2", "h3", "h4", "h5", "h6",
        "dl", "dt", "dd", "ul", "ol", "li", "table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td",
        "strong", "em", "u", "sub", "sup", "br", "a", "small", "pre",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = frozenset({"class", "href", "rel", "colspan", "rowspan"})
LINK_SCHEMES = ("http://", "https://")
MAX_DEPTH = 32  # nested narrative elements rendered as elements; deeper ones as text
MAX_PLAIN_TEXT = 2_000_000  # characters of a text/plain nonXMLBody shown

_SEX = {"M": "masculin", "F": "féminin", "U": "inconnu"}
_STYLES: dict[str, tuple[str, ...]] = {
    "bold": ("strong",),
    "italics": ("em",),
    "emphasis": ("em",),
    "underline": ("u",),
    "bolditalics": ("strong", "em"),  # not a CDA style code, yet spelt so in the ANS examples
}
_CELLS = {"td", "th"}
_TABLE_PARTS = {"thead", "tbody", "tfoot"}
_SPAN = re.compile(r"[1-9][0-9]{0,2}")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # lxml refuses them in a text
_TS = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?")


def narrative_html(document: etree._Element | etree._ElementTree | bytes) -> str:
    """The document (its bytes, or parsed: the ClinicalDocument or a self-presenting stylesheet
    carrying one) as an HTML fragment, an `<article class="cda">`. Raises CdaError when it is
    not a CDA document, or its bytes are not XML the secure parser accepts."""
    if isinstance(document, bytes):
        try:
            document = parse_bytes(document)
        except UnsafeXmlError as exc:
            raise CdaError(f"the document cannot be read: {exc}") from exc
    root = clinical_document(document.getroot() if isinstance(document, etree._ElementTree) else document)
    article = etree.Element("article", {"class": "cda"})
    _header(article, root)
    body = _child(article, "div", "cda-body")
    structured = _first(root, "component", "structuredBody")
    unstructured = _first(root, "component", "nonXMLBody")
    if structured is not None:
        for component in _children(structured, "component"):
            for section in _children(component, "section"):
                _section(body, section, level=3)
    elif unstructured is not None:
        _non_xml_body(body, unstructured)
    else:
        _text(_child(body, "p", "cda-empty"), "Ce document n'a pas de contenu lisible.")
    html: str = etree.tostring(article, method="html", encoding="unicode")
    return html


# --- the header ----------------------------------------------------------------------------


def _header(article: etree._Element, root: etree._Element) -> None:
    header = header_of(root)
    top = _child(article, "header", "cda-header")
    _text(_child(top, "h2", "cda-title"), header.title or "Document sans titre")
    facts = _child(top, "dl", "cda-facts")
    patient = header.patient
    if patient.name is not None or patient.ids:
        who = _person(patient.name) or "patient sans nom"
        details = [f"né(e) le {_date(patient.birth_time)}" if patient.birth_time else ""]
        details.append(f"sexe {_SEX[patient.gender]}" if patient.gender in _SEX else "")
        details += [
            f"{'INS' if i.root in INS_ROOTS else 'identifiant'} {i.extension}" for i in patient.ids if i.extension
        ]
        _fact(facts, "Patient", [", ".join([who, *(d for d in details if d)])])
    if header.effective_time:
        _fact(facts, "Date du document", [_date(header.effective_time, with_time=True)])
    authors = [_author(a) for a in header.authors]
    _fact(facts, "Auteur" if len(authors) == 1 else "Auteurs", [a for a in authors if a])
    custodian = _first(root, "custodian", "assignedCustodian", "representedCustodianOrganization")
    name = _plain(_first(custodian, "name")) if custodian is not None else ""
    _fact(facts, "Structure responsable (conservation)", [name] if name else [])


def _fact(facts: etree._Element, term: str, values: Iterable[str]) -> None:
    values = [v for v in values if v]
    if not values:
        return
    _text(_child(facts, "dt"), term)
    for value in values:
        _text(_child(facts, "dd"), value)


def _person(name: PersonName | None) -> str:
    if name is None:
        return ""
    return " ".join(p for p in (name.prefix, *name.given, name.family, name.suffix) if p)


def _organization(organization: CdaOrganization | None) -> str:
    return organization.name if organization is not None else ""


def _author(author: CdaAuthor) -> str:
    who = _person(author.person) or (f"logiciel {author.device}" if author.device else "")
    specialty = author.specialty.display_name if author.specialty is not None else ""
    return ", ".join(p for p in (who, specialty, _organization(author.organization)) if p)


def _date(ts: str | None, with_time: bool = False) -> str:
    """An HL7 TS as the French reader writes it, in the author's own time (as the document has it)."""
    match = _TS.match(ts or "")
    if match is None:
        return ts or ""
    year, month, day, hour, minute = match.groups()
    date = "/".join(p for p in (day, month, year) if p)
    if with_time and hour:
        return f"{date} à {hour}:{minute or '00'}"
    return date


# --- the body ------------------------------------------------------------------------------


def _section(parent: etree._Element, section: etree._Element, level: int) -> None:
    out = _child(parent, "section", "cda-section")
    if level > MAX_DEPTH:  # sections nested past reason: their words
        _text(_child(out, "p"), _plain(section))
        return
    title = _plain(_first(section, "title"))
    if title:
        _text(_child(out, f"h{min(level, 6)}"), title)
    text = _first(section, "text")
    if text is not None:
        _flow(_child(out, "div", "cda-narrative"), text, depth=0)
    for component in _children(section, "component"):
        for subsection in _children(component, "section"):
            _section(out, subsection, level + 1)


def _non_xml_body(parent: etree._Element, body: etree._Element) -> None:
    text = _first(body, "text")
    media_type = (text.get("mediaType") if text is not None else None) or "text/plain"
    note = _child(parent, "p", "cda-non-xml")
    if media_type != "text/plain" or text is None:
        what = "PDF" if media_type == "application/pdf" else f"de type {media_type}"
        _text(note, f"Document non structuré ({what}) : son contenu est affiché à part, tel qu'il a été déposé.")
        return
    _text(note, "Document non structuré (texte) :")
    content = "".join(text.itertext())
    if (text.get("representation") or "TXT").upper() == "B64":
        try:
            content = base64.b64decode("".join(content.split()), validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            _text(note, "Document non structuré (texte) : son contenu n'est pas lisible (base64 invalide).")
            return
    _text(_child(parent, "pre", "cda-plain-text"), content[:MAX_PLAIN_TEXT])


def _flow(out: etree._Element, source: etree._Element, depth: int) -> None:
    """The children of the narrative element `source`, with the text around them, into `out`."""
    _text(out, source.text)
    for child in source:
        if isinstance(child.tag, str):  # not a comment or a processing instruction
            _element(out, child, depth + 1)
        _text(out, child.tail)


def _element(out: etree._Element, source: etree._Element, depth: int) -> None:
    name = etree.QName(source).localname if etree.QName(source).namespace == NS_HL7 else ""
    if depth > MAX_DEPTH:
        _text(out, _plain(source))
        return
    if name == "content":
        if source.get("revised") == "delete":  # text the author struck out
            return
        target = out
        for tag in _styles(source.get("styleCode")):
            target = _child(target, tag)
        _flow(target, source, depth)
    elif name == "paragraph":
        _flow(_child(out, "p"), source, depth)
    elif name == "br":
        _child(out, "br")
    elif name in ("sub", "sup"):
        _flow(_child(out, name), source, depth)
    elif name == "list":
        ordered = (source.get("listType") or "").lower() == "ordered"
        caption = _first(source, "caption")
        if caption is not None:
            _flow(_child(out, "p", "cda-caption"), caption, depth)
        items = _child(out, "ol" if ordered else "ul")
        for item in _children(source, "item"):
            _flow(_child(items, "li"), item, depth + 1)
    elif name == "table":
        _table(out, source, depth)
    elif name == "caption":
        _flow(_child(out, "span", "cda-caption"), source, depth)
    elif name == "linkHtml":
        href = (source.get("href") or "").strip()
        if _safe_link(href):
            link = _child(out, "a")
            link.set("href", href)
            link.set("rel", "noopener noreferrer nofollow")
            _flow(link, source, depth)
        else:
            _flow(out, source, depth)
    elif name == "footnote":
        _flow(_child(out, "small", "cda-footnote"), source, depth)
    elif name == "footnoteRef":
        _text(_child(out, "sup", "cda-footnote-ref"), "[note]")
    elif name == "renderMultiMedia":
        caption = _plain(_first(source, "caption"))
        _text(_child(out, "span", "cda-media"), f"[image jointe{' : ' + caption if caption else ''}, non affichée ici]")
    elif name in ("col", "colgroup"):
        return
    else:  # not a narrative element (or another namespace's): its words, never the element
        _text(out, _plain(source))


def _table(out: etree._Element, source: etree._Element, depth: int) -> None:
    table = _child(out, "table", "cda-table")
    caption = _first(source, "caption")
    if caption is not None:
        _flow(_child(table, "caption"), caption, depth + 1)
    for part in source:
        part_name = _hl7_name(part)
        if part_name in _TABLE_PARTS:
            rows = _children(part, "tr")
            html_part = _child(table, part_name)
        elif part_name == "tr":  # rows straight in the table (not in the schema, seen in the wild)
            rows = [part]
            html_part = table
        else:
            continue
        for row in rows:
            html_row = _child(html_part, "tr")
            for cell in row:
                cell_name = _hl7_name(cell)
                if cell_name not in _CELLS:
                    continue
                html_cell = _child(html_row, cell_name)
                for span in ("colspan", "rowspan"):
                    value = (cell.get(span) or "").strip()
                    if _SPAN.fullmatch(value):
                        html_cell.set(span, value)
                _flow(html_cell, cell, depth + 2)


# --- helpers -------------------------------------------------------------------------------


def _styles(style_code: str | None) -> list[str]:
    tags: list[str] = []
    for token in (style_code or "").lower().split():
        tags += [t for t in _STYLES.get(token, ()) if t not in tags]
    return tags


def _safe_link(href: str) -> bool:
    """An absolute http(s) URL with nothing a browser would strip or reinterpret in it."""
    return (
        href.lower().startswith(LINK_SCHEMES)
        and len(href) <= 2000
        and not any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c in "\"'<>\\`" for c in href)
    )


def _hl7_name(element: etree._Element) -> str:
    if not isinstance(element.tag, str):
        return ""
    name = etree.QName(element)
    return name.localname if name.namespace == NS_HL7 else ""


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if _hl7_name(c) == name]


def _first(element: etree._Element | None, *path: str) -> etree._Element | None:
    for name in path:
        if element is None:
            return None
        element = next(iter(_children(element, name)), None)
    return element


def _plain(element: etree._Element | None) -> str:
    """The words of `element` and everything under it, spaces collapsed."""
    if element is None:
        return ""
    return " ".join("".join(t for t in element.itertext() if isinstance(t, str)).split())


def _child(parent: etree._Element, tag: str, css_class: str = "") -> etree._Element:
    element = etree.SubElement(parent, tag)
    if css_class:
        element.set("class", css_class)
    return element


def _text(element: etree._Element, text: str | None) -> None:
    """Append `text` at the end of `element`'s content (lxml escapes it when serializing)."""
    if not text:
        return
    text = _XML_ILLEGAL.sub("", text)
    if len(element):
        last = element[-1]
        last.tail = (last.tail or "") + text
    else:
        element.text = (element.text or "") + text
