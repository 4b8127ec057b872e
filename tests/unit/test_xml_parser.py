"""The one XML parser refuses every DOCTYPE with one message, whatever its encoding, its place in
the prolog and the file it names, and never opens that file (a FIFO would block the parse)."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.xds import xml
from dmp_xds.xds.xml import DOCTYPE_REFUSED, UnsafeXmlError, parse_bytes, parse_file
from hostile_xml import DOCTYPES, ENCODINGS, Targets, hostile_document, make_targets, release_fifo

JOIN_SECONDS = 3.0
BLOCKED = "did not return: the parser opened the FIFO or /dev/zero"


def _outcome(parse: Callable[[bytes], object], data: bytes, fifo: Path) -> str:
    """What `parse` says of `data`, from a thread: a parse that opens the FIFO waits for a
    writer, so after JOIN_SECONDS the FIFO is released (the test never hangs) and the outcome
    is BLOCKED."""
    result: list[str] = []

    def run() -> None:
        try:
            parse(data)
            result.append("accepted")
        except UnsafeXmlError as exc:
            result.append(str(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(JOIN_SECONDS)
    if thread.is_alive():
        release_fifo(fifo)
        thread.join(JOIN_SECONDS)
        return BLOCKED
    return result[0]


def _parse_file(data: bytes) -> object:
    return parse_file(io.BytesIO(data))


@pytest.fixture
def targets(tmp_path: Path) -> Targets:
    return make_targets(tmp_path)


@pytest.mark.parametrize("parse", [parse_bytes, _parse_file], ids=["bytes", "file"])
@pytest.mark.parametrize("doctype", sorted(DOCTYPES))
@pytest.mark.parametrize("encoding", [e[0] for e in ENCODINGS])
def test_a_doctype_naming_a_file_gets_one_refusal_whatever_the_file(
    targets: Targets, encoding: str, doctype: str, parse: Callable[[bytes], object]
) -> None:
    outcomes = {}
    for name, path in targets.all().items():
        for url in (path.as_uri(), str(path)):
            outcomes[f"{name} {url}"] = _outcome(parse, hostile_document(url, encoding, doctype), targets.fifo)
            assert outcomes[f"{name} {url}"] != BLOCKED, outcomes
    assert set(outcomes.values()) == {DOCTYPE_REFUSED}, outcomes


def test_the_main_parser_alone_opens_nothing_either(targets: Targets) -> None:
    """Second and third locks, should the prolog check ever miss a DOCTYPE: the main parser
    neither loads the external subset nor lets libxml2 open what a DOCTYPE names."""
    for doctype in sorted(DOCTYPES):
        data = hostile_document(targets.fifo.as_uri(), "utf-16-le", doctype)
        assert _outcome(lambda d: _main_parse(d), data, targets.fifo) != BLOCKED, doctype


def _main_parse(data: bytes) -> None:
    try:
        root = etree.fromstring(data, xml._PARSER)
    except (etree.XMLSyntaxError, xml._ExternalResourceRefused) as exc:
        raise UnsafeXmlError(str(exc)) from None
    assert root.getroottree().docinfo.doctype  # kept, for _check_no_doctype to refuse


@pytest.mark.parametrize("encoding", [e[0] for e in ENCODINGS])
def test_documents_without_doctype_parse_in_every_encoding(encoding: str) -> None:
    _, codec, bom, declared = next(e for e in ENCODINGS if e[0] == encoding)
    text = (
        f'<?xml version="1.0" encoding="{declared}"?><!-- a comment that says <!DOCTYPE x> -->'
        '<e a="é"><![CDATA[<!DOCTYPE y>]]></e>'
    )
    data = bom + text.encode(codec)
    assert parse_bytes(data).get("a") == "é"
    assert parse_file(io.BytesIO(data)).text == "<!DOCTYPE y>"


def test_an_internal_subset_is_refused_before_it_is_read() -> None:
    laughs = (
        '<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
        + ']><e x="&j;"/>'
    )
    for data in (laughs.encode(), laughs.encode("utf-16")):
        with pytest.raises(UnsafeXmlError) as info:
            parse_bytes(data)
        assert str(info.value) == DOCTYPE_REFUSED


@pytest.mark.parametrize("data", [b"", b"not xml", b"<e>", b"<!-- only a comment -->", b"<e>&undeclared;</e>"])
def test_malformed_documents_are_refused_as_such(data: bytes) -> None:
    for parse in (parse_bytes, _parse_file):
        with pytest.raises(UnsafeXmlError) as info:
            parse(data)
        assert str(info.value).startswith("not well-formed XML"), (data, info.value)


def test_parse_file_reads_from_where_the_file_is() -> None:
    handle = io.BytesIO(b"junk<e/>")
    handle.seek(4)
    assert parse_file(handle).tag == "e"
