"""What the patient adds to their record themself: an uploaded document (PDF or image) and
short information of their own (allergies, treatments, vaccinations, the trusted person, the
people to call in an emergency, organ-donation wishes).

Each is published as a document whose author is the patient, through ITI-41 itself
(`iti41.provide_and_register`: the repository's checks, the CDA layer, `register.check_submission`
with the IHE rules and the CI-SIS profile, the registry rules, one atomic store) on behalf of
the signed-in patient, whose record gate and trace row are those of a SOAP submission. The
metadata follow the CI-SIS for patient-authored documents: authorPerson is the patient's INS
(XCN.9 the INS root), authorSpecialty, healthcareFacilityTypeCode, practiceSettingCode and the
submission set's contentTypeCode are EXP_PATIENT ("Expression personnelle du patient",
JDV_J01/J02/J04/J03), typeCode among the DMP's DOCPAT/EXPPAT codes of JDV_J07, classCode from
the ANS typeCode table (ASS_X04), formatCode from the media-type table (ASS_A12).

Short information is published as `text/plain` (formatCode urn:ihe:iti:xds-sd:text:2008 of
JDV_J10): the CDA layer, which checks every `text/xml` document against the CDA schema and the
ANS schematron of its template, has no template for the patient's free notes, while an
unstructured text body is a format the CI-SIS lists and every DMP-compatible software shows.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from dmp_xds.dmp.policy import Action
from dmp_xds.dmp.validation.valuesets import (
    CodeMapping,
    ValueSet,
    load_class_and_content_type_tables,
    load_format_mappings,
)
from dmp_xds.security.vihf import Principal, split_cx
from dmp_xds.services import iti41
from dmp_xds.services.context import Services, TransactionRequest
from dmp_xds.services.patient_space import (
    EXP_PATIENT,
    MASKED,
    PATIENT_SPACE_SOURCE_ID,
    DocumentSummary,
    PatientCall,
    Refused,
    admit,
    find_document,
    new_unique_id,
    summary,
)
from dmp_xds.services.pipeline import outcome_of
from dmp_xds.storage import trail as t
from dmp_xds.storage.blobstore import TempBlob
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from dmp_xds.xds.model import Association, Author, Code, DocumentEntry, LocalizedString, Submission, SubmissionSet
from dmp_xds.xds.model.ids import new_uuid
from dmp_xds.xds.xop import Attachment

TYPE_SYSTEM = "1.2.250.1.213.1.1.4.12"  # the ANS typeCode system of the DMP's own codes (JDV_J07)
NORMAL = Code("N", "2.16.840.1.113883.5.25", "Normal")

# The typeCodes a patient chooses from for an upload (JDV_J07: "déposé par le patient").
UPLOAD_TYPES: dict[str, str] = {
    "DOCPAT01": "Synthèse déposée par le patient",
    "DOCPAT02": "Traitement ou document de soins déposé par le patient",
    "DOCPAT03": "CR déposé par le patient",
    "DOCPAT04": "Imagerie déposée par le patient",
    "DOCPAT05": "CR de biologie déposé par le patient",
    "DOCPAT06": "CR de prévention déposé par le patient",
    "DOCPAT07": "Certificat déposé par le patient",
    "DOCPAT09": "Document administratif déposé par le patient",
    "EXPPAT_2": "Autre document du patient",
}


@dataclass(frozen=True)
class NoteKind:
    title: str  # the document's title, which also tells the kinds apart
    type_code: str


# The short information of the patient's own, each one document (a new version replaces it).
NOTE_KINDS: dict[str, NoteKind] = {
    "allergies": NoteKind("Mes allergies", "DOCPAT01"),
    "treatments": NoteKind("Mes traitements", "DOCPAT02"),
    "vaccinations": NoteKind("Mes vaccinations", "DOCPAT06"),
    "trusted-person": NoteKind("Ma personne de confiance", "EXPPAT_1"),
    "emergency-contacts": NoteKind("Mes contacts en cas d'urgence", "EXPPAT_2"),
    "organ-donation": NoteKind("Ma position sur le don d'organes", "EXPPAT_1"),
}
NOTE_TYPE_LABELS = {"EXPPAT_1": "Volontés et droits du patient", **UPLOAD_TYPES}

UPLOAD_MEDIA_TYPES = ("application/pdf", "image/jpeg", "image/png")
MAX_TITLE = 200
MAX_NOTE_CHARACTERS = 20_000


@dataclass(frozen=True)
class Published:
    unique_id: str
    title: str
    replaced: str  # the uniqueId of the version it replaces ("" for a new document)


@functools.cache
def _tables() -> tuple[CodeMapping, ValueSet, CodeMapping]:
    class_by_type, class_codes, _content_types = load_class_and_content_type_tables()
    _by_template, by_media_type, _formats = load_format_mappings()
    return class_by_type, class_codes, by_media_type


def _sniffed(head: bytes) -> str:
    """The media type the first bytes show (PDF, JPEG, PNG), "" for anything else."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return ""


def patient_author(patient_id: str, family: str = "", given: str = "") -> Author:
    """The patient as a document's author (CI-SIS: XCN.1 the INS, XCN.9 its root; the
    specialty EXP_PATIENT)."""
    ins, root = split_cx(patient_id)
    return Author(
        person=f"{ins}^{_hl7(family)}^{_hl7(given)}^^^^^^&{root}&ISO",
        specialties=[f"{EXP_PATIENT.code}^{EXP_PATIENT.display}^{EXP_PATIENT.scheme}"],
    )


def _hl7(text: str) -> str:
    """A name put in an HL7 v2 component: its delimiters left out."""
    return "".join(ch for ch in text if ch not in "^&~\\|")[:80]


def patient_document(
    patient_id: str,
    author: Author,
    title: str,
    type_code: str,
    mime_type: str,
    date: str,
    masked: bool = False,
) -> Submission:
    """The submission of one patient-authored document (pure but for the ids it draws)."""
    class_by_type, class_codes, by_media_type = _tables()
    klass = class_by_type.get(type_code)
    fmt = by_media_type.get(mime_type)
    if klass is None:
        raise Refused(f"type {type_code!r} has no classCode in the ANS table", 400)
    if fmt is None:
        raise Refused(f"{mime_type} is not a format the CI-SIS lists (JDV_J10): send a PDF or a JPEG", 415)
    label = NOTE_TYPE_LABELS.get(type_code, type_code)
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    ss = SubmissionSet(
        entry_uuid=new_uuid(),
        unique_id=new_unique_id(),
        source_id=PATIENT_SPACE_SOURCE_ID,
        patient_id=patient_id,
        submission_time=now,
        title=[LocalizedString(title, "fr-FR", "UTF-8")],
        content_type_code=Code(EXP_PATIENT.code, EXP_PATIENT.scheme, EXP_PATIENT.display),
        authors=[author],
    )
    entry = DocumentEntry(
        entry_uuid=new_uuid(),
        unique_id=new_unique_id(),
        patient_id=patient_id,
        mime_type=mime_type,
        title=[LocalizedString(title, "fr-FR", "UTF-8")],
        class_code=Code(klass[0], klass[1], class_codes.display(*klass)),
        type_code=Code(type_code, TYPE_SYSTEM, label),
        format_code=Code(fmt[0], fmt[1], ""),
        healthcare_facility_type_code=Code(EXP_PATIENT.code, EXP_PATIENT.scheme, EXP_PATIENT.display),
        practice_setting_code=Code(EXP_PATIENT.code, EXP_PATIENT.scheme, EXP_PATIENT.display),
        confidentiality_codes=[Code(NORMAL.code, NORMAL.scheme, NORMAL.display)]
        + ([Code(MASKED.code, MASKED.scheme, MASKED.display)] if masked else []),
        authors=[author],
        creation_time=date,
        service_start_time=date,
        service_stop_time=date,
        language_code="fr-FR",
        source_patient_id=patient_id,
    )
    link = Association(
        new_uuid(), v.HAS_MEMBER, ss.entry_uuid, entry.entry_uuid, slots={v.SLOT_SUBMISSION_SET_STATUS: ["Original"]}
    )
    return Submission(ss, [entry], [], [link], submission_set_count=1)


def _date(text: str) -> str:
    digits = "".join(ch for ch in text if ch.isdigit())
    try:
        dt.datetime.strptime(digits, "%Y%m%d")
    except ValueError:
        raise Refused(f"date {text!r}: expected a day, YYYY-MM-DD", 400) from None
    return digits


def _title(text: str) -> str:
    title = " ".join(text.split())
    if not title:
        raise Refused("a document needs a title", 400)
    if len(title) > MAX_TITLE:
        raise Refused(f"a title is at most {MAX_TITLE} characters", 400)
    return title


def _submit(services: Services, call: PatientCall, submission: Submission, blob: TempBlob, mime_type: str) -> str:
    """ITI-41 on the patient's behalf: the same function as the SOAP endpoint, given the
    request it would have decoded from MTOM; traced as `Admission.finish` traces it."""
    entry = submission.documents[0]
    content_id = f"{new_uuid()[9:]}@patient-space"
    request = etree.Element(v.TAG_PNR_REQUEST, nsmap={"xdsb": v.NS_XDSB})
    request.append(encode_submit_objects_request(submission))
    document = etree.SubElement(request, v.TAG_DOCUMENT, id=entry.entry_uuid)
    etree.SubElement(document, f"{{{v.NS_XOP}}}Include", href=f"cid:{content_id}")
    attachments = {content_id: Attachment(content_id, mime_type, blob)}
    try:
        result = iti41.provide_and_register(
            services, TransactionRequest(request, attachments, call.principal, call.access())
        )
    finally:
        services.blobs.discard(blob)  # published files were moved away; what is left is temporary
    outcome = t.DENIED if result.denied else outcome_of(result.payload)
    errors = [
        e.get("codeContext", "")
        for e in result.payload.iter(v.TAG_REGISTRY_ERROR)
        if e.get("severity", "").endswith("Error")
    ]
    call.trace(t.SUBMIT, outcome, result.touched, "; ".join((*result.decisions, *errors)))
    if outcome != t.SUCCESS:
        raise Refused("; ".join(errors) or "the document was refused", 403 if result.denied else 422)
    return entry.unique_id or ""


def _blob(services: Services, content: bytes | Iterable[bytes], limit: int) -> TempBlob:
    writer = services.blobs.new_writer()
    size = 0
    try:
        for chunk in [content] if isinstance(content, bytes) else content:
            size += len(chunk)
            if size > limit:
                raise Refused(f"the document is over {limit} bytes", 413)
            writer.write(chunk)
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def _author_of(call: PatientCall) -> Author:
    names = call.record.demographics
    return patient_author(
        call.patient_id, names.usage_name or names.birth_name, names.given_names[0] if names.given_names else ""
    )


def publish_upload(
    services: Services,
    principal: Principal,
    patient_id: str,
    content: bytes | Iterable[bytes],
    title: str,
    type_code: str,
    date: str,
    hidden: bool = False,
    now: dt.datetime | None = None,
) -> Published:
    """An uploaded PDF or image (its media type read from its first bytes, not the browser's
    word), typed among UPLOAD_TYPES, dated `date` (YYYY-MM-DD), published as the patient's."""
    call = admit(services, principal, patient_id, Action.SUBMIT, t.SUBMIT, now)
    if type_code not in UPLOAD_TYPES:
        raise call.refuse(t.SUBMIT, f"type {type_code!r} is not one a patient publishes", 400)
    title, day = _title(title), _date(date)
    blob = _blob(services, content, services.settings.max_request_bytes)
    with open(blob.path, "rb") as handle:
        mime_type = _sniffed(handle.read(16))
    if mime_type not in UPLOAD_MEDIA_TYPES:
        services.blobs.discard(blob)
        raise call.refuse(
            t.SUBMIT, "only a PDF or a JPEG image is accepted (the formats of the CI-SIS, JDV_J10: no PNG)", 415
        )
    try:
        submission = patient_document(call.patient_id, _author_of(call), title, type_code, mime_type, day, hidden)
    except Refused as refused:
        services.blobs.discard(blob)
        raise call.refuse(t.SUBMIT, refused.reason, refused.status) from None
    return Published(_submit(services, call, submission, blob, mime_type), title, "")


def note_text(kind: str, text: str) -> bytes:
    """The text/plain body of a short piece of information (pure): its title, then the text."""
    body = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return f"{NOTE_KINDS[kind].title}\n\n{body}\n".encode()


def publish_note(
    services: Services,
    principal: Principal,
    patient_id: str,
    kind: str,
    text: str,
    replaces: str = "",
    now: dt.datetime | None = None,
) -> Published:
    """Short information of the patient's own (NOTE_KINDS), published as a text/plain document;
    with `replaces` (the uniqueId of the current one), a new version of it (RPLC)."""
    call = admit(services, principal, patient_id, Action.SUBMIT, t.SUBMIT, now)
    if kind not in NOTE_KINDS:
        raise call.refuse(t.SUBMIT, f"{kind!r} is not information a patient keeps here", 400)
    if not text.strip():
        raise call.refuse(t.SUBMIT, "the information is empty", 400)
    if len(text) > MAX_NOTE_CHARACTERS:
        raise call.refuse(t.SUBMIT, f"at most {MAX_NOTE_CHARACTERS} characters", 413)
    note = NOTE_KINDS[kind]
    day = call.now.strftime("%Y%m%d")
    submission = patient_document(call.patient_id, _author_of(call), note.title, note.type_code, "text/plain", day)
    if replaces:
        _replacing(services, call, submission, replaces)
    blob = services.blobs.write_bytes(note_text(kind, text))
    return Published(_submit(services, call, submission, blob, "text/plain"), note.title, replaces)


def _replacing(services: Services, call: PatientCall, submission: Submission, replaces: str) -> None:
    """Make `submission` a replacement (RPLC) of the patient's document `replaces`: a document
    the patient published (the space changes only what the patient added; what professionals
    wrote they hide or delete), which the policy lets them change."""
    old = find_document(services, call, replaces, t.SUBMIT)
    if not summary(old, call.patient_id).patient_authored:
        raise call.refuse(t.SUBMIT, f"the document {replaces} was not published by the patient", 403, (replaces,))
    decision = call.access().decide(old, Action.UPDATE)
    if not decision.allowed:
        raise call.refuse(t.SUBMIT, decision.reason, 403, (replaces,))
    entry = submission.documents[0]
    # The new version keeps the old one's masking: replacing is not showing again.
    entry.confidentiality_codes = list(old.confidentiality_codes)
    submission.associations.append(Association(new_uuid(), v.RPLC, entry.entry_uuid, old.entry_uuid))


def replace_upload(
    services: Services,
    principal: Principal,
    patient_id: str,
    replaces: str,
    content: bytes | Iterable[bytes],
    title: str,
    type_code: str,
    date: str,
    now: dt.datetime | None = None,
) -> Published:
    """A new version (RPLC) of a document the patient uploaded."""
    call = admit(services, principal, patient_id, Action.SUBMIT, t.SUBMIT, now)
    if type_code not in UPLOAD_TYPES:
        raise call.refuse(t.SUBMIT, f"type {type_code!r} is not one a patient publishes", 400)
    title, day = _title(title), _date(date)
    blob = _blob(services, content, services.settings.max_request_bytes)
    try:
        with open(blob.path, "rb") as handle:
            mime_type = _sniffed(handle.read(16))
        if mime_type not in UPLOAD_MEDIA_TYPES:
            raise call.refuse(
                t.SUBMIT, "only a PDF or a JPEG image is accepted (the formats of the CI-SIS, JDV_J10: no PNG)", 415
            )
        submission = patient_document(call.patient_id, _author_of(call), title, type_code, mime_type, day)
        _replacing(services, call, submission, replaces)
    except BaseException:
        services.blobs.discard(blob)
        raise
    return Published(_submit(services, call, submission, blob, mime_type), title, replaces)


@dataclass(frozen=True)
class MyInformation:
    kind: str
    title: str
    current: DocumentSummary | None  # the latest version, None if never given


def my_information(documents: Iterable[DocumentSummary]) -> tuple[MyInformation, ...]:
    """Of the patient's document list (patient_space.list_documents), their short information,
    kind by kind (pure)."""
    mine = [d for d in documents if d.patient_authored and d.mime_type == "text/plain"]
    return tuple(
        MyInformation(
            kind, note.title, next((d for d in mine if d.title == note.title and d.type_code == note.type_code), None)
        )
        for kind, note in NOTE_KINDS.items()
    )
