"""ebXML RegRep 2.1 test metadata → ebRIM 3.0 XDS.b messages (what `<XDSb/>` asks for).

Many testkit metadata files predate XDS.b. The translation keeps every object, slot, name,
classification and identifier, and changes what 3.0 changed:
- `rs:SubmitObjectsRequest/rim:LeafRegistryObjectList` (2.1) → `lcm:SubmitObjectsRequest/rim:RegistryObjectList`;
- Classification and ExternalIdentifier get an `id`, and `classifiedObject` / `registryObject`
  pointing to the object that holds them;
- Association types get their namespaces (`HasMember` → `urn:oasis:...:HasMember`, `RPLC` →
  `urn:ihe:iti:2007:AssociationType:RPLC`...) and an `id` when they had none;
- children are put in 3.0 order (Slot, Name, Description, VersionInfo, Classification,
  ExternalIdentifier);
- the 2.1 ObjectRefs that only declared the well-known XDS classification schemes and nodes are
  dropped: 3.0 submissions do not carry them.
"""

from __future__ import annotations

import uuid

from lxml import etree

from dmp_xds.xds import vocabulary as v

_RIM21 = "{" + v.NS_RIM21 + "}"
_RIM = "{" + v.NS_RIM + "}"

_SHORT_ASSOCIATION_TYPES = {
    "HasMember": v.HAS_MEMBER,
    "RPLC": v.RPLC,
    "XFRM": v.XFRM,
    "APND": v.APND,
    "XFRM_RPLC": v.XFRM_RPLC,
    "signs": v.SIGNS,
    "IsSnapshotOf": v.IS_SNAPSHOT_OF,
    "UpdateAvailabilityStatus": v.UPDATE_AVAILABILITY_STATUS,
}
_SHORT_STATUSES = {"Approved": v.STATUS_APPROVED, "Deprecated": v.STATUS_DEPRECATED, "Submitted": v.STATUS_SUBMITTED}

# Every UUID the XDS vocabulary defines: ObjectRefs to these only declared the scheme in 2.1.
WELL_KNOWN_UUIDS = frozenset(
    value
    for name, value in vars(v).items()
    if name.isupper() and isinstance(value, str) and value.startswith("urn:uuid:")
) | frozenset(
    # The 2.1 files also declare the ObjectType node of the old "XDSDocumentEntry" classification.
    {"urn:uuid:7edca82f-054d-47f2-a032-9b2a5b518fff"}
)

_ORDER = ["Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier"]
_DROPPED_ATTRIBUTES = ("majorVersion", "minorVersion", "stability", "expiration")


def is_ebrim21(root: etree._Element) -> bool:
    return any(etree.QName(el).namespace in (v.NS_RIM21, v.NS_RS21) for el in root.iter(tag=etree.Element))


def _order(element: etree._Element) -> None:
    children = list(element)

    def rank(child: etree._Element) -> int:
        if not isinstance(child.tag, str):
            return len(_ORDER)
        name = etree.QName(child).localname
        return _ORDER.index(name) if name in _ORDER else len(_ORDER)

    for child in children:
        element.remove(child)
    for child in sorted(children, key=rank):  # sorted() is stable: same-kind order is kept
        element.append(child)


def _convert(element: etree._Element, parent_id: str | None, counter: list[int]) -> etree._Element | None:
    """A 3.0 copy of a 2.1 rim element (None for a dropped one)."""
    if not isinstance(element.tag, str):
        return None
    name = etree.QName(element).localname
    attrs = {k: val for k, val in element.attrib.items() if k not in _DROPPED_ATTRIBUTES}
    if name == "ObjectRef" and attrs.get("id") in WELL_KNOWN_UUIDS:
        return None
    if name == "Classification":
        attrs.setdefault("id", f"urn:uuid:{uuid.uuid4()}")
        if parent_id is not None:
            attrs.setdefault("classifiedObject", parent_id)
    elif name == "ExternalIdentifier":
        attrs.setdefault("id", f"urn:uuid:{uuid.uuid4()}")
        if parent_id is not None:
            attrs.setdefault("registryObject", parent_id)
    elif name == "Association":
        counter[0] += 1
        attrs.setdefault("id", f"Association{counter[0]:02d}")
        kind = attrs.get("associationType", "")
        attrs["associationType"] = _SHORT_ASSOCIATION_TYPES.get(kind, kind)
    if attrs.get("status") in _SHORT_STATUSES:
        attrs["status"] = _SHORT_STATUSES[attrs["status"]]
    namespace = etree.QName(element).namespace
    tag = _RIM + name if namespace == v.NS_RIM21 else element.tag
    copy = etree.Element(tag, attrs)
    copy.text = element.text if element.text and element.text.strip() else None
    own_id = attrs.get("id") if name in ("ExtrinsicObject", "RegistryPackage", "Association") else parent_id
    for child in element:
        converted = _convert(child, own_id, counter)
        if converted is not None:
            converted.tail = None
            copy.append(converted)
    if name in ("ExtrinsicObject", "RegistryPackage", "Association", "Classification", "ExternalIdentifier"):
        _order(copy)
    return copy


def to_ebrim30(root: etree._Element) -> etree._Element:
    """A 3.0 copy of a 2.1 SubmitObjectsRequest (or a 2.1 object list); 3.0 input is returned as is."""
    if not is_ebrim21(root):
        return root
    counter = [0]
    request = etree.Element(v.TAG_SUBMIT_OBJECTS_REQUEST, nsmap={"lcm": v.NS_LCM, "rim": v.NS_RIM})
    object_list = etree.SubElement(request, v.TAG_REGISTRY_OBJECT_LIST)
    leaf_lists = [
        el
        for el in root.iter(tag=etree.Element)
        if etree.QName(el).localname in ("LeafRegistryObjectList", "RegistryObjectList")
    ]
    source = leaf_lists[0] if leaf_lists else root
    for child in source:
        converted = _convert(child, None, counter)
        if converted is not None:
            object_list.append(converted)
    return request
