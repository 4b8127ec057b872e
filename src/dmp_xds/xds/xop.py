"""XOP, the XML half of MTOM: how a message names its binary parts (`xop:Include href="cid:..."`).

Pure and transport-free, so that a transaction reads the references of its request and names the
parts of its response itself; the MIME half (the multipart/related framing) is the transport's
(transport/soap/mtom.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote, unquote

from lxml import etree

from dmp_xds.xds.vocabulary import NS_XOP, TAG_XOP_INCLUDE

B = TypeVar("B")


@dataclass(frozen=True, slots=True)
class Attachment(Generic[B]):
    """A binary part of an MTOM message: its Content-ID (without <>), its media type, and its
    bytes: in a file the transport wrote (the server: a temporary blob of the store) or in memory
    (the tools)."""

    content_id: str
    content_type: str
    blob: B


class XopError(ValueError):
    """A reference that names no part: the message itself is broken (a SOAP Sender fault)."""


def normalize_content_id(raw: str) -> str:
    """`<abc@x>` (Content-ID header) and `cid:abc%40x` (xop:Include href) name the same part."""
    value = raw.strip()
    if value.lower().startswith("cid:"):
        value = unquote(value[4:])
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.strip()


def xop_reference(element: etree._Element) -> str | None:
    """The Content-ID an element's xop:Include points to, or None if the element is inline."""
    for child in element:
        if child.tag == TAG_XOP_INCLUDE:
            href = child.get("href")
            if not href:
                raise XopError("an xop:Include has no href attribute")
            return normalize_content_id(href)
    return None


def xop_include(parent: etree._Element, content_id: str) -> etree._Element:
    """Make `parent`'s content a reference to the part `content_id`."""
    include = etree.SubElement(parent, TAG_XOP_INCLUDE, nsmap={"xop": NS_XOP})
    include.set("href", "cid:" + quote(content_id, safe="@."))
    return include


def new_content_id() -> str:
    return f"{uuid.uuid4().hex}@dmp-xds"
