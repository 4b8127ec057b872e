"""Document-level rights: the DMP policy, through the security gate.

Every transaction of an authenticated request (`TransactionRequest.access`) sees a document's
versions as its latest version decides (`hidden_versions`): ITI-18 answers, ITI-43 retrievals,
and the snapshots of ITI-57 and ITI-62 below. Inside ITI-57 and ITI-62, two steps:

1. What the caller may not see is not there for them: objects of another patient than the
   VIHF's, and documents the policy hides (masked, invisible to the patient), are left out of
   the registry snapshot, so that the XDS rules answer them exactly as unknown ones and a
   guessed id reveals nothing.
2. What they see, they change only as `policy.document_action` decides, document by document:
   one refusal refuses the whole request (all or nothing), with an `XDSRegistryError` naming
   the document and the reason. Every decision, allowed or not, goes into the access trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dmp_xds.dmp.policy import Action
from dmp_xds.security import vocabulary as sv
from dmp_xds.services.context import Services, TransactionResult
from dmp_xds.services.gate import DocumentAccess
from dmp_xds.services.register import registry_response
from dmp_xds.storage import trail as t
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode, XdsError, error
from dmp_xds.xds.model import KIND_DOCUMENT_ENTRY, DocumentEntry, Submission


@dataclass
class Outcome:
    """What a change request did, for the response and the access trace."""

    errors: list[XdsError] = field(default_factory=list)
    touched: tuple[str, ...] = ()  # uniqueIds of the documents changed (or refused)
    decisions: tuple[str, ...] = ()
    denied: bool = False

    def result(self) -> TransactionResult:
        return TransactionResult(
            registry_response(self.errors), touched=self.touched, decisions=self.decisions, denied=self.denied
        )


def hidden_versions(
    access: DocumentAccess, patients: Mapping[str, str | None], latest: Mapping[str, DocumentEntry]
) -> set[str]:
    """Of the DocumentEntries `patients` (entryUUID -> its patient id), those the caller may not
    see, each judged by the latest version of its document (`latest`: entryUUID -> that
    version, as `RegistryStore.latest_versions` reads it for all of them at once)."""
    return {uuid for uuid, patient in patients.items() if not access.shows(patient, latest.get(uuid))}


def hidden_objects(
    services: Services, access: DocumentAccess, objects: Mapping[str, tuple[str, str | None]]
) -> tuple[set[str], dict[str, DocumentEntry]]:
    """Of `objects` (entryUUID -> (kind, patient id or None)): those the caller may not see, and
    the DocumentEntries among them all (read once, for the decisions that follow)."""
    documents = [uuid for uuid, (kind, _) in objects.items() if kind == KIND_DOCUMENT_ENTRY]
    entries = {e.entry_uuid: e for e in services.registry.get_document_entries(documents)}
    hidden = {uuid for uuid, (_, patient) in objects.items() if patient is not None and patient != access.patient_id}
    hidden |= hidden_versions(
        access, {uuid: objects[uuid][1] for uuid in entries}, services.registry.latest_versions(documents)
    )
    return hidden, entries


def masking_action(before: DocumentEntry, after: DocumentEntry) -> Action:
    """What a new version of a DocumentEntry does, as the policy names it: masking when it adds
    MASQUE_PS, unmasking when it takes it away, showing to the patient when it takes away
    INVISIBLE_PATIENT (TD3.3b), any other metadata change otherwise."""

    def has(entry: DocumentEntry, code: tuple[str, str]) -> bool:
        return any((c.scheme, c.code) == code for c in entry.confidentiality_codes)

    masked = sv.MASKED_FROM_PROFESSIONALS
    if has(after, masked) and not has(before, masked):
        return Action.MASK
    if has(before, masked) and not has(after, masked):
        return Action.UNMASK
    if has(before, sv.INVISIBLE_TO_PATIENT) and not has(after, sv.INVISIBLE_TO_PATIENT):
        return Action.SHOW_TO_PATIENT
    return Action.UPDATE


def status_action(new_status: str) -> Action:
    """What a change of availability status is, as the policy names it: a deletion (TD3.3c) when
    the document becomes Deleted, else archiving or unarchiving (TD3.3d; IHE's Deprecated too)."""
    return Action.DELETE if new_status == v.STATUS_DELETED else Action.CHANGE_STATUS


def judge(access: DocumentAccess, changes: Sequence[tuple[DocumentEntry, Action]]) -> Outcome:
    """The policy's decision for each document change; the refusals as XDS errors."""
    notes: list[str] = []
    errors: list[XdsError] = []
    for entry, action in changes:
        decision = access.decide(entry, action)
        label = entry.unique_id or entry.entry_uuid
        notes.append(f"{action.value} {label}: {'allowed' if decision.allowed else 'refused'}, {decision.reason}")
        if not decision.allowed:
            errors.append(
                error(
                    ErrorCode.REGISTRY_ERROR,
                    f"access refused: {action.value.replace('-', ' ')} of document {label}: {decision.reason}",
                    entry.entry_uuid,
                )
            )
    return Outcome(errors, unique_ids(entry for entry, _ in changes), tuple(notes), bool(errors))


def unique_ids(entries: Iterable[DocumentEntry]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(e.unique_id or e.entry_uuid for e in entries))


def submission_result(
    submission: Submission | None, errors: Sequence[XdsError], decisions: tuple[str, ...] = ()
) -> TransactionResult:
    """The answer to a submission (ITI-41/42) and what the trace keeps of it: the documents it
    added; or, refused, the documents it tried to add and each error's code and rule
    (`trail.refusal_notes`), so that the establishment's dashboard lists what to fix and resend."""
    documents = unique_ids(submission.documents) if submission is not None else ()
    refused = [e for e in errors if e.is_error]
    if refused:
        decisions = (*decisions, *t.refusal_notes([(e.code.value, e.context) for e in refused]))
    return TransactionResult(registry_response(errors), touched=documents, decisions=decisions)
