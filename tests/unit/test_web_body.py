"""A web request's body: forms in memory, uploads streamed to temporary files, limits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from dmp_xds.transport.web.body import discard_files, read_body
from dmp_xds.transport.web.http import HttpError

BOUNDARY = "----dmpxds"


def _receiver(body: bytes, chunk: int = 7) -> Any:
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]

    async def receive() -> dict[str, Any]:
        piece = parts.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(parts)}

    return receive


def _read(body: bytes, content_type: str, tmp_path: Path, form: int = 1000, upload: int = 10_000) -> Any:
    headers = {"content-type": content_type}
    return asyncio.run(read_body(_receiver(body), headers, form, upload, tmp_path / "uploads"))


def _multipart(title: str, content: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="titre"\r\n\r\n{title}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="fichier"; filename="ordonnance.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def test_a_form_is_read_in_memory(tmp_path: Path) -> None:
    form, files = _read(b"login=abcd1234&password=x%21", "application/x-www-form-urlencoded", tmp_path)
    assert form == {"login": "abcd1234", "password": "x!"} and files == []


def test_an_upload_goes_to_a_temporary_file(tmp_path: Path) -> None:
    content = b"%PDF-1.4 " + bytes(range(256)) * 8
    form, files = _read(_multipart("Ordonnance été", content), f"multipart/form-data; boundary={BOUNDARY}", tmp_path)
    assert form == {"titre": "Ordonnance été"}
    (upload,) = files
    assert (upload.field_name, upload.file_name, upload.content_type) == (
        "fichier",
        "ordonnance.pdf",
        "application/pdf",
    )
    assert upload.path.read_bytes() == content and upload.size == len(content)
    discard_files(files)
    assert not upload.path.exists()


def test_limits_are_413_and_leave_no_file(tmp_path: Path) -> None:
    with pytest.raises(HttpError) as refused:
        _read(b"a=" + b"x" * 2000, "application/x-www-form-urlencoded", tmp_path)
    assert refused.value.status == 413
    with pytest.raises(HttpError) as too_big:
        _read(_multipart("t", b"y" * 20_000), f"multipart/form-data; boundary={BOUNDARY}", tmp_path)
    assert too_big.value.status == 413
    assert not any((tmp_path / "uploads").glob("*"))


def test_other_bodies_are_refused(tmp_path: Path) -> None:
    with pytest.raises(HttpError) as refused:
        _read(b"<x/>", "application/soap+xml", tmp_path)
    assert refused.value.status == 415
    with pytest.raises(HttpError) as no_boundary:
        _read(b"", "multipart/form-data", tmp_path)
    assert no_boundary.value.status == 400
