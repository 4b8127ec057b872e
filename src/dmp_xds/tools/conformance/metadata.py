"""What the NIST toolkit does to a metadata file before it sends it, as pure functions.

Each function changes an ebRIM 3.0 tree in place and returns the map the toolkit would log
(`AssignedPatientId`, `AssignedUids`, `AssignedUuids`), keyed by the object id written in the
file (`Document01`, `SubmissionSet01`, `Folder`), so that later steps can `UseId` them.
"""

from __future__ import annotations

import uuid

from lxml import etree

from dmp_xds.xds import vocabulary as v

PATIENT_ID_SCHEMES = frozenset({v.DE_PATIENT_ID, v.SS_PATIENT_ID, v.FOLDER_PATIENT_ID})
UNIQUE_ID_SCHEMES = frozenset({v.DE_UNIQUE_ID, v.SS_UNIQUE_ID, v.FOLDER_UNIQUE_ID})
# The registry objects whose ids a submission defines (and may write symbolically).
_DEFINING = ("ExtrinsicObject", "RegistryPackage", "Association", "Classification", "ExternalIdentifier")
# Attributes that refer to another object by id.
_REFERENCES = ("id", "lid", "classifiedObject", "sourceObject", "targetObject", "registryObject")


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _owner_id(identifier: etree._Element) -> str:
    owner = identifier.get("registryObject")
    if owner:
        return owner
    parent = identifier.getparent()
    return parent.get("id", "") if parent is not None else ""


def external_identifiers(root: etree._Element, schemes: frozenset[str]) -> list[etree._Element]:
    return [
        el
        for el in root.iter(tag=etree.Element)
        if _local(el) == "ExternalIdentifier" and el.get("identificationScheme") in schemes
    ]


def substitute(root: etree._Element, mapping: dict[str, str]) -> None:
    """Replace each key by its value in every attribute value and text (the toolkit's linkage)."""
    if not mapping:
        return
    # Longest symbols first, so that `$uid1$` is not eaten by a shorter `$uid$`... and similar.
    items = sorted(mapping.items(), key=lambda kv: len(kv[0]), reverse=True)

    def apply(text: str) -> str:
        for key, value in items:
            if key and key in text:
                text = text.replace(key, value)
        return text

    for element in root.iter():
        if isinstance(element.tag, str):
            for name, value in element.attrib.items():
                new = apply(value)
                if new != value:
                    element.set(name, new)
        if element.text:
            element.text = apply(element.text)
        if element.tail:
            element.tail = apply(element.tail)


def substitute_text(text: str, mapping: dict[str, str]) -> str:
    for key, value in sorted(mapping.items(), key=lambda kv: len(kv[0]), reverse=True):
        if key:
            text = text.replace(key, value)
    return text


def assign_patient_id(root: etree._Element, patient_id: str) -> dict[str, str]:
    """Set every DocumentEntry / SubmissionSet / Folder patientId to `patient_id`."""
    assigned: dict[str, str] = {}
    for identifier in external_identifiers(root, PATIENT_ID_SCHEMES):
        identifier.set("value", patient_id)
        assigned[_owner_id(identifier)] = patient_id
    return assigned


# The sourceId this runner submits as (the toolkit, too, replaces the plans' sourceId with its
# own): a fixed OID under 2.25, since some plan files hold values that are not OIDs.
CONFORMANCE_SOURCE_ID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:dmp-xds:conformance-runner').int}"


def assign_source_id(root: etree._Element, source_id: str) -> dict[str, str]:
    assigned: dict[str, str] = {}
    for identifier in external_identifiers(root, frozenset({v.SS_SOURCE_ID})):
        identifier.set("value", source_id)
        assigned[_owner_id(identifier)] = source_id
    return assigned


def new_unique_id() -> str:
    """A fresh OID under 2.25 (UUID-derived, ITU-T X.667): unique without a registered root."""
    return f"2.25.{uuid.uuid4().int}"


def assign_unique_ids(root: etree._Element, keep: str | None = None) -> dict[str, str]:
    """Give every DocumentEntry / SubmissionSet / Folder a fresh uniqueId (except object `keep`)."""
    assigned: dict[str, str] = {}
    for identifier in external_identifiers(root, UNIQUE_ID_SCHEMES):
        owner = _owner_id(identifier)
        if keep is not None and owner == keep:
            continue
        uid = new_unique_id()
        identifier.set("value", uid)
        assigned[owner] = uid
    return assigned


def document_unique_ids(root: etree._Element) -> dict[str, str]:
    """The uniqueId of each DocumentEntry, by the entry's id."""
    return {_owner_id(i): i.get("value", "") for i in external_identifiers(root, frozenset({v.DE_UNIQUE_ID}))}


def assign_uuids(root: etree._Element, extra: list[etree._Element] | None = None) -> dict[str, str]:
    """Turn every symbolic object id into a `urn:uuid:` and rewrite the references to it.

    `extra` are elements outside the metadata that refer to objects by id (the
    `xdsb:Document id=...` of a Provide and Register).
    """
    names: dict[str, str] = {}
    for element in root.iter(tag=etree.Element):
        if _local(element) in _DEFINING:
            ident = element.get("id", "")
            if ident and not ident.startswith("urn:uuid:") and ident not in names:
                names[ident] = f"urn:uuid:{uuid.uuid4()}"
    if not names:
        return names
    targets = list(root.iter(tag=etree.Element)) + list(extra or [])
    for element in targets:
        for attribute in _REFERENCES:
            value = element.get(attribute)
            if value in names:
                element.set(attribute, names[value])
    return names
