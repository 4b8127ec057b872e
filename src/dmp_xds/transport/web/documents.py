"""A stored document served to the browser (shared by the patient's space and the professionals'
site): inline only for the kinds a browser shows without running anything of the document's
(PDF, images), as an attachment otherwise; always streamed from its file, under a
Content-Security-Policy of its own (in place of the pages') that lets it load and reach nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

from dmp_xds.transport.web.http import Response

INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif"})
# The policy of a document served inline (a PDF, an image, opened on its own, never embedded),
# in place of the pages' own: `sandbox` gives it an opaque origin (whatever a viewer runs cannot
# reach our cookies or pages), it loads nothing and nobody frames it. Chromium still shows a PDF
# under it (checked in the browser tests).
DOCUMENT_CSP = (
    "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "text/xml": ".xml",
    "application/xml": ".xml",
    "text/plain": ".txt",
}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(unique_id: str, mime_type: str) -> str:
    """A download's name: the document's uniqueId (only characters every system accepts) and the
    extension of its type."""
    stem = _UNSAFE_NAME.sub("_", unique_id).strip("._") or "document"
    return stem[:120] + EXTENSIONS.get(mime_type.split(";", 1)[0].strip().lower(), ".bin")


def document_response(chunks: Iterator[bytes], size: int, mime_type: str, unique_id: str, download: bool) -> Response:
    """The document's bytes: shown in the browser (PDF, image) unless `download`, or given as a
    file to save (every other type: an HTML or XML file could run scripts if shown)."""
    media = mime_type.split(";", 1)[0].strip().lower() or "application/octet-stream"
    inline = media in INLINE_TYPES and not download
    disposition = "inline" if inline else "attachment"
    return Response(
        200,
        b"",
        media if inline else "application/octet-stream",
        [
            ("content-disposition", f'{disposition}; filename="{file_name(unique_id, media)}"'),
            ("content-security-policy", DOCUMENT_CSP),
        ],
        stream=chunks,  # streamed from the document store, not read into memory
        stream_size=size,
    )
