"""Model -> ebRIM 3.0 XML.

On the hot path (every query response, every RegistryResponse): elements are built directly
with `etree.SubElement` and pre-qualified tag names; the namespace map is one module constant
given to the root element only.

Child order follows the ebRIM 3.0 schema (RegistryObjectType): rim:Slot*, rim:Name?,
rim:Description?, rim:VersionInfo?, rim:Classification*, rim:ExternalIdentifier*.

Every `encode_*` function takes an optional `parent`: given, the element is appended to it
(no namespace declarations repeated); absent, a standalone element declaring the
rim/rs/lcm/query/xdsb prefixes is returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence

from lxml import etree

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.mapping import DOCUMENT_ENTRY, FOLDER, SUBMISSION_SET, ObjectKind
from dmp_xds.xds.errors import Severity, XdsError
from dmp_xds.xds.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    LocalizedString,
    ObjectRef,
    Submission,
    SubmissionSet,
)

RegistryObject = DocumentEntry | SubmissionSet | Folder | Association | ObjectRef
Entry = DocumentEntry | SubmissionSet | Folder

_NSMAP = dict(v.NSMAP)  # one copy, built once, shared by every standalone root
_SubElement = etree.SubElement


def _new(tag: str, parent: etree._Element | None, attrib: dict[str, str]) -> etree._Element:
    if parent is None:
        return etree.Element(tag, attrib, nsmap=_NSMAP)
    return _SubElement(parent, tag, attrib)


def _new_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


# --- building blocks ---------------------------------------------------------------------------


def _slot(parent: etree._Element, name: str, values: Iterable[str]) -> None:
    value_list = _SubElement(_SubElement(parent, v.TAG_SLOT, name=name), v.TAG_VALUE_LIST)
    for value in values:
        _SubElement(value_list, v.TAG_VALUE).text = value


def _localized(parent: etree._Element, tag: str, strings: Sequence[LocalizedString]) -> None:
    if not strings:
        return
    holder = _SubElement(parent, tag)
    for string in strings:
        attrib = {"value": string.value}
        if string.lang is not None:
            attrib[v.ATTR_XML_LANG] = string.lang
        if string.charset is not None:
            attrib["charset"] = string.charset
        _SubElement(holder, v.TAG_LOCALIZED_STRING, attrib)


def _name(parent: etree._Element, text: str) -> None:
    _SubElement(_SubElement(parent, v.TAG_NAME), v.TAG_LOCALIZED_STRING, value=text)


def _classification(
    parent: etree._Element, classification_id: str | None, scheme: str, target: str, code: str
) -> etree._Element:
    return _SubElement(
        parent,
        v.TAG_CLASSIFICATION,
        {
            "id": classification_id or _new_id(),
            "classificationScheme": scheme,
            "classifiedObject": target,
            "nodeRepresentation": code,
            "objectType": v.OBJECT_TYPE_CLASSIFICATION,
        },
    )


def _code(parent: etree._Element, code: Code, scheme: str, target: str) -> None:
    element = _classification(parent, code.classification_id, scheme, target, code.code)
    if code.scheme:
        _slot(element, v.SLOT_CODING_SCHEME, (code.scheme,))
    if code.display:
        _name(element, code.display)


def _author(parent: etree._Element, author: Author, scheme: str, target: str) -> None:
    element = _classification(parent, author.classification_id, scheme, target, "")
    if author.person is not None:
        _slot(element, v.SLOT_AUTHOR_PERSON, (author.person,))
    for name, values in (
        (v.SLOT_AUTHOR_INSTITUTION, author.institutions),
        (v.SLOT_AUTHOR_ROLE, author.roles),
        (v.SLOT_AUTHOR_SPECIALTY, author.specialties),
        (v.SLOT_AUTHOR_TELECOMMUNICATION, author.telecommunications),
    ):
        if values:
            _slot(element, name, values)


def node_classification(
    parent: etree._Element, classification_id: str | None, node: str, target: str
) -> etree._Element:
    """A `rim:Classification` marking `target` with a classification node (SS, Folder...)."""
    return _SubElement(
        parent,
        v.TAG_CLASSIFICATION,
        {
            "id": classification_id or _new_id(),
            "classificationNode": node,
            "classifiedObject": target,
            "objectType": v.OBJECT_TYPE_CLASSIFICATION,
        },
    )


def _external_identifier(
    parent: etree._Element, identifier_id: str | None, scheme: str, target: str, value: str
) -> None:
    element = _SubElement(
        parent,
        v.TAG_EXTERNAL_IDENTIFIER,
        {
            "id": identifier_id or _new_id(),
            "registryObject": target,
            "identificationScheme": scheme,
            "value": value,
            "objectType": v.OBJECT_TYPE_EXTERNAL_IDENTIFIER,
        },
    )
    _name(element, v.EXTERNAL_IDENTIFIER_NAMES[scheme])


def _object_attributes(obj: Entry, attrib: dict[str, str]) -> dict[str, str]:
    if obj.status is not None:
        attrib["status"] = obj.status
    if obj.home_community_id is not None:
        attrib["home"] = obj.home_community_id
    return attrib


# --- the parts of a registry object, in schema order --------------------------------------------


def _slots(element: etree._Element, obj: Entry, kind: ObjectKind) -> None:
    for spec in kind.slots:
        value = getattr(obj, spec.field)
        if spec.multi:
            if value:
                _slot(element, spec.slot, value)
        elif value is not None:
            _slot(element, spec.slot, (str(value),))
    for name, values in obj.extra_slots.items():
        _slot(element, name, values)


def _texts(element: etree._Element, obj: Entry, version: str | None) -> None:
    _localized(element, v.TAG_NAME, obj.title)
    _localized(element, v.TAG_DESCRIPTION, obj.comments)
    if version is not None:
        _SubElement(element, v.TAG_VERSION_INFO, versionName=version)


def _classifications(element: etree._Element, obj: Entry, kind: ObjectKind, authors: Sequence[Author]) -> None:
    target = obj.entry_uuid
    if kind.author_scheme is not None:
        for author in authors:
            _author(element, author, kind.author_scheme, target)
    for spec in kind.codes:
        value = getattr(obj, spec.field)
        if spec.multi:
            for code in value:
                _code(element, code, spec.scheme, target)
        elif value is not None:
            _code(element, value, spec.scheme, target)
    if obj.limited_metadata:
        node_classification(element, None, kind.limited_metadata_node, target)


def _identifiers(element: etree._Element, obj: Entry, kind: ObjectKind) -> None:
    for spec in kind.identifiers:
        value = getattr(obj, spec.field)
        if value is not None:
            _external_identifier(element, getattr(obj, spec.id_field), spec.scheme, obj.entry_uuid, value)


# --- public encoders ---------------------------------------------------------------------------


def encode_document_entry(entry: DocumentEntry, parent: etree._Element | None = None) -> etree._Element:
    """A DocumentEntry as `rim:ExtrinsicObject`."""
    attrib = {"id": entry.entry_uuid}
    if entry.logical_id is not None:
        attrib["lid"] = entry.logical_id
    if entry.object_type:
        attrib["objectType"] = entry.object_type
    if entry.mime_type is not None:
        attrib["mimeType"] = entry.mime_type
    element = _new(v.TAG_EXTRINSIC_OBJECT, parent, _object_attributes(entry, attrib))
    _slots(element, entry, DOCUMENT_ENTRY)
    _texts(element, entry, entry.version)
    _classifications(element, entry, DOCUMENT_ENTRY, entry.authors)
    _identifiers(element, entry, DOCUMENT_ENTRY)
    return element


def encode_submission_set(
    submission_set: SubmissionSet,
    parent: etree._Element | None = None,
    *,
    nest_node: bool = True,
) -> etree._Element:
    """A SubmissionSet as `rim:RegistryPackage`.

    With `nest_node` (the default, as registries answer queries) the SubmissionSet node
    classification is inside the package; without it the caller emits it at top level
    (`node_classification`), as document sources usually do.
    """
    element = _package(submission_set, parent)
    _slots(element, submission_set, SUBMISSION_SET)
    _texts(element, submission_set, None)
    if nest_node:
        _node_of(element, submission_set, v.SUBMISSION_SET_NODE)
    _classifications(element, submission_set, SUBMISSION_SET, submission_set.authors)
    _identifiers(element, submission_set, SUBMISSION_SET)
    return element


def encode_folder(folder: Folder, parent: etree._Element | None = None, *, nest_node: bool = True) -> etree._Element:
    """A Folder as `rim:RegistryPackage` (see `encode_submission_set` for `nest_node`)."""
    element = _package(folder, parent)
    _slots(element, folder, FOLDER)
    _texts(element, folder, folder.version)
    if nest_node:
        _node_of(element, folder, v.FOLDER_NODE)
    _classifications(element, folder, FOLDER, ())
    _identifiers(element, folder, FOLDER)
    return element


def _package(obj: SubmissionSet | Folder, parent: etree._Element | None) -> etree._Element:
    attrib = {"id": obj.entry_uuid}
    if isinstance(obj, Folder) and obj.logical_id is not None:
        attrib["lid"] = obj.logical_id
    attrib["objectType"] = v.OBJECT_TYPE_REGISTRY_PACKAGE
    return _new(v.TAG_REGISTRY_PACKAGE, parent, _object_attributes(obj, attrib))


def _node_of(parent: etree._Element, obj: SubmissionSet | Folder, node: str) -> None:
    node_classification(parent, obj.classification_id, node, obj.entry_uuid)


def encode_association(association: Association, parent: etree._Element | None = None) -> etree._Element:
    """An Association as `rim:Association` (its slots in order; no Name/Description in XDS)."""
    attrib = {
        "id": association.entry_uuid,
        "associationType": association.association_type,
        "sourceObject": association.source,
        "targetObject": association.target,
        "objectType": v.OBJECT_TYPE_ASSOCIATION,
    }
    if association.status is not None:
        attrib["status"] = association.status
    if association.home_community_id is not None:
        attrib["home"] = association.home_community_id
    element = _new(v.TAG_ASSOCIATION, parent, attrib)
    for name, values in association.slots.items():
        _slot(element, name, values)
    for code in association.documentation:
        _code(element, code, v.ASSOCIATION_DOCUMENTATION, association.entry_uuid)
    return element


def encode_object_ref(ref: ObjectRef, parent: etree._Element | None = None) -> etree._Element:
    attrib = {"id": ref.id}
    if ref.home_community_id is not None:
        attrib["home"] = ref.home_community_id
    return _new(v.TAG_OBJECT_REF, parent, attrib)


# Looked up by the object's own class: each encoder is given the class it takes.
_ENCODERS: dict[type, Callable[..., etree._Element]] = {
    DocumentEntry: encode_document_entry,
    SubmissionSet: encode_submission_set,
    Folder: encode_folder,
    Association: encode_association,
    ObjectRef: encode_object_ref,
}


def encode_registry_object_list(
    objects: Iterable[RegistryObject], parent: etree._Element | None = None
) -> etree._Element:
    """A `rim:RegistryObjectList` of the objects, in the order given (query responses)."""
    element = _new(v.TAG_REGISTRY_OBJECT_LIST, parent, {})
    for obj in objects:
        encoder = _ENCODERS.get(type(obj))
        if encoder is None:
            raise TypeError(f"cannot encode {type(obj).__name__} as an ebRIM registry object")
        encoder(obj, element)
    return element


def encode_submit_objects_request(submission: Submission) -> etree._Element:
    """An `lcm:SubmitObjectsRequest`: SubmissionSet and its node classification, documents,
    folders and theirs, associations, object references."""
    root = etree.Element(v.TAG_SUBMIT_OBJECTS_REQUEST, nsmap=_NSMAP)
    object_list = _SubElement(root, v.TAG_REGISTRY_OBJECT_LIST)
    submission_set = submission.submission_set
    if submission_set is not None:
        encode_submission_set(submission_set, object_list, nest_node=False)
        _node_of(object_list, submission_set, v.SUBMISSION_SET_NODE)
    for entry in submission.documents:
        encode_document_entry(entry, object_list)
    for folder in submission.folders:
        encode_folder(folder, object_list, nest_node=False)
        _node_of(object_list, folder, v.FOLDER_NODE)
    for association in submission.associations:
        encode_association(association, object_list)
    for ref in submission.object_refs:
        encode_object_ref(ref, object_list)
    return root


# --- responses ---------------------------------------------------------------------------------


def encode_registry_error_list(errors: Sequence[XdsError], parent: etree._Element) -> etree._Element | None:
    """Append an `rs:RegistryErrorList` to `parent` (RegistryResponse, AdhocQueryResponse...);
    nothing when there are no errors."""
    if not errors:
        return None
    highest = Severity.ERROR if any(e.is_error for e in errors) else Severity.WARNING
    error_list = _SubElement(parent, v.TAG_REGISTRY_ERROR_LIST, highestSeverity=highest.value)
    for error in errors:
        _SubElement(
            error_list,
            v.TAG_REGISTRY_ERROR,
            {
                "errorCode": error.code.value,
                "codeContext": error.context,
                "location": error.location,
                "severity": error.severity.value,
            },
        )
    return error_list


def encode_registry_response(
    status: str, errors: Sequence[XdsError] = (), parent: etree._Element | None = None
) -> etree._Element:
    """`rs:RegistryResponse status=...` with its error list: the answer of ITI-41/42/57/62."""
    element = _new(v.TAG_REGISTRY_RESPONSE, parent, {"status": status})
    encode_registry_error_list(errors, element)
    return element


def encode_adhoc_query_response(
    status: str, objects: Iterable[RegistryObject] = (), errors: Sequence[XdsError] = ()
) -> etree._Element:
    """`query:AdhocQueryResponse status=...` (ITI-18): the error list first, then the
    `rim:RegistryObjectList` of full objects (LeafClass) or `rim:ObjectRef`s, as ebRS 3.0
    orders the children of a RegistryResponse. `startIndex` and `totalResultCount` say the
    answer is whole (ebRS 3.0: no paging here), as the DMP's TD3.1 answer does."""
    objects = list(objects)
    attributes = {"status": status, "startIndex": "0", "totalResultCount": str(len(objects))}
    element = etree.Element(v.TAG_ADHOC_QUERY_RESPONSE, attributes, nsmap=_NSMAP)
    encode_registry_error_list(errors, element)
    encode_registry_object_list(objects, element)
    return element
