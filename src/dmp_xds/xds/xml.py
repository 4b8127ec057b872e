"""The one way this product parses XML: entities, DTDs and every external resource off.

Every parser is built once (docs/architecture.md, "Secure XML by default"). A document with a DOCTYPE is
refused outright: no XDS, SOAP or CDA message needs one, and refusing it closes the door on
entity expansion (billion laughs) and external entities (XXE) whatever libxml2 would do.

The refusal must not depend on what a DOCTYPE names, nor touch it: libxml2 opens the external
subset of `<!DOCTYPE e SYSTEM "file:///...">` even with `load_dtd=False` when lxml's
`collect_ids=False` is set (it sets a `loadsubset` flag libxml2 2.14 reads as "load"), and an
error from that file, or a FIFO or /dev/zero that never ends, told the client what exists on
the server. So each document goes through three independent locks:

1. `_check_prolog`: a first pass whose parser target stops at the DOCTYPE or at the first
   element, whichever comes first. libxml2 reports the DOCTYPE (in any encoding it reads, at any
   position in the prolog) before it parses the internal subset or looks for the external one,
   so a document with a DOCTYPE is refused with one message before anything is declared or
   opened. The pass reads only the prolog: it ends at the document element.
2. Every parser has a resolver that refuses every URL, file or network, before libxml2's own
   loader could open it.
3. The main parser never loads a DTD (`load_dtd=False`, `collect_ids=True`, no defaults, no
   validation, no entity substitution), and its result is checked for a DOCTYPE again.
"""

from __future__ import annotations

from typing import IO, Any

from lxml import etree

DOCTYPE_REFUSED = "XML with a DOCTYPE / DTD is refused (entity expansion, XXE)"


class UnsafeXmlError(ValueError):
    """The document is not well-formed, too large, or uses a DTD / entities."""


class _ExternalResourceRefused(Exception):
    """Raised by the resolver: no URL named by a document is ever opened."""


class _DoctypeFound(Exception):
    pass


class _PrologEnd(Exception):
    """The document element begins: the prolog had no DOCTYPE."""


class _RefuseEverything(etree.Resolver):  # type: ignore[misc]  # lxml publishes no types: Resolver is Any
    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        raise _ExternalResourceRefused(system_url)


class _PrologTarget:
    """A parser target without state (one instance serves every thread): it only raises."""

    def doctype(self, name: str | None, public_id: str | None, system_url: str | None) -> None:
        raise _DoctypeFound()

    def start(self, tag: str, attrib: Any, nsmap: Any = None) -> None:
        raise _PrologEnd()

    def close(self) -> None:
        return None


def _parser(huge: bool = False, target: Any = None) -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=huge,
        remove_blank_text=False,
        # Not False: lxml then sets XML_SKIP_IDS in libxml2's `loadsubset`, and libxml2 2.14
        # loads the external subset whenever `loadsubset` is non-zero.
        collect_ids=True,
        target=target,
    )
    parser.resolvers.add(_RefuseEverything())
    return parser


_PARSER = _parser()
_PROLOG_PARSER = _parser(target=_PrologTarget())


def _check_prolog(source: bytes | IO[bytes]) -> None:
    """Refuse a document whose prolog has a DOCTYPE; parse nothing beyond the prolog."""
    try:
        if isinstance(source, bytes):
            etree.fromstring(source, _PROLOG_PARSER)
        else:
            etree.parse(source, _PROLOG_PARSER)
    except _PrologEnd:
        return
    except (_DoctypeFound, _ExternalResourceRefused):
        raise UnsafeXmlError(DOCTYPE_REFUSED) from None
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError(f"not well-formed XML: {exc}") from None
    # The whole input was read and no element began: an empty or element-less document, which
    # the main parse reports as not well-formed.


def _check_no_doctype(tree: etree._ElementTree) -> None:
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXmlError(DOCTYPE_REFUSED)


def parse_bytes(data: bytes) -> etree._Element:
    """Parse a whole XML document held in memory; raise UnsafeXmlError if it is not acceptable."""
    _check_prolog(data)
    try:
        root = etree.fromstring(data, _PARSER)
    except _ExternalResourceRefused:
        raise UnsafeXmlError(DOCTYPE_REFUSED) from None
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError(f"not well-formed XML: {exc}") from exc
    _check_no_doctype(root.getroottree())
    return root


def parse_file(handle: IO[bytes]) -> etree._Element:
    """Parse an XML document from a seekable binary file object (e.g. a spooled MTOM root part)."""
    start = handle.tell()
    _check_prolog(handle)
    handle.seek(start)
    try:
        tree = etree.parse(handle, _PARSER)
    except _ExternalResourceRefused:
        raise UnsafeXmlError(DOCTYPE_REFUSED) from None
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError(f"not well-formed XML: {exc}") from exc
    _check_no_doctype(tree)
    return tree.getroot()


def library_parser() -> etree.XMLParser:
    """The main parser, for a library that parses by itself what parse_bytes has accepted
    (signxml reads the VIHF it verifies again): no DTD, no resolver but the one that refuses."""
    return _PARSER


def to_bytes(element: etree._Element) -> bytes:
    data: bytes = etree.tostring(element, encoding="UTF-8", xml_declaration=False)
    return data
