"""ITI-62 Delete Document Set rules (ITI TF-2b §3.62.4.1.3), pure.

`plan_delete` takes the entryUUIDs of the request's ObjectRefList and a `DeleteSnapshot` of
what the registry holds around them, and returns what to delete, or the errors. Nothing is
deleted implicitly: an association is removed only when the request names it, so that a
deletion never changes more than the caller asked for. The rules, all checked before any
write (all or nothing):

- every id names a registered DocumentEntry, SubmissionSet, Folder or Association, else
  UnresolvedReferenceException (the code of the profile and of NIST test 30000);
- no association left in the registry may refer to a deleted object, whichever its end,
  else ReferencesExistException (a SubmissionSet without its HasMember associations, a
  document still appended to, replaced by, or in a folder...);
- a deletion may not leave behind an emptied SubmissionSet (all its associations deleted, not
  itself), nor an object that belonged to SubmissionSets and would belong to none, else
  XDSUnreferencedObjectException (NIST tests 30001-30003).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode, XdsError, error
from dmp_xds.xds.model import KIND_ASSOCIATION, KIND_DOCUMENT_ENTRY, KIND_FOLDER, KIND_SUBMISSION_SET

# The order rows go: associations first, so that no moment of the transaction has an
# association naming a deleted object.
DELETE_ORDER = (KIND_ASSOCIATION, KIND_DOCUMENT_ENTRY, KIND_FOLDER, KIND_SUBMISSION_SET)


@dataclass(frozen=True)
class Link:
    """A stored association, by its ends."""

    entry_uuid: str
    association_type: str
    source: str
    target: str


@dataclass(frozen=True)
class DeleteSnapshot:
    """What the registry holds around one deletion request (store.RegistryStore.delete_snapshot).

    `kinds` has the requested ids that are registered and every end of `links`; `links` has
    every association that names a requested id (as itself, its source or its target) or an
    end of a requested association, which is all the rules look at.
    """

    kinds: dict[str, str]  # entryUUID -> KIND_*
    links: dict[str, Link]  # entryUUID -> association


@dataclass(frozen=True)
class DeletePlan:
    """The objects to delete, by kind, in DELETE_ORDER."""

    objects: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def ids(self) -> list[str]:
        return [uuid for _, ids in self.objects for uuid in ids]

    def of_kind(self, kind: str) -> tuple[str, ...]:
        return next((ids for k, ids in self.objects if k == kind), ())


def plan_delete(requested: Sequence[str], snapshot: DeleteSnapshot) -> tuple[DeletePlan | None, list[XdsError]]:
    wanted = list(dict.fromkeys(requested))
    if not wanted:
        return None, [error(ErrorCode.REGISTRY_METADATA_ERROR, "the ObjectRefList names no object to delete")]
    unknown = [uuid for uuid in wanted if uuid not in snapshot.kinds]
    if unknown:
        return None, [error(ErrorCode.UNRESOLVED_REFERENCE, f"{uuid} is not registered", uuid) for uuid in unknown]
    removed = set(wanted)
    errors = _remaining_references(removed, snapshot) + _left_unreferenced(removed, snapshot)
    if errors:
        return None, errors
    by_kind = tuple((kind, tuple(u for u in wanted if snapshot.kinds[u] == kind)) for kind in DELETE_ORDER)
    return DeletePlan(by_kind), []


def _remaining_references(removed: set[str], snapshot: DeleteSnapshot) -> list[XdsError]:
    """Associations kept that would name a deleted object."""
    errors: list[XdsError] = []
    for link in snapshot.links.values():
        if link.entry_uuid in removed:
            continue
        for end in (link.source, link.target):
            if end in removed:
                errors.append(
                    error(
                        ErrorCode.REFERENCES_EXIST,
                        f"{_kind(snapshot, end)} {end} is referenced by {_short(link.association_type)} association "
                        f"{link.entry_uuid}, which the request does not delete",
                        end,
                    )
                )
    return errors


def _left_unreferenced(removed: set[str], snapshot: DeleteSnapshot) -> list[XdsError]:
    """SubmissionSets emptied, and SubmissionSet members orphaned, by the deleted associations."""
    kept = [link for link in snapshot.links.values() if link.entry_uuid not in removed]
    deleted = [link for link in snapshot.links.values() if link.entry_uuid in removed]
    errors: list[XdsError] = []
    emptied = {
        link.source
        for link in deleted
        if snapshot.kinds.get(link.source) == KIND_SUBMISSION_SET and link.source not in removed
    }
    for ss in sorted(emptied):
        if not any(link.source == ss for link in kept):
            errors.append(
                error(
                    ErrorCode.UNREFERENCED_OBJECT,
                    f"SubmissionSet {ss} would be left with no member: delete it with them",
                    ss,
                )
            )
    orphaned = {link.target for link in deleted if _is_membership(link, snapshot) and link.target not in removed}
    for member in sorted(orphaned):
        if not any(link.target == member and _is_membership(link, snapshot) for link in kept):
            errors.append(
                error(
                    ErrorCode.UNREFERENCED_OBJECT,
                    f"{_kind(snapshot, member)} {member} would belong to no SubmissionSet: "
                    "delete it with its HasMember association",
                    member,
                )
            )
    return errors


def _is_membership(link: Link, snapshot: DeleteSnapshot) -> bool:
    return link.association_type == v.HAS_MEMBER and snapshot.kinds.get(link.source) == KIND_SUBMISSION_SET


def _kind(snapshot: DeleteSnapshot, uuid: str) -> str:
    return snapshot.kinds.get(uuid, "object")


def _short(association_type: str) -> str:
    return association_type.rsplit(":", 1)[-1]
