"""The signature of a DMP submission set (TD2.1): its DocumentEntry, its checks, and how a client adds one.

A TD2.1 submission holds, besides its documents, a signature document (security/xades.py) in a
DocumentEntry of its own: classCode "Digital Signature", typeCode E1762, formatCode the XML-DSig
namespace, confidentiality N + MASQUE_PS + INVISIBLE_PATIENT (the signature is kept for proof,
not shown), linked to the submission set by a HasMember and by a `signs` association from the
signature to the set, both with SubmissionSetStatus Original.

The server checks it as the DMP does (`signature_errors`): it verifies, it covers every document
of the submission with the digest of the bytes received, its certificate chains to the server's
trust anchors, and it was made by whom the VIHF names (the professional's own card in direct mode,
the establishment's certificate in indirect mode). Under the CI-SIS profile with authentication a
submission without one is refused (`DMP_XDS_SUBMISSION_SIGNATURE=optional` lets editors in
development send unsigned ones).
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder, TrustStore
from dmp_xds.security.vihf import Principal
from dmp_xds.security.xades import sign_submission_set, verify_submission_signature
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.decode import decode_submit_objects_request
from dmp_xds.xds.ebrim.encode import encode_association, encode_document_entry
from dmp_xds.xds.errors import ErrorCode, XdsError, error
from dmp_xds.xds.model import Association, Code, DocumentEntry, LocalizedString, Submission

SIGNATURE_CONFIDENTIALITY = (
    ("N", "2.16.840.1.113883.5.25"),
    (sv.MASKED_FROM_PROFESSIONALS[1], sv.MASKED_FROM_PROFESSIONALS[0]),
    (sv.INVISIBLE_TO_PATIENT[1], sv.INVISIBLE_TO_PATIENT[0]),
)
CONTEXT = "XAdES signature of the submission set"


def is_signature_entry(entry: DocumentEntry) -> bool:
    """A submission set's signature: by its formatCode (the DMP's, or IHE DSG's) or its classCode."""
    return (entry.format_code is not None and entry.format_code.key() in v.SIGNATURE_FORMAT_CODES) or (
        entry.class_code is not None and entry.class_code.key() == v.SIGNATURE_CLASS_CODE
    )


def signer_problem(principal: Principal, signer: Holder) -> str:
    """Why `signer` may not sign this caller's submission ("" if it may): a card signs for its
    holder only, an establishment certificate for its own structure's staff (indirect mode)."""
    if signer.kind == "professional":
        if signer.national_id != principal.user_id:
            return (
                f"signed with the card of {signer.national_id} ({signer.display_name}), but the VIHF names "
                f"{principal.user_id}: the submission must be signed by its author's own card"
            )
        return ""
    if signer.kind == "establishment":
        if not principal.structure_id or signer.structure_id != principal.structure_id:
            return (
                f"signed with the certificate of structure {signer.structure_id} ({signer.organization}), but the "
                f"VIHF names structure {principal.structure_id or '(none)'}"
            )
        return ""
    return f"the signing certificate {signer.subject} names neither a professional nor a structure"


def signature_errors(
    submission: Submission,
    contents: Mapping[str, bytes],
    trust: TrustStore | None,
    principal: Principal | None,
    required: bool,
    now: dt.datetime | None = None,
    parsed: Mapping[str, etree._Element] | None = None,
) -> list[XdsError]:
    """The CI-SIS rules of a submission's signature. `contents`: the bytes of each document, by
    the id of its DocumentEntry in the message; `parsed`, by the same ids, the trees the CDA
    layer made of some (`parse_bytes`), not parsed again. `required`: a submission must carry one."""
    signatures = [de for de in submission.documents if is_signature_entry(de)]
    ss = submission.submission_set
    if not signatures:
        if required and ss is not None:
            return [
                error(
                    ErrorCode.REPOSITORY_METADATA_ERROR,
                    f"{CONTEXT}: the submission has no signature DocumentEntry (formatCode "
                    f"{v.SIGNATURE_FORMAT_CODE[0]}): the DMP requires every submission (TD2.1) to be signed "
                    "by its author (IHE DSG, XAdES)",
                    ss.entry_uuid,
                )
            ]
        return []
    if len(signatures) > 1:
        return [
            error(
                ErrorCode.REPOSITORY_METADATA_ERROR,
                f"{CONTEXT}: the submission has {len(signatures)} signature DocumentEntries; one signs the set",
                signatures[1].entry_uuid,
            )
        ]
    signature = signatures[0]
    if ss is None or not ss.unique_id:
        return []  # the metadata rules report a submission without a submission set
    links = {(a.association_type, a.source, a.target) for a in submission.associations}
    if (v.SIGNS, signature.entry_uuid, ss.entry_uuid) not in links:
        return [
            error(
                ErrorCode.REPOSITORY_METADATA_ERROR,
                f"{CONTEXT}: DocumentEntry {signature.entry_uuid} is a signature but no {v.SIGNS} association "
                f"links it to the submission set {ss.entry_uuid}",
                signature.entry_uuid,
            )
        ]
    data = contents.get(signature.entry_uuid)
    if data is None:
        return []  # reported by the repository as a missing document
    documents = {
        de.unique_id: contents[de.entry_uuid]
        for de in submission.documents
        if de is not signature and de.unique_id and de.entry_uuid in contents
    }
    trees = {
        de.unique_id: tree
        for de in submission.documents
        if de is not signature and de.unique_id and (tree := (parsed or {}).get(de.entry_uuid)) is not None
    }
    check = verify_submission_signature(data, ss.unique_id, documents, trust, now, trees)
    if not check.ok:
        return [error(ErrorCode.REPOSITORY_ERROR, f"{CONTEXT} refused: {check.reason}", signature.entry_uuid)]
    assert check.holder is not None
    if principal is not None:
        problem = signer_problem(principal, check.holder)
        if problem:
            return [error(ErrorCode.REPOSITORY_ERROR, f"{CONTEXT} refused: {problem}", signature.entry_uuid)]
    return []


# --- client side ------------------------------------------------------------------------------


def _code(pair: tuple[str, str], display: str) -> Code:
    return Code(pair[0], pair[1], display)


def signature_entry(submission: Submission, entry_id: str, unique_id: str, now: dt.datetime) -> DocumentEntry:
    """The DocumentEntry of a submission set's signature, as the DMP's TD2.1 example writes it:
    the set's patient and authors, the first document's facility and practice setting."""
    ss = submission.submission_set
    assert ss is not None and ss.patient_id
    first = submission.documents[0] if submission.documents else None
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
    return DocumentEntry(
        entry_id,
        unique_id=unique_id,
        patient_id=ss.patient_id,
        mime_type="text/xml",
        title=[LocalizedString("Signature du lot de soumission")],
        class_code=_code(v.SIGNATURE_CLASS_CODE, "Digital Signature"),
        type_code=_code(v.SIGNATURE_TYPE_CODE, "Full Document"),
        format_code=_code(v.SIGNATURE_FORMAT_CODE, "Default Signature Style"),
        healthcare_facility_type_code=first.healthcare_facility_type_code if first else None,
        practice_setting_code=first.practice_setting_code if first else None,
        confidentiality_codes=[Code(code, scheme) for code, scheme in SIGNATURE_CONFIDENTIALITY],
        event_codes=[_code(v.SIGNATURE_EVENT_CODE, "Source")],
        authors=list(ss.authors),
        creation_time=stamp,
        service_start_time=stamp,
        service_stop_time=stamp,
        language_code=v.SIGNATURE_LANGUAGE,
        source_patient_id=ss.patient_id,
    )


def sign_submission_objects(
    sor: etree._Element,
    contents: Mapping[str, bytes],
    key: PrivateKeyTypes,
    chain: Sequence[x509.Certificate],
    *,
    digest: str = "sha256",
    now: dt.datetime | None = None,
) -> tuple[str, bytes]:
    """Sign the submission set of an `lcm:SubmitObjectsRequest` (`contents`: each document's
    bytes by its DocumentEntry id) and add the signature's DocumentEntry and its HasMember and
    `signs` associations to it. Returns the signature's DocumentEntry id and the signature
    document, which the caller sends as that entry's document (ITI-41 xdsb:Document)."""
    now = now or dt.datetime.now(dt.UTC)
    objects = sor.find(v.TAG_REGISTRY_OBJECT_LIST)
    if sor.tag != v.TAG_SUBMIT_OBJECTS_REQUEST or objects is None:
        raise ValueError("expected an lcm:SubmitObjectsRequest with a rim:RegistryObjectList")
    submission = decode_submit_objects_request(sor)
    ss = submission.submission_set
    if ss is None or not ss.unique_id or not ss.patient_id:
        raise ValueError("the request has no submission set with a uniqueId and a patientId")
    signed = [(de.unique_id or "", contents[de.entry_uuid]) for de in submission.documents if de.entry_uuid in contents]
    signature_id = f"urn:uuid:{uuid.uuid4()}"
    unique_id = f"2.25.{uuid.uuid4().int}"
    data = sign_submission_set(ss.unique_id, signed, key, chain, signature_id=unique_id, digest=digest, now=now)
    encode_document_entry(signature_entry(submission, signature_id, unique_id, now), objects)
    status = {v.SLOT_SUBMISSION_SET_STATUS: [v.SUBMISSION_SET_STATUS_ORIGINAL]}
    for association_type, source, target in (
        (v.HAS_MEMBER, ss.entry_uuid, signature_id),
        (v.SIGNS, signature_id, ss.entry_uuid),
    ):
        encode_association(
            Association(f"urn:uuid:{uuid.uuid4()}", association_type, source, target, slots=dict(status)), objects
        )
    return signature_id, data


def add_submission_signature(
    request: etree._Element,
    contents: Mapping[str, bytes],
    key: PrivateKeyTypes,
    chain: Sequence[x509.Certificate],
    *,
    digest: str = "sha256",
    now: dt.datetime | None = None,
) -> tuple[str, bytes]:
    """`sign_submission_objects` on an xdsb:ProvideAndRegisterDocumentSetRequest, the signature
    added as its xdsb:Document (base64, in the message)."""
    sor = request.find(v.TAG_SUBMIT_OBJECTS_REQUEST)
    if sor is None:
        raise ValueError("the request has no lcm:SubmitObjectsRequest")
    signature_id, data = sign_submission_objects(sor, contents, key, chain, digest=digest, now=now)
    document = etree.SubElement(request, v.TAG_DOCUMENT, id=signature_id)
    document.text = base64.b64encode(data).decode("ascii")
    return signature_id, data
