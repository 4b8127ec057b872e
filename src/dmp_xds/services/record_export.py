"""The patient downloads everything: one ZIP archive of the documents they may read (as files),
their metadata and the record's administrative data (JSON), and the access history (CSV).

The archive is written to a temporary file of the document store, document by document from
their files (never the whole record in memory); the web streams it and removes it
(`ExportArchive.path`). The documents go through the same policy as a retrieval
(`document_readable`), and the export is traced like one: a `retrieve` row naming them, and a
`history.read` row for the history it holds.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services
from dmp_xds.services.patient_space import (
    EXTENSIONS,
    access_view,
    documents_for_export,
    summary,
)
from dmp_xds.storage import trail as t

HISTORY_LIMIT = 100_000
HISTORY_COLUMNS = (
    "seq",
    "when",
    "who",
    "who_id",
    "role",
    "structure_id",
    "action",
    "outcome",
    "documents",
    "access_mode",
    "emergency",
    "reason",
)


@dataclass(frozen=True)
class ExportArchive:
    path: Path  # a temporary file: the caller streams it, then removes it
    filename: str
    documents: int
    history_rows: int


def _json_default(value: object) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def export_record(
    services: Services, principal: Principal, patient_id: str, now: dt.datetime | None = None
) -> ExportArchive:
    call, entries = documents_for_export(services, principal, patient_id, now)
    access = call.access()
    readable = [e for e in entries if access.readability(e).allowed]
    stored = services.registry.get_repository_documents([e.unique_id or "" for e in readable])
    handle, name = tempfile.mkstemp(prefix="export-", suffix=".zip", dir=services.blobs.tmp_dir)
    os.close(handle)
    path = Path(name)
    names: set[str] = set()
    exported: list[str] = []
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            metadata = []
            for entry in readable:
                view = summary(entry, call.patient_id)
                document = stored.get(view.unique_id)
                if document is None:
                    continue
                stem = f"documents/{view.created[:8] or 'document'}-{view.unique_id}"
                extension = EXTENSIONS.get(document.mime_type, ".bin")
                filename = stem + extension
                while filename in names:
                    filename = stem + f"-{len(names)}" + extension
                names.add(filename)
                with archive.open(filename, "w", force_zip64=document.size >= zipfile.ZIP64_LIMIT) as member:
                    for chunk in services.blobs.read_chunks(document.path):  # in chunks, from the store
                        member.write(chunk)
                exported.append(view.unique_id)
                metadata.append({"file": filename, **dataclasses.asdict(view)})
            archive.writestr(
                "documents.json", json.dumps(metadata, ensure_ascii=False, indent=2, default=_json_default)
            )
            record = call.record
            archive.writestr(
                "dossier.json",
                json.dumps(
                    {
                        "patient_id": record.patient_id,
                        "status": record.state.status,
                        "created_at": record.created_at,
                        "closed_at": record.closed_at,
                        "notification_email": record.notification_email,
                        "emergency_access_allowed": record.state.emergency_access_allowed,
                        "regulation_access_allowed": record.state.regulation_access_allowed,
                        "demographics": record.demographics,
                    },
                    ensure_ascii=False,
                    indent=2,
                    default=_json_default,
                ),
            )
            history = call.security.audit.history(call.patient_id, limit=HISTORY_LIMIT)
            with (
                archive.open("historique-des-acces.csv", "w") as raw,
                io.TextIOWrapper(raw, "utf-8", newline="") as text,
            ):
                writer = csv.writer(text)
                writer.writerow(HISTORY_COLUMNS)
                for traced in history:
                    row = access_view(traced)
                    writer.writerow(
                        (
                            row.seq,
                            row.when,
                            row.who,
                            row.who_id,
                            row.role,
                            row.structure_id,
                            row.action,
                            row.outcome,
                            " ".join(row.documents),
                            row.access_mode,
                            "oui" if row.emergency else "non",
                            row.reason,
                        )
                    )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    call.trace(t.RETRIEVE, documents=tuple(exported), detail=f"export of the record: {len(exported)} document(s)")
    call.trace(t.HISTORY_READ, detail=f"export of the record: {len(history)} history entries")
    filename = f"dmp-{call.patient_id.split('^', 1)[0]}-{call.now:%Y%m%d}.zip"
    return ExportArchive(path, filename, len(exported), len(history))
