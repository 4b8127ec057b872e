"""The one way this product parses XML: entities, DTDs and network access off.

Every parser is built once (DESIGN.md, "Secure XML by default"). A document with a DOCTYPE is
refused outright: no XDS, SOAP or CDA message needs one, and refusing it closes the door on
entity expansion (billion laughs) and external entities (XXE) whatever libxml2 would do.
"""

from __future__ import annotations

from typing import IO

from lxml import etree


class UnsafeXmlError(ValueError):
    """The document is not well-formed, too large, or uses a DTD / entities."""


def _parser(huge: bool = False) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge,
        remove_blank_text=False,
        collect_ids=False,
    )


_PARSER = _parser()


def _check_no_doctype(tree: etree._ElementTree) -> None:
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXmlError("XML with a DOCTYPE / DTD is refused (entity expansion, XXE)")


def parse_bytes(data: bytes) -> etree._Element:
    """Parse a whole XML document held in memory; raise UnsafeXmlError if it is not acceptable."""
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        raise UnsafeXmlError("XML with a DOCTYPE / DTD is refused (entity expansion, XXE)")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError(f"not well-formed XML: {exc}") from exc
    _check_no_doctype(root.getroottree())
    return root


def parse_file(handle: IO[bytes]) -> etree._Element:
    """Parse an XML document from a binary file object (e.g. a spooled MTOM root part)."""
    try:
        tree = etree.parse(handle, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError(f"not well-formed XML: {exc}") from exc
    _check_no_doctype(tree)
    return tree.getroot()


def to_bytes(element: etree._Element) -> bytes:
    return etree.tostring(element, encoding="UTF-8", xml_declaration=False)
