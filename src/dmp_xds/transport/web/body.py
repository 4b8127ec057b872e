"""A web request's body, read under the same rules as SOAP's: a size limit known before reading
when the client declares one, checked while reading otherwise, and a timeout (the caller's).
Forms are kept in memory (small); a multipart upload's files are streamed to temporary files."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header

from dmp_xds.transport.web.http import HttpError, UploadedFile, form_of

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
TOO_LARGE = "L'envoi est trop volumineux (au-delà de {limit} octets)."


async def read_body(
    receive: Receive, headers: dict[str, str], form_limit: int, upload_limit: int, temp_dir: Path
) -> tuple[dict[str, str], list[UploadedFile]]:
    media, options = parse_options_header(headers.get("content-type", ""))
    media_type = media.decode("latin-1").lower()
    if media_type == MULTIPART:
        limit = upload_limit
    elif media_type in (FORM, ""):
        limit = form_limit
    else:
        raise HttpError(415, "Ce type d'envoi n'est pas accepté ici.")
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HttpError(413, TOO_LARGE.format(limit=limit))
    if media_type == MULTIPART:
        boundary = options.get(b"boundary", b"")
        if not boundary:
            raise HttpError(400, "L'envoi de fichier est mal formé.")
        upload = _Upload(boundary, temp_dir)
        try:
            await _chunks(receive, limit, upload.feed)
            return upload.finish()
        except BaseException:
            upload.discard()
            raise
    buffer = bytearray()
    await _chunks(receive, limit, buffer.extend)
    return form_of(bytes(buffer)), []


async def _chunks(receive: Receive, limit: int, feed: Callable[[bytes], object]) -> None:
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "La connexion a été coupée avant la fin de l'envoi.")
        chunk: bytes = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise HttpError(413, TOO_LARGE.format(limit=limit))
        feed(chunk)
        if not message.get("more_body", False):
            return


class _Upload:
    """multipart/form-data through python-multipart's streaming parser: fields in memory (each
    bounded by the body's limit), files to temporary files."""

    def __init__(self, boundary: bytes, temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        self.fields: dict[str, str] = {}
        self.files: list[UploadedFile] = []
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""
        self._data = bytearray()
        self._file: IO[bytes] | None = None
        self._size = 0
        self._temps: list[Path] = []
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": self._header_field,
                "on_header_value": self._header_val,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
            },
        )

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except Exception:
            raise HttpError(400, "L'envoi de fichier est mal formé.") from None

    def _part_begin(self) -> None:
        self._headers, self._data, self._size = {}, bytearray(), 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_val(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"filename" in options:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            handle = tempfile.NamedTemporaryFile(dir=self.temp_dir, prefix="upload-", delete=False)
            self._temps.append(Path(handle.name))
            self._file = handle

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
            self._size += end - start
        else:
            self._data += data[start:end]

    def _part_end(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._file is not None:
            self._file.close()
            self.files.append(
                UploadedFile(
                    name,
                    options.get(b"filename", b"").decode("utf-8", "replace"),
                    self._headers.get(b"content-type", b"application/octet-stream").decode("latin-1"),
                    self._temps[-1],
                    self._size,
                )
            )
            self._file = None
        else:
            try:
                self.fields[name] = self._data.decode("utf-8")
            except UnicodeDecodeError:
                raise HttpError(400, "Le formulaire envoyé n'est pas lisible.") from None

    def finish(self) -> tuple[dict[str, str], list[UploadedFile]]:
        self.parser.finalize()
        return self.fields, self.files

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        for path in self._temps:
            path.unlink(missing_ok=True)


def discard_files(files: list[UploadedFile]) -> None:
    for file in files:
        file.path.unlink(missing_ok=True)
