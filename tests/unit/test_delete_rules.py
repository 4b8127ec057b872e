"""ITI-62 deletion rules, pure: the NIST reg_rm situations (30000-30008) on small snapshots;
the request forms the transaction accepts."""

from __future__ import annotations

import pytest
from lxml import etree

from dmp_xds.services.iti62 import decode_remove_objects_request
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode
from dmp_xds.xds.model import KIND_ASSOCIATION, KIND_DOCUMENT_ENTRY, KIND_FOLDER, KIND_SUBMISSION_SET
from dmp_xds.xds.registry.delete_rules import DELETE_ORDER, DeleteSnapshot, Link, plan_delete

SS, DE, FOL = "urn:uuid:ss", "urn:uuid:de", "urn:uuid:fol"
SS2, DE2 = "urn:uuid:ss2", "urn:uuid:de2"
HM_DE, HM_FOL, FOL_DE, HM_FOL_DE = "urn:uuid:hm-de", "urn:uuid:hm-fol", "urn:uuid:fol-de", "urn:uuid:hm-fol-de"
HM_DE2, APND = "urn:uuid:hm-de2", "urn:uuid:apnd"


def snapshot(*links: Link, **kinds: str) -> DeleteSnapshot:
    known = {
        SS: KIND_SUBMISSION_SET,
        SS2: KIND_SUBMISSION_SET,
        DE: KIND_DOCUMENT_ENTRY,
        DE2: KIND_DOCUMENT_ENTRY,
        FOL: KIND_FOLDER,
    }
    known.update({link.entry_uuid: KIND_ASSOCIATION for link in links})
    known.update(kinds)
    return DeleteSnapshot(known, {link.entry_uuid: link for link in links})


def hm(entry_uuid: str, source: str, target: str) -> Link:
    return Link(entry_uuid, v.HAS_MEMBER, source, target)


ONE_DOCUMENT = snapshot(hm(HM_DE, SS, DE))
# NIST 30003: a SubmissionSet with a document in a folder.
FOLDER_WITH_DOCUMENT = snapshot(hm(HM_DE, SS, DE), hm(HM_FOL, SS, FOL), hm(FOL_DE, FOL, DE), hm(HM_FOL_DE, SS, FOL_DE))
# NIST 30004: a second submission appends to the first document.
APPENDED = snapshot(hm(HM_DE, SS, DE), hm(HM_DE2, SS2, DE2), Link(APND, v.APND, DE2, DE))


def codes(requested: list[str], snap: DeleteSnapshot) -> list[str]:
    plan, errors = plan_delete(requested, snap)
    assert (plan is None) == bool(errors)
    return [e.code.value for e in errors]


def test_unknown_id_is_an_unresolved_reference() -> None:
    plan, errors = plan_delete([DE, "urn:uuid:nowhere"], ONE_DOCUMENT)
    assert plan is None
    assert [(e.code, e.location) for e in errors] == [(ErrorCode.UNRESOLVED_REFERENCE, "urn:uuid:nowhere")]


def test_empty_request_is_a_metadata_error() -> None:
    assert codes([], ONE_DOCUMENT) == ["XDSRegistryMetadataError"]


def test_submission_set_alone_is_still_referenced() -> None:
    """NIST 30001/30002 step 1."""
    plan, errors = plan_delete([SS], ONE_DOCUMENT)
    assert plan is None and [(e.code, e.location) for e in errors] == [(ErrorCode.REFERENCES_EXIST, SS)]
    assert HM_DE in errors[0].context


def test_members_without_their_submission_set_leave_it_empty() -> None:
    """NIST 30001 step 2."""
    assert codes([DE, HM_DE], ONE_DOCUMENT) == ["XDSUnreferencedObjectException"]


def test_whole_submission_is_deleted_associations_first() -> None:
    plan, errors = plan_delete([SS, DE, HM_DE, DE], ONE_DOCUMENT)
    assert errors == [] and plan is not None
    assert plan.objects == tuple(zip(DELETE_ORDER, [(HM_DE,), (DE,), (), (SS,)], strict=True))
    assert plan.ids == [HM_DE, DE, SS]


def test_folder_and_document_without_the_submission_set() -> None:
    """NIST 30003: everything but the SubmissionSet empties it; the SubmissionSet alone is
    referenced; the folder membership (and its own HasMember) may go alone."""
    everything_but_ss = [DE, FOL, HM_DE, HM_FOL, HM_FOL_DE, FOL_DE]
    assert codes(everything_but_ss, FOLDER_WITH_DOCUMENT) == ["XDSUnreferencedObjectException"]
    assert set(codes([SS], FOLDER_WITH_DOCUMENT)) == {"ReferencesExistException"}
    assert codes([FOL_DE, HM_FOL_DE], FOLDER_WITH_DOCUMENT) == []


def test_folder_membership_without_its_own_has_member() -> None:
    """The SubmissionSet's HasMember of the Folder->Document association still names it."""
    assert codes([FOL_DE], FOLDER_WITH_DOCUMENT) == ["ReferencesExistException"]


def test_has_member_alone_orphans_its_target() -> None:
    assert codes([HM_FOL_DE], FOLDER_WITH_DOCUMENT) == ["XDSUnreferencedObjectException"]


def test_document_in_a_folder_needs_its_folder_association() -> None:
    errors = plan_delete([DE, HM_DE], FOLDER_WITH_DOCUMENT)[1]
    assert [(e.code, e.location) for e in errors] == [(ErrorCode.REFERENCES_EXIST, DE)]
    assert FOL_DE in errors[0].context


def test_appended_document_keeps_its_original() -> None:
    """NIST 30004 and 30008: the original set cannot go while the APND names it; the
    appending set can, with its APND; the APND alone can."""
    assert codes([DE, HM_DE, SS], APPENDED) == ["ReferencesExistException"]
    assert codes([APND, DE2, HM_DE2, SS2], APPENDED) == []
    assert codes([APND], APPENDED) == []
    assert codes([DE2, HM_DE2, SS2], APPENDED) == ["ReferencesExistException"]


@pytest.mark.parametrize("relation", [v.RPLC, v.XFRM_RPLC])
def test_replacement_goes_with_or_after_its_relation(relation: str) -> None:
    """NIST 30005-30007: the replacement set alone is referenced by the RPLC; the original
    with the RPLC can go; all three sets at once can go."""
    snap = snapshot(hm(HM_DE, SS, DE), hm(HM_DE2, SS2, DE2), Link("urn:uuid:rplc", relation, DE2, DE))
    assert codes([DE2, HM_DE2, SS2], snap) == ["ReferencesExistException"]
    assert codes(["urn:uuid:rplc", DE, HM_DE, SS], snap) == []
    assert codes([DE, HM_DE, SS, "urn:uuid:rplc", DE2, HM_DE2, SS2], snap) == []


def test_availability_status_change_association_names_its_target() -> None:
    """An ITI-57 UpdateAvailabilityStatus association (source: its SubmissionSet) still names
    the document: it is deleted with it, and its SubmissionSet with them."""
    snap = snapshot(hm(HM_DE, SS, DE), Link("urn:uuid:uas", v.UPDATE_AVAILABILITY_STATUS, SS2, DE))
    assert codes([DE, HM_DE, SS], snap) == ["ReferencesExistException"]
    assert codes([DE, HM_DE, SS, "urn:uuid:uas"], snap) == ["XDSUnreferencedObjectException"]
    assert codes([DE, HM_DE, SS, "urn:uuid:uas", SS2], snap) == []


def remove_request(body: str, **attributes: str) -> etree._Element:
    payload = etree.fromstring(
        f'<lcm:RemoveObjectsRequest xmlns:lcm="{v.NS_LCM}" xmlns:rim="{v.NS_RIM}">{body}</lcm:RemoveObjectsRequest>'
    )
    for name, value in attributes.items():
        payload.set(name, value)
    return payload


def test_request_names_its_objects_in_an_object_ref_list() -> None:
    ids, errors = decode_remove_objects_request(
        remove_request(
            f'<rim:ObjectRefList><rim:ObjectRef id="{DE}"/><rim:ObjectRef id=" {SS} "/></rim:ObjectRefList>',
            deletionScope=v.DELETION_SCOPE_DELETE_ALL,
        )
    )
    assert (ids, errors) == ([DE, SS], [])


@pytest.mark.parametrize(
    "body, attributes",
    [
        ('<rim:AdhocQuery id="urn:uuid:q"/><rim:ObjectRefList/>', {}),
        ("<rim:ObjectRefList/>", {"deletionScope": "urn:oasis:names:tc:ebxml-regrep:DeletionScopeType:DeprecateAll"}),
        ("", {}),
        ('<rim:ObjectRefList><rim:ObjectRef id=""/></rim:ObjectRefList>', {}),
    ],
    ids=["adhoc-query", "deletion-scope", "no-list", "empty-id"],
)
def test_other_request_forms_are_metadata_errors(body: str, attributes: dict[str, str]) -> None:
    ids, errors = decode_remove_objects_request(remove_request(body, **attributes))
    assert ids == [] and [e.code for e in errors] == [ErrorCode.REGISTRY_METADATA_ERROR]
