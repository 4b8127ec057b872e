"""ebRIM 3.0 XML -> model.

Decoding is lenient about metadata content and strict about structure: whatever is odd in the
metadata (unknown scheme, classification pointing nowhere, size not an integer...) becomes a
sentence in `Submission.problems` for the validator to turn into an XdsError, so that a
submission gets one response listing everything wrong. Only an element that is not ebRIM at
all raises `EbrimDecodeError`.

What the model can hold as sent (an unknown objectType, a missing uniqueId...) is simply kept
for the validator to judge; `problems` is for what the model cannot hold (a value dropped, a
reference that points nowhere), so that no defect is reported twice.

Ids are kept exactly as sent; symbolic ids ("Document01") are resolved elsewhere.
"""

from __future__ import annotations

from lxml import etree

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.mapping import (
    DOCUMENT_ENTRY,
    FOLDER,
    PACKAGE_NODES,
    SUBMISSION_SET,
    ObjectKind,
)
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

Entry = DocumentEntry | SubmissionSet | Folder


class EbrimDecodeError(ValueError):
    """The element is not an ebRIM 3.0 message this codec can read."""


def decode_submit_objects_request(element: etree._Element) -> Submission:
    """Decode an `lcm:SubmitObjectsRequest` (ITI-41 inner request, ITI-42, ITI-57)."""
    _expect(element, v.TAG_SUBMIT_OBJECTS_REQUEST)
    object_list = element.find(v.TAG_REGISTRY_OBJECT_LIST)
    if object_list is None:
        raise EbrimDecodeError("lcm:SubmitObjectsRequest without rim:RegistryObjectList")
    return decode_registry_object_list(object_list)


def decode_registry_object_list(element: etree._Element) -> Submission:
    """Decode a `rim:RegistryObjectList` into a Submission (objects in document order)."""
    _expect(element, v.TAG_REGISTRY_OBJECT_LIST)
    return _Decoder().decode(element)


def _expect(element: etree._Element, tag: str) -> None:
    if not isinstance(element.tag, str) or element.tag != tag:
        found = element.tag if isinstance(element.tag, str) else type(element).__name__
        raise EbrimDecodeError(f"expected {tag}, found {found}")


# --- small readers ---------------------------------------------------------------------------


def _values(slot: etree._Element) -> list[str]:
    value_list = slot.find(v.TAG_VALUE_LIST)
    if value_list is None:
        return []
    return [value.text or "" for value in value_list.iterchildren(v.TAG_VALUE)]


def _localized(element: etree._Element) -> list[LocalizedString]:
    return [
        LocalizedString(ls.get("value", ""), ls.get(v.ATTR_XML_LANG), ls.get("charset"))
        for ls in element.iterchildren(v.TAG_LOCALIZED_STRING)
    ]


def _first_name(element: etree._Element) -> str:
    name = element.find(v.TAG_NAME)
    if name is None:
        return ""
    strings = _localized(name)
    return strings[0].value if strings else ""


_NEITHER = "neither as SubmissionSet nor as Folder"


def _is_digits(text: str) -> bool:
    # int() would also take "+4", " 4" or "4_000": XDS size is plain decimal digits.
    return text.isascii() and text.isdigit()


class _Decoder:
    """One decoding run: collects objects and problems, resolves cross references."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.objects: dict[str, tuple[Entry, ObjectKind]] = {}
        self.dropped_packages: set[str] = set()
        self.seen_ids: set[str] = set()

    # -- driver --------------------------------------------------------------------------------

    def decode(self, object_list: etree._Element) -> Submission:
        extrinsics, packages, associations, refs, loose = self._sort(object_list)
        kinds = self._package_kinds(packages, loose)
        submission = Submission()
        for element in extrinsics:
            submission.documents.append(self._document_entry(element))
        for element in packages:
            self._package(element, kinds, submission)
        for element in loose:
            self._loose(element)
        submission.associations = [self._association(e) for e in associations]
        submission.object_refs = [self._object_ref(e) for e in refs]
        submission.problems = self.problems
        return submission

    def _sort(self, object_list: etree._Element) -> tuple[list[etree._Element], ...]:
        extrinsics: list[etree._Element] = []
        packages: list[etree._Element] = []
        associations: list[etree._Element] = []
        refs: list[etree._Element] = []
        loose: list[etree._Element] = []
        by_tag = {
            v.TAG_EXTRINSIC_OBJECT: extrinsics,
            v.TAG_REGISTRY_PACKAGE: packages,
            v.TAG_ASSOCIATION: associations,
            v.TAG_OBJECT_REF: refs,
            v.TAG_CLASSIFICATION: loose,
            v.TAG_EXTERNAL_IDENTIFIER: loose,
        }
        for child in object_list:
            if not isinstance(child.tag, str):
                continue  # comments, processing instructions
            bucket = by_tag.get(child.tag)
            if bucket is None:
                self.problems.append(f"unexpected element {child.tag} in rim:RegistryObjectList")
            else:
                bucket.append(child)
        return extrinsics, packages, associations, refs, loose

    def _package_kinds(self, packages: list[etree._Element], loose: list[etree._Element]) -> dict[str, set[str]]:
        """Marker nodes per package id, from nested and top-level classifications alike."""
        kinds: dict[str, set[str]] = {p.get("id", ""): set() for p in packages}
        for package in packages:
            for c in package.iterchildren(v.TAG_CLASSIFICATION):
                if c.get("classificationNode") in PACKAGE_NODES:
                    kinds[package.get("id", "")].add(c.get("classificationNode", ""))
        for c in loose:
            node = c.get("classificationNode")
            target = c.get("classifiedObject", "")
            if node in PACKAGE_NODES and target in kinds:
                kinds[target].add(node)
        return kinds

    # -- ids and problems -----------------------------------------------------------------------

    def _object_id(self, element: etree._Element, label: str) -> str:
        object_id: str | None = element.get("id")
        if not object_id:
            self.problems.append(f"{label} without an id attribute")
            return ""
        if object_id in self.seen_ids:
            self.problems.append(f"id {object_id} is used by several objects")
        self.seen_ids.add(object_id)
        return object_id

    def _problem(self, obj: Entry, kind: ObjectKind, text: str) -> None:
        self.problems.append(f"{kind.label} {obj.entry_uuid}: {text}")

    # -- DocumentEntry, SubmissionSet, Folder ---------------------------------------------------

    def _document_entry(self, element: etree._Element) -> DocumentEntry:
        entry = DocumentEntry(entry_uuid=self._object_id(element, "ExtrinsicObject"))
        # Kept as sent ("" when absent): the validator judges it against DOCUMENT_ENTRY_TYPES.
        entry.object_type = element.get("objectType", "")
        entry.mime_type = element.get("mimeType")
        entry.logical_id = element.get("lid")
        self._registry_object(element, entry, DOCUMENT_ENTRY)
        return entry

    def _package(self, element: etree._Element, kinds: dict[str, set[str]], submission: Submission) -> None:
        package_id = self._object_id(element, "RegistryPackage")
        nodes = kinds.get(package_id, set())
        if nodes == {v.SUBMISSION_SET_NODE}:
            submission_set = SubmissionSet(entry_uuid=package_id)
            self._registry_object(element, submission_set, SUBMISSION_SET)
            submission.submission_set_count += 1
            if submission.submission_set is None:
                submission.submission_set = submission_set
        elif nodes == {v.FOLDER_NODE}:
            folder = Folder(entry_uuid=package_id, logical_id=element.get("lid"))
            self._registry_object(element, folder, FOLDER)
            submission.folders.append(folder)
        else:
            self.dropped_packages.add(package_id)
            what = "both as SubmissionSet and as Folder" if nodes else _NEITHER
            self.problems.append(f"RegistryPackage {package_id} is classified {what}")

    def _registry_object(self, element: etree._Element, obj: Entry, kind: ObjectKind) -> None:
        """Attributes and children common to the three kinds (ebRIM RegistryObjectType)."""
        obj.status = element.get("status")
        obj.home_community_id = element.get("home")
        self.objects.setdefault(obj.entry_uuid, (obj, kind))
        slot_names: set[str] = set()
        for child in element:
            tag = child.tag
            if tag == v.TAG_SLOT:
                self._slot(child, obj, kind, slot_names)
            elif tag == v.TAG_NAME:
                obj.title = _localized(child)
            elif tag == v.TAG_DESCRIPTION:
                obj.comments = _localized(child)
            elif tag == v.TAG_VERSION_INFO:
                # A SubmissionSet is never versioned (ITI TF-3 §4.2.3.3): its VersionInfo, if
                # a registry added one, carries nothing to keep.
                if kind.has_version:  # the kind says which model class obj is: not a SubmissionSet
                    obj.version = child.get("versionName")  # type: ignore[union-attr]
            elif tag == v.TAG_CLASSIFICATION:
                self._classification(child, obj, kind, nested=True)
            elif tag == v.TAG_EXTERNAL_IDENTIFIER:
                self._external_identifier(child, obj, kind, nested=True)
            elif isinstance(tag, str) and not tag.startswith("{" + v.NS_RIM):
                self._problem(obj, kind, f"unexpected element {tag}")

    def _slot(self, element: etree._Element, obj: Entry, kind: ObjectKind, seen: set[str]) -> None:
        name = element.get("name")
        if name is None:
            self._problem(obj, kind, "rim:Slot without a name")
            return
        if name in seen:
            self._problem(obj, kind, f"slot {name} is given twice")
            return
        seen.add(name)
        values = _values(element)
        spec = kind.slot_by_name.get(name)
        if spec is None:
            obj.extra_slots[name] = values
        elif spec.multi:
            setattr(obj, spec.field, values)
        elif values:
            if len(values) > 1:
                obj.multi_valued_slots[name] = len(values)
            self._set_single(obj, kind, spec.field, name, values[0], spec.integer)

    def _set_single(self, obj: Entry, kind: ObjectKind, field: str, name: str, value: str, integer: bool) -> None:
        if not integer:
            setattr(obj, field, value)
        elif _is_digits(value):
            setattr(obj, field, int(value))
        else:
            self._problem(obj, kind, f"slot {name} is not an integer: {value!r}")

    # -- classifications ----------------------------------------------------------------------

    def _classification(self, element: etree._Element, obj: Entry, kind: ObjectKind, nested: bool) -> None:
        target = element.get("classifiedObject")
        if nested and target is not None and target != obj.entry_uuid:
            self._problem(obj, kind, f"nested Classification {element.get('id')} classifies {target}")
        node = element.get("classificationNode")
        if node is not None:
            self._node(node, element.get("id"), obj, kind)
            return
        scheme = element.get("classificationScheme")
        if scheme is None:
            self._problem(obj, kind, f"Classification {element.get('id')} has neither scheme nor node")
        elif scheme == kind.author_scheme:  # only the kinds with authors have an author scheme
            obj.authors.append(self._author(element, obj, kind))  # type: ignore[union-attr]
        elif scheme in kind.code_by_scheme:
            self._code_field(element, obj, kind, scheme)
        else:
            self._problem(obj, kind, f"unknown classification scheme {scheme}")

    def _node(self, node: str, classification_id: str | None, obj: Entry, kind: ObjectKind) -> None:
        if kind.node is not None and node == kind.node:  # a package's node: obj is not a DocumentEntry
            obj.classification_id = classification_id  # type: ignore[union-attr]
        elif node == kind.limited_metadata_node:
            obj.limited_metadata = True
        elif kind.node is not None and node in PACKAGE_NODES:
            pass  # a package marked both ways was reported when its kind was decided
        else:
            self._problem(obj, kind, f"unknown classification node {node}")

    def _code_field(self, element: etree._Element, obj: Entry, kind: ObjectKind, scheme: str) -> None:
        spec = kind.code_by_scheme[scheme]
        code = self._code(element, obj, kind, spec.attribute)
        if spec.multi:
            getattr(obj, spec.field).append(code)
        elif getattr(obj, spec.field) is None:
            setattr(obj, spec.field, code)
        else:
            count = obj.multi_valued_slots.get(spec.attribute, 1)
            obj.multi_valued_slots[spec.attribute] = count + 1

    def _code(self, element: etree._Element, obj: Entry, kind: ObjectKind, attribute: str) -> Code:
        value = element.get("nodeRepresentation")
        if value is None:
            self._problem(obj, kind, f"{attribute} Classification without nodeRepresentation")
            value = ""
        scheme = ""
        for slot in element.iterchildren(v.TAG_SLOT):
            values = _values(slot)
            if slot.get("name") != v.SLOT_CODING_SCHEME:
                self._problem(obj, kind, f"{attribute} {value}: unexpected slot {slot.get('name')}")
            elif scheme or len(values) != 1:
                self._problem(obj, kind, f"{attribute} {value}: codingScheme must have one value")
                scheme = scheme or (values[0] if values else "")
            else:
                scheme = values[0]
        return Code(value, scheme, _first_name(element), element.get("id"))

    def _author(self, element: etree._Element, obj: Entry, kind: ObjectKind) -> Author:
        author = Author(classification_id=element.get("id"))
        lists = {
            v.SLOT_AUTHOR_INSTITUTION: author.institutions,
            v.SLOT_AUTHOR_ROLE: author.roles,
            v.SLOT_AUTHOR_SPECIALTY: author.specialties,
            v.SLOT_AUTHOR_TELECOMMUNICATION: author.telecommunications,
        }
        seen: set[str] = set()
        for slot in element.iterchildren(v.TAG_SLOT):
            name = slot.get("name", "")
            values = _values(slot)
            if name in seen:
                self._problem(obj, kind, f"author slot {name} is given twice")
            elif name == v.SLOT_AUTHOR_PERSON:
                if len(values) > 1:
                    self._problem(obj, kind, f"authorPerson has {len(values)} values")
                author.person = values[0] if values else None
            elif name in lists:
                lists[name].extend(values)
            else:
                self._problem(obj, kind, f"author: unexpected slot {name}")
            seen.add(name)
        return author

    # -- external identifiers ---------------------------------------------------------------------

    def _external_identifier(self, element: etree._Element, obj: Entry, kind: ObjectKind, nested: bool) -> None:
        target = element.get("registryObject")
        if nested and target is not None and target != obj.entry_uuid:
            self._problem(obj, kind, f"nested ExternalIdentifier {element.get('id')} refers to {target}")
        scheme = element.get("identificationScheme")
        spec = kind.identifier_by_scheme.get(scheme or "")
        if spec is None:
            self._problem(obj, kind, f"unknown ExternalIdentifier scheme {scheme}")
            return
        if getattr(obj, spec.field) is not None or getattr(obj, spec.id_field) is not None:
            count = obj.multi_valued_slots.get(spec.attribute, 1)
            obj.multi_valued_slots[spec.attribute] = count + 1
            return
        setattr(obj, spec.field, element.get("value"))
        setattr(obj, spec.id_field, element.get("id"))

    # -- top-level Classification / ExternalIdentifier -----------------------------------------

    def _loose(self, element: etree._Element) -> None:
        is_classification = element.tag == v.TAG_CLASSIFICATION
        target = element.get("classifiedObject" if is_classification else "registryObject")
        found = self.objects.get(target or "")
        if found is None:
            if target not in self.dropped_packages:
                what = "Classification" if is_classification else "ExternalIdentifier"
                self.problems.append(f"{what} {element.get('id')} refers to unknown object {target}")
            return
        obj, kind = found
        if is_classification:
            self._classification(element, obj, kind, nested=False)
        else:
            self._external_identifier(element, obj, kind, nested=False)

    # -- Association, ObjectRef --------------------------------------------------------------------

    def _association(self, element: etree._Element) -> Association:
        association_id = self._object_id(element, "Association")
        required = ("associationType", "sourceObject", "targetObject")
        missing = [name for name in required if not element.get(name)]
        if missing:
            self.problems.append(f"Association {association_id}: missing {', '.join(missing)}")
        association = Association(
            entry_uuid=association_id,
            association_type=element.get("associationType", ""),
            source=element.get("sourceObject", ""),
            target=element.get("targetObject", ""),
            status=element.get("status"),
            home_community_id=element.get("home"),
        )
        for child in element:
            self._association_child(child, association)
        return association

    def _association_child(self, child: etree._Element, association: Association) -> None:
        tag = child.tag
        if tag == v.TAG_SLOT:
            name = child.get("name", "")
            if name in association.slots:
                self.problems.append(f"Association {association.entry_uuid}: slot {name} is given twice")
            else:
                association.slots[name] = _values(child)
        elif tag == v.TAG_CLASSIFICATION and child.get("classificationScheme") == v.ASSOCIATION_DOCUMENTATION:
            # Whether this association type may carry it is the validator's call.
            association.documentation.append(self._association_documentation(child, association))
        elif tag in (v.TAG_CLASSIFICATION, v.TAG_EXTERNAL_IDENTIFIER):
            self.problems.append(f"Association {association.entry_uuid}: unexpected {etree.QName(tag).localname}")
        # rim:Name / rim:Description / rim:VersionInfo of an Association carry no XDS meaning.

    def _association_documentation(self, element: etree._Element, association: Association) -> Code:
        label = f"Association {association.entry_uuid}"
        target = element.get("classifiedObject")
        if target is not None and target != association.entry_uuid:
            self.problems.append(f"{label}: documentation Classification {element.get('id')} classifies {target}")
        scheme = ""
        for slot in element.iterchildren(v.TAG_SLOT):
            values = _values(slot)
            if slot.get("name") == v.SLOT_CODING_SCHEME and len(values) == 1 and not scheme:
                scheme = values[0]
            else:
                self.problems.append(f"{label}: documentation Classification: unexpected slot {slot.get('name')}")
        return Code(element.get("nodeRepresentation", ""), scheme, _first_name(element), element.get("id"))

    def _object_ref(self, element: etree._Element) -> ObjectRef:
        return ObjectRef(self._object_id(element, "ObjectRef"), element.get("home"))
