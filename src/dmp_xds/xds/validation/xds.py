"""IHE XDS metadata rules on one message, independent of what the registry holds.

`validate_submission` returns every error of the message at once. The rules that need the
registry's state (known patient, uniqueIds in use, references to stored objects) are in
`registry/rules.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from enum import Enum

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode, XdsError, error
from dmp_xds.xds.model import Association, Author, Code, DocumentEntry, Folder, Submission, SubmissionSet
from dmp_xds.xds.validation import formats


class Transaction(Enum):
    ITI41 = "ITI-41"  # the repository fills hash, size and repositoryUniqueId
    ITI42 = "ITI-42"


def _label(kind: str, obj_id: str, unique_id: str | None) -> str:
    return f"{kind} {obj_id}" + (f" (uniqueId {unique_id})" if unique_id else "")


class _Checker:
    def __init__(self, code: ErrorCode) -> None:
        self.code = code
        self.errors: list[XdsError] = []

    def add(self, context: str, location: str = "", code: ErrorCode | None = None) -> None:
        self.errors.append(error(code or self.code, context, location))

    def required(self, label: str, location: str, name: str, value: object) -> bool:
        if value is None or value == "" or value == []:
            self.add(f"{label}: required attribute {name} is missing", location)
            return False
        return True

    def check(
        self, label: str, location: str, name: str, value: str | None, problem: Callable[[str], str | None]
    ) -> None:
        if value:
            why = problem(value)
            if why:
                self.add(f"{label}: {name} {value!r} is malformed: {why}", location)

    def dtm(self, label: str, location: str, name: str, value: str | None) -> None:
        if value and not formats.is_dtm(value):
            self.add(f"{label}: {name} {value!r} is not a DTM (YYYY[MM[DD[hh[mm[ss]]]]], UTC)", location)

    def coded(self, label: str, location: str, name: str, code: Code | None) -> None:
        if code is not None and (not code.code or not code.scheme):
            self.add(f"{label}: {name} needs a code (nodeRepresentation) and a codingScheme slot", location)

    def slot_lengths(self, label: str, location: str, values: Iterable[tuple[str, str | None]]) -> None:
        """ITI TF-3 §4.2.3.1.4: a slot value (ebRIM LongName) is at most 256 characters."""
        for name, value in values:
            if value is not None and len(value) > formats.MAX_SLOT_VALUE_LENGTH:
                self.add(
                    f"{label}: a {name} slot value is {len(value)} characters long, more than the "
                    f"{formats.MAX_SLOT_VALUE_LENGTH} ebRIM allows",
                    location,
                )

    def author(self, label: str, location: str, author: Author) -> None:
        if not (author.person or author.institutions):
            self.add(f"{label}: an author has neither authorPerson nor authorInstitution", location)
        self.check(label, location, "authorPerson (XCN)", author.person, formats.xcn_problem)
        for institution in author.institutions:
            self.check(label, location, "authorInstitution (XON)", institution, formats.xon_problem)

    def single_valued(self, label: str, location: str, counts: dict[str, int]) -> None:
        for attribute, count in counts.items():
            self.add(f"{label}: {attribute} is single-valued but is given {count} times", location)


def _check_document(c: _Checker, de: DocumentEntry, transaction: Transaction) -> None:
    label = _label("DocumentEntry", de.entry_uuid, de.unique_id)
    loc = de.entry_uuid
    if de.object_type not in v.DOCUMENT_ENTRY_TYPES:
        c.add(f"{label}: objectType {de.object_type!r} is not a DocumentEntry type", loc)
    c.required(label, loc, "uniqueId", de.unique_id)
    c.check(label, loc, "uniqueId", de.unique_id, formats.unique_id_problem)
    if c.required(label, loc, "patientId", de.patient_id):
        c.check(label, loc, "patientId", de.patient_id, formats.cx_problem)
    if c.required(label, loc, "mimeType", de.mime_type):
        c.check(label, loc, "mimeType", de.mime_type, formats.mime_type_problem)
    for name in ("class_code", "type_code", "format_code", "healthcare_facility_type_code", "practice_setting_code"):
        camel = _camel(name)
        if c.required(label, loc, camel, getattr(de, name)):
            c.coded(label, loc, camel, getattr(de, name))
    if c.required(label, loc, "confidentialityCode", de.confidentiality_codes):
        for code in de.confidentiality_codes:
            c.coded(label, loc, "confidentialityCode", code)
    for code in de.event_codes:
        c.coded(label, loc, "eventCodeList", code)
    c.required(label, loc, "creationTime", de.creation_time)
    c.dtm(label, loc, "creationTime", de.creation_time)
    c.dtm(label, loc, "serviceStartTime", de.service_start_time)
    c.dtm(label, loc, "serviceStopTime", de.service_stop_time)
    if c.required(label, loc, "languageCode", de.language_code):
        c.check(label, loc, "languageCode", de.language_code, formats.language_code_problem)
    c.check(label, loc, "legalAuthenticator (XCN)", de.legal_authenticator, formats.xcn_problem)
    if c.required(label, loc, "sourcePatientId", de.source_patient_id):
        c.check(label, loc, "sourcePatientId", de.source_patient_id, formats.cx_problem)
    if transaction is Transaction.ITI42:
        c.required(label, loc, "hash", de.hash)
        c.required(label, loc, "size", de.size)
        c.required(label, loc, "repositoryUniqueId", de.repository_unique_id)
    if de.hash and not formats.is_sha1_hex(de.hash):
        c.add(f"{label}: hash {de.hash!r} is not a SHA-1 in hexadecimal", loc)
    if de.size is not None and de.size < 0:
        c.add(f"{label}: size {de.size} is negative", loc)
    c.check(label, loc, "repositoryUniqueId", de.repository_unique_id, formats.oid_problem)
    for author in de.authors:
        c.author(label, loc, author)
    c.slot_lengths(label, loc, _document_slot_values(de))
    c.single_valued(label, loc, de.multi_valued_slots)


def _check_submission_set(c: _Checker, ss: SubmissionSet) -> None:
    label = _label("SubmissionSet", ss.entry_uuid, ss.unique_id)
    loc = ss.entry_uuid
    if c.required(label, loc, "uniqueId", ss.unique_id):
        c.check(label, loc, "uniqueId", ss.unique_id, formats.oid_problem)
    if c.required(label, loc, "sourceId", ss.source_id):
        c.check(label, loc, "sourceId", ss.source_id, formats.oid_problem)
    if c.required(label, loc, "patientId", ss.patient_id):
        c.check(label, loc, "patientId", ss.patient_id, formats.cx_problem)
    c.required(label, loc, "submissionTime", ss.submission_time)
    c.dtm(label, loc, "submissionTime", ss.submission_time)
    if c.required(label, loc, "contentTypeCode", ss.content_type_code):
        c.coded(label, loc, "contentTypeCode", ss.content_type_code)
    for author in ss.authors:
        c.author(label, loc, author)
    for recipient in ss.intended_recipients:
        # XON|XCN|XTN: an organization, a person, or both (and a telecom address) (ITI TF-3 §4.2.3.3.5).
        organization, _, rest = recipient.partition("|")
        person = rest.split("|")[0]
        c.check(label, loc, "intendedRecipient organization (XON)", organization or None, formats.xon_problem)
        c.check(label, loc, "intendedRecipient person (XCN)", person or None, formats.xcn_problem)
    codes = [ss.content_type_code] if ss.content_type_code else []
    c.slot_lengths(
        label,
        loc,
        [("submissionTime", ss.submission_time)]
        + [("intendedRecipient", r) for r in ss.intended_recipients]
        + _author_slot_values(ss.authors)
        + _code_slot_values(codes)
        + _extra_slot_values(ss.extra_slots),
    )
    c.single_valued(label, loc, ss.multi_valued_slots)


def _check_folder(c: _Checker, folder: Folder) -> None:
    label = _label("Folder", folder.entry_uuid, folder.unique_id)
    loc = folder.entry_uuid
    if c.required(label, loc, "uniqueId", folder.unique_id):
        c.check(label, loc, "uniqueId", folder.unique_id, formats.oid_problem)
    if c.required(label, loc, "patientId", folder.patient_id):
        c.check(label, loc, "patientId", folder.patient_id, formats.cx_problem)
    if c.required(label, loc, "codeList", folder.codes):
        for code in folder.codes:
            c.coded(label, loc, "codeList", code)
    c.required(label, loc, "title", folder.title)
    c.slot_lengths(label, loc, _code_slot_values(folder.codes) + _extra_slot_values(folder.extra_slots))
    c.single_valued(label, loc, folder.multi_valued_slots)


def _check_association(c: _Checker, assoc: Association, submission_set_id: str | None) -> None:
    loc = assoc.entry_uuid
    label = f"Association {assoc.entry_uuid}"
    if assoc.association_type not in v.ASSOCIATION_TYPES:
        c.add(f"{label}: associationType {assoc.association_type!r} is not an XDS association type", loc)
    if not assoc.source or not assoc.target:
        c.add(f"{label}: sourceObject and targetObject are required", loc)
    if (
        assoc.association_type == v.HAS_MEMBER
        and assoc.source == submission_set_id
        and assoc.target
        and assoc.slots.get(v.SLOT_SUBMISSION_SET_STATUS) is not None
        and assoc.slots[v.SLOT_SUBMISSION_SET_STATUS] not in (["Original"], ["Reference"])
    ):
        c.add(f"{label}: SubmissionSetStatus must be Original or Reference", loc)
    if assoc.documentation and assoc.association_type not in v.DOCUMENT_RELATIONSHIPS:
        # ITI TF-3 §4.2.2.2.7: documentation belongs to relationship associations only (NIST 12370).
        c.add(
            f"{label}: an association documentation Classification is allowed on document "
            f"relationships only, not on {assoc.association_type}",
            loc,
        )
    for code in assoc.documentation:
        c.coded(label, loc, "association documentation", code)
    c.slot_lengths(label, loc, _extra_slot_values(assoc.slots))


def _code_slot_values(codes: Iterable[Code]) -> list[tuple[str, str | None]]:
    return [("codingScheme", code.scheme) for code in codes]


def _author_slot_values(authors: Iterable[Author]) -> list[tuple[str, str | None]]:
    values: list[tuple[str, str | None]] = []
    for author in authors:
        values.append(("authorPerson", author.person))
        values += [("authorInstitution", v) for v in author.institutions]
        values += [("authorRole", v) for v in author.roles]
        values += [("authorSpecialty", v) for v in author.specialties]
        values += [("authorTelecommunication", v) for v in author.telecommunications]
    return values


def _extra_slot_values(slots: dict[str, list[str]]) -> list[tuple[str, str | None]]:
    return [(name, value) for name, values in slots.items() for value in values]


def _document_slot_values(de: DocumentEntry) -> list[tuple[str, str | None]]:
    codes = (
        [
            c
            for c in (
                de.class_code,
                de.type_code,
                de.format_code,
                de.healthcare_facility_type_code,
                de.practice_setting_code,
            )
            if c is not None
        ]
        + de.confidentiality_codes
        + de.event_codes
    )
    return (
        [
            ("legalAuthenticator", de.legal_authenticator),
            ("sourcePatientId", de.source_patient_id),
            ("repositoryUniqueId", de.repository_unique_id),
        ]
        + [("sourcePatientInfo", v) for v in de.source_patient_info]
        + [("referenceIdList", v) for v in de.reference_ids]
        + _author_slot_values(de.authors)
        + _code_slot_values(codes)
        + _extra_slot_values(de.extra_slots)
    )


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.capitalize() for word in rest)


def metadata_error_code(transaction: Transaction) -> ErrorCode:
    # The repository checks an ITI-41 message before forwarding it: its metadata errors carry
    # the repository's code (ITI TF-2b §3.41.4.1.3).
    if transaction is Transaction.ITI41:
        return ErrorCode.REPOSITORY_METADATA_ERROR
    return ErrorCode.REGISTRY_METADATA_ERROR


def validate_submission(submission: Submission, transaction: Transaction) -> list[XdsError]:
    """Every rule of one ITI-41/42 message that needs nothing but the message."""
    c = _Checker(metadata_error_code(transaction))
    for problem in submission.problems:
        c.add(problem)
    ss = submission.submission_set
    if submission.submission_set_count != 1 or ss is None:
        c.add(f"a submission must contain exactly one SubmissionSet, this one has {submission.submission_set_count}")
    else:
        _check_submission_set(c, ss)
    for de in submission.documents:
        _check_document(c, de, transaction)
    for folder in submission.folders:
        _check_folder(c, folder)
    ss_id = ss.entry_uuid if ss else None
    for assoc in submission.associations:
        _check_association(c, assoc, ss_id)
    _check_ids(c, submission)
    _check_references(c, submission)
    _check_membership(c, submission)
    _check_relationships(c, submission, stored_sources=False)
    _check_patient_consistency(c, submission)
    for assoc in submission.associations:
        # NIST 21000: metadata update semantics belong to ITI-57, not to ITI-41/42.
        if assoc.association_type == v.UPDATE_AVAILABILITY_STATUS or v.SLOT_PREVIOUS_VERSION in assoc.slots:
            c.add(
                f"Association {assoc.entry_uuid}: {_update_what(assoc)} is an ITI-57 Update Document Set "
                "operation, not part of a registration",
                assoc.entry_uuid,
            )
    return c.errors


def _update_what(assoc: Association) -> str:
    if assoc.association_type == v.UPDATE_AVAILABILITY_STATUS:
        return "an availability status update"
    return "a new version (PreviousVersion slot)"


def validate_update(submission: Submission) -> list[XdsError]:
    """Every rule of one ITI-57 message that needs nothing but the message (ITI TF-2b §3.57.4.1.3).

    The operations: a new version of a DocumentEntry or Folder (the object with `lid`, linked
    to the SubmissionSet by a HasMember association with SubmissionSetStatus Original and
    PreviousVersion), an availability status change (UpdateAvailabilityStatus from the
    SubmissionSet, OriginalStatus and NewStatus), and new associations between stored objects.
    """
    c = _Checker(ErrorCode.REGISTRY_METADATA_ERROR)
    for problem in submission.problems:
        c.add(problem)
    ss = submission.submission_set
    if submission.submission_set_count != 1 or ss is None:
        c.add(f"an update must contain exactly one SubmissionSet, this one has {submission.submission_set_count}")
        return c.errors
    _check_submission_set(c, ss)
    for de in submission.documents:
        _check_document(c, de, Transaction.ITI42)
    for folder in submission.folders:
        _check_folder(c, folder)
    for assoc in submission.associations:
        _check_association(c, assoc, ss.entry_uuid)
    _check_ids(c, submission)
    _check_relationships(c, submission, stored_sources=True)
    _check_patient_consistency(c, submission)
    _check_versions(c, submission, ss)
    for assoc in submission.associations:
        if assoc.association_type == v.UPDATE_AVAILABILITY_STATUS:
            _check_status_update(c, assoc, ss)
    return c.errors


def _single(assoc: Association, name: str) -> str | None:
    values = assoc.slots.get(name)
    return values[0] if values is not None and len(values) == 1 else None


def _check_versions(c: _Checker, submission: Submission, ss: SubmissionSet) -> None:
    operation = ErrorCode.METADATA_UPDATE_OPERATION_ERROR
    links = {
        a.target: a for a in submission.associations if a.association_type == v.HAS_MEMBER and a.source == ss.entry_uuid
    }
    logical_ids: Counter[str] = Counter()
    objects: list[tuple[str, DocumentEntry | Folder]] = [("DocumentEntry", d) for d in submission.documents]
    objects += [("Folder", f) for f in submission.folders]
    for kind, obj in objects:
        label = _label(kind, obj.entry_uuid, obj.unique_id)
        if not obj.logical_id or obj.logical_id == obj.entry_uuid:
            # NIST 15800c, 20000b: a first version is registered by ITI-41/42.
            c.add(
                f"{label}: ITI-57 makes new versions of registered objects only; give the logical id "
                "(lid) of the registered object",
                obj.entry_uuid,
                ErrorCode.METADATA_UPDATE_ERROR,
            )
            continue
        logical_ids[obj.logical_id] += 1
        link = links.get(obj.entry_uuid)
        if link is None:
            continue  # reported by the membership check
        for name in link.slots:
            if name not in (v.SLOT_SUBMISSION_SET_STATUS, v.SLOT_PREVIOUS_VERSION, v.SLOT_ASSOCIATION_PROPAGATION):
                c.add(
                    f"{label}: slot {name} has no meaning on the HasMember of a new version", link.entry_uuid, operation
                )
        status = _single(link, v.SLOT_SUBMISSION_SET_STATUS)
        # A SubmissionSet's HasMember to a Folder carries no SubmissionSetStatus (ITI TF-3 §4.2.2.1.1).
        if status != "Original" and (kind == "DocumentEntry" or v.SLOT_SUBMISSION_SET_STATUS in link.slots):
            c.add(
                f"{label}: the HasMember of a new version needs SubmissionSetStatus Original",
                link.entry_uuid,
                operation,
            )
        previous = _single(link, v.SLOT_PREVIOUS_VERSION)
        if previous is None or not previous.isdigit():
            c.add(
                f"{label}: the HasMember of a new version needs PreviousVersion, a version number",
                link.entry_uuid,
                operation,
            )
        propagation = link.slots.get(v.SLOT_ASSOCIATION_PROPAGATION)
        if propagation is not None and propagation not in (["yes"], ["no"]):
            c.add(f"{label}: AssociationPropagation must be yes or no", link.entry_uuid, operation)
    for logical_id, count in logical_ids.items():
        if count > 1:
            # NIST 20007.
            c.add(f"{count} new versions of {logical_id} in one message", logical_id, operation)
    _check_membership(c, submission)


def _check_status_update(c: _Checker, assoc: Association, ss: SubmissionSet) -> None:
    operation = ErrorCode.METADATA_UPDATE_OPERATION_ERROR
    label = f"Association {assoc.entry_uuid}"
    if assoc.source != ss.entry_uuid:
        c.add(
            f"{label}: an UpdateAvailabilityStatus association goes from the SubmissionSet", assoc.entry_uuid, operation
        )
    for name in (v.SLOT_ORIGINAL_STATUS, v.SLOT_NEW_STATUS):
        value = _single(assoc, name)
        if value is None:
            c.add(f"{label}: UpdateAvailabilityStatus needs one {name}", assoc.entry_uuid, operation)
        elif value not in v.UPDATABLE_STATUSES:
            c.add(
                f"{label}: {name} {value} is not an availability status ({', '.join(sorted(v.UPDATABLE_STATUSES))})",
                assoc.entry_uuid,
                operation,
            )


def _check_ids(c: _Checker, submission: Submission) -> None:
    for obj_id, count in Counter(submission.all_ids()).items():
        if count > 1:
            c.add(f"id {obj_id} is used by {count} objects of the message", obj_id)
    unique_ids = [d.unique_id for d in submission.documents] + [f.unique_id for f in submission.folders]
    if submission.submission_set is not None:
        unique_ids.append(submission.submission_set.unique_id)
    for unique_id, count in Counter(u for u in unique_ids if u).items():
        if count > 1:
            c.add(
                f"uniqueId {unique_id} is given to {count} objects of the message",
                unique_id,
                ErrorCode.DUPLICATE_UNIQUE_ID_IN_MESSAGE,
            )


def _check_membership(c: _Checker, submission: Submission) -> None:
    ss = submission.submission_set
    if ss is None:
        return
    documents = {d.entry_uuid for d in submission.documents}
    for assoc in submission.associations:
        if assoc.association_type != v.HAS_MEMBER or assoc.source != ss.entry_uuid or assoc.target not in documents:
            continue
        # ITI TF-3 §4.2.2.1.1: the SubmissionSet's HasMember to a DocumentEntry says whether the
        # document is new (Original) or already registered (Reference).
        status = assoc.slots.get(v.SLOT_SUBMISSION_SET_STATUS)
        if status is None:
            c.add(
                f"Association {assoc.entry_uuid}: the HasMember from the SubmissionSet to DocumentEntry "
                f"{assoc.target} needs a SubmissionSetStatus slot (Original)",
                assoc.entry_uuid,
            )
        elif status == ["Reference"]:
            c.add(
                f"Association {assoc.entry_uuid}: SubmissionSetStatus Reference names a registered document, "
                f"but {assoc.target} is a DocumentEntry of this submission (Original)",
                assoc.entry_uuid,
            )
    members = {
        a.target for a in submission.associations if a.association_type == v.HAS_MEMBER and a.source == ss.entry_uuid
    }
    for de in submission.documents:
        if de.entry_uuid not in members:
            c.add(
                _label("DocumentEntry", de.entry_uuid, de.unique_id)
                + ": not a member of the SubmissionSet (no HasMember association)",
                de.entry_uuid,
            )
    for folder in submission.folders:
        if folder.entry_uuid not in members:
            c.add(
                _label("Folder", folder.entry_uuid, folder.unique_id)
                + ": not a member of the SubmissionSet (no HasMember association)",
                folder.entry_uuid,
            )


def _check_references(c: _Checker, submission: Submission) -> None:
    """An association's sourceObject and targetObject are objects of the message or UUIDs of
    registered objects (whose existence is registry/rules.py's question): a symbolic id names
    an object of the same message only (ebRS 3.0 §3.1.2)."""
    ids = set(submission.all_ids())
    for assoc in submission.associations:
        for end, ref in (("sourceObject", assoc.source), ("targetObject", assoc.target)):
            if ref and ref not in ids and not formats.is_uuid_urn(ref):
                c.add(
                    f"Association {assoc.entry_uuid}: {end} {ref} is neither an object of the message nor a "
                    "UUID (urn:uuid:...)",
                    assoc.entry_uuid,
                    ErrorCode.UNRESOLVED_REFERENCE,
                )


def _check_relationships(c: _Checker, submission: Submission, stored_sources: bool) -> None:
    """A document relationship (RPLC, APND, XFRM, XFRM_RPLC, signs) goes from a DocumentEntry of
    this submission to another DocumentEntry (ITI TF-3 §4.2.2.2), or, for `signs`, to the
    submission's own SubmissionSet (ITI TF-3 §5.5, Document Digital Signature); whether a stored target
    exists, is Approved and is the same patient's is registry/rules.py's question. ITI-57 may
    relate two stored documents (`stored_sources`)."""
    documents = {d.entry_uuid for d in submission.documents}
    others = {f.entry_uuid for f in submission.folders} | {a.entry_uuid for a in submission.associations}
    if submission.submission_set is not None:
        others.add(submission.submission_set.entry_uuid)
    for assoc in submission.associations:
        if assoc.association_type not in v.DOCUMENT_RELATIONSHIPS or not assoc.source or not assoc.target:
            continue
        label = f"Association {assoc.entry_uuid}"
        if assoc.source not in documents and not stored_sources:
            c.add(
                f"{label}: the source of a document relationship must be a DocumentEntry of the "
                f"submission, not {assoc.source}",
                assoc.entry_uuid,
            )
        # IHE DSG: a signature DocumentEntry `signs` the submission set it came with.
        signs_set = (
            assoc.association_type == v.SIGNS
            and submission.submission_set is not None
            and assoc.target == submission.submission_set.entry_uuid
        )
        if assoc.target in others and not signs_set:
            c.add(
                f"{label}: the target of a document relationship must be a DocumentEntry, not {assoc.target}",
                assoc.entry_uuid,
            )
        if assoc.target == assoc.source:
            c.add(f"{label}: a document cannot be related to itself", assoc.entry_uuid)


def _check_patient_consistency(c: _Checker, submission: Submission) -> None:
    ss = submission.submission_set
    if ss is None or not ss.patient_id:
        return
    objects: list[tuple[str, str, str | None]] = [
        (_label("DocumentEntry", d.entry_uuid, d.unique_id), d.entry_uuid, d.patient_id) for d in submission.documents
    ] + [(_label("Folder", f.entry_uuid, f.unique_id), f.entry_uuid, f.patient_id) for f in submission.folders]
    for label, loc, patient in objects:
        if patient and patient != ss.patient_id:
            c.add(
                f"{label}: patientId {patient} differs from the SubmissionSet's {ss.patient_id}",
                loc,
                ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
            )
