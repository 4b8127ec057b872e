"""`ExpectedContents` checks on a stored-query response, as the NIST toolkit's Validator runs them.

A check returns the list of problems it found (empty when it holds). The object model is the
minimum the checks need: DocumentEntries, SubmissionSets, Folders, Associations, ObjectRefs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from dmp_xds.xds import vocabulary as v


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


@dataclass
class QueryContents:
    documents: list[etree._Element] = field(default_factory=list)
    submission_sets: list[etree._Element] = field(default_factory=list)
    folders: list[etree._Element] = field(default_factory=list)
    associations: list[etree._Element] = field(default_factory=list)
    object_refs: list[etree._Element] = field(default_factory=list)


def _package_kind(package: etree._Element, top_level: list[etree._Element]) -> str:
    ident = package.get("id", "")
    nodes = {c.get("classificationNode") for c in package if _local(c) == "Classification"}
    nodes |= {
        c.get("classificationNode")
        for c in top_level
        if _local(c) == "Classification" and c.get("classifiedObject") == ident
    }
    schemes = {c.get("identificationScheme") for c in package if _local(c) == "ExternalIdentifier"}
    if v.SUBMISSION_SET_NODE in nodes or v.SS_UNIQUE_ID in schemes:
        return "ss"
    if v.FOLDER_NODE in nodes or v.FOLDER_UNIQUE_ID in schemes:
        return "folder"
    return "unknown"


def read_contents(response: etree._Element) -> QueryContents:
    """The registry objects of an AdhocQueryResponse (or any element holding a RegistryObjectList)."""
    contents = QueryContents()
    lists = [
        el for el in response.iter(tag=etree.Element) if _local(el) in ("RegistryObjectList", "LeafRegistryObjectList")
    ]
    top = list(lists[0]) if lists else []
    for obj in top:
        name = _local(obj)
        if name == "ExtrinsicObject":
            contents.documents.append(obj)
        elif name == "RegistryPackage":
            kind = _package_kind(obj, top)
            (contents.submission_sets if kind == "ss" else contents.folders if kind == "folder" else []).append(obj)
        elif name == "Association":
            contents.associations.append(obj)
        elif name == "ObjectRef":
            contents.object_refs.append(obj)
    return contents


def _status(obj: etree._Element) -> str:
    return (obj.get("status") or "").rsplit(":", 1)[-1]


def _short_type(association: etree._Element) -> str:
    return (association.get("associationType") or "").rsplit(":", 1)[-1]


class Checker:
    """Runs the named conditions over one response; problems accumulate in `problems`."""

    def __init__(self, contents: QueryContents) -> None:
        self.c = contents
        self.problems: list[str] = []

    def err(self, message: str) -> bool:
        self.problems.append(message)
        return False

    def count(self, what: str, found: list[etree._Element], expected: int) -> bool:
        if len(found) != expected:
            return self.err(f"found {len(found)} {what} instead of {expected}")
        return True

    def has_ss(self) -> bool:
        return bool(self.c.submission_sets) or self.err("no SubmissionSet in the response")

    def association(
        self, source: etree._Element, target: etree._Element, kind: str = "HasMember"
    ) -> etree._Element | None:
        for a in self.c.associations:
            if (
                a.get("sourceObject") == source.get("id")
                and a.get("targetObject") == target.get("id")
                and _short_type(a) == kind
            ):
                return a
        self.err(f"no {kind} association from {source.get('id')} to {target.get('id')}")
        return None

    def ss_approved(self) -> bool:
        if not self.has_ss():
            return False
        ss = self.c.submission_sets[0]
        if _status(ss) != "Approved":
            return self.err(f"SubmissionSet {ss.get('id')} has status {ss.get('status')!r} instead of Approved")
        return True

    def all_status(self, objects: list[etree._Element], what: str, status: str) -> bool:
        for obj in objects:
            if _status(obj) != status:
                return self.err(f"{what} {obj.get('id')} has status {obj.get('status')!r} instead of {status}")
        return True

    def exactly_one_status(self, status: str) -> bool:
        n = sum(1 for d in self.c.documents if _status(d) == status)
        return n == 1 or self.err(f"found {n} {status} DocumentEntries instead of one")

    def ss_with_docs(self, n: int) -> bool:
        ok = (
            self.has_ss()
            & self.count("DocumentEntries", self.c.documents, n)
            & self.count("Associations", self.c.associations, n)
        )
        if not ok:
            return False
        return all(self.association(self.c.submission_sets[0], d) is not None for d in self.c.documents)

    def ss_with_one_folder(self) -> bool:
        ok = (
            self.has_ss()
            & self.count("DocumentEntries", self.c.documents, 0)
            & self.count("Folders", self.c.folders, 1)
        )
        if not ok:
            return False
        return (
            self.count("Associations", self.c.associations, 1)
            and self.association(self.c.submission_sets[0], self.c.folders[0]) is not None
        )

    def ss_with_docs_and_folder(self, n_docs: int, n_assocs: int, docs_in_folder: int) -> bool:
        ok = (
            self.has_ss()
            & self.count("DocumentEntries", self.c.documents, n_docs)
            & self.count("Folders", self.c.folders, 1)
        )
        if not ok:
            return False
        self.count("Associations", self.c.associations, n_assocs)
        ss, folder = self.c.submission_sets[0], self.c.folders[0]
        for d in self.c.documents:
            self.association(ss, d)
        self.association(ss, folder)
        folder_links = [
            a
            for a in self.c.associations
            if a.get("sourceObject") == folder.get("id") and _short_type(a) == "HasMember"
        ]
        if len(folder_links) < docs_in_folder:
            self.err(
                f"found {len(folder_links)} Folder→DocumentEntry HasMember associations instead of {docs_in_folder}"
            )
        for link in folder_links:
            if not any(
                a.get("sourceObject") == ss.get("id") and a.get("targetObject") == link.get("id")
                for a in self.c.associations
            ):
                self.err(f"no HasMember association from the SubmissionSet to the Folder association {link.get('id')}")
        return not self.problems

    def unique_relationship(self, kind: str) -> bool:
        found = [a for a in self.c.associations if _short_type(a) == kind]
        if not found:
            return self.err(f"no {kind} association in the response")
        targets = [a.get("targetObject") for a in found]
        if len(set(targets)) != len(targets):
            return self.err(f"several {kind} associations for the same DocumentEntry")
        return True

    def doc_replaces_doc(self) -> bool:
        if not (
            self.count("DocumentEntries", self.c.documents, 2) & self.count("Associations", self.c.associations, 1)
        ):
            return False
        first, second = self.c.documents
        new, old = (first, second) if _status(first) == "Approved" else (second, first)
        self.association(new, old, "RPLC")
        if _status(old) != "Deprecated":
            self.err(f"replaced DocumentEntry {old.get('id')} is not Deprecated")
        return not self.problems

    def none(self) -> bool:
        return (
            self.count("SubmissionSets", self.c.submission_sets, 0)
            & self.count("DocumentEntries", self.c.documents, 0)
            & self.count("Folders", self.c.folders, 0)
            & self.count("Associations", self.c.associations, 0)
        )


CONDITIONS: dict[str, Callable[[Checker], bool]] = {
    "SSwithOneDoc": lambda k: k.ss_with_docs(1) and k.ss_approved(),
    "SSwithOneDocOnly": lambda k: k.ss_with_docs(1),
    "SSwithTwoDoc": lambda k: k.ss_with_docs(2) and k.ss_approved(),
    "SSwithTwoDocOnly": lambda k: k.ss_with_docs(2),
    "SSwithOneFol": Checker.ss_with_one_folder,
    "SSwithOneDocOneFol": lambda k: k.ss_with_docs_and_folder(1, 4, 1),
    "SSwithTwoDocOneFol": lambda k: k.ss_with_docs_and_folder(2, 7, 2),
    "SSwithTwoDocOneFolOneDocInFol": lambda k: k.ss_with_docs_and_folder(2, 5, 1),
    "SSApproved": Checker.ss_approved,
    "NoSubmissionSet": lambda k: k.count("SubmissionSets", k.c.submission_sets, 0),
    "NoDocument": lambda k: k.count("DocumentEntries", k.c.documents, 0),
    # As the toolkit's Validator.docsApproved: only a DocumentEntry that is not Approved is an
    # error; none at all passes (NIST 20001 asks for "Documents count=0" together with DocApp).
    "DocApp": lambda k: k.all_status(k.c.documents, "DocumentEntry", "Approved"),
    "DocDep": lambda k: k.all_status(k.c.documents, "DocumentEntry", "Deprecated"),
    "FolApp": lambda k: k.all_status(k.c.folders, "Folder", "Approved"),
    "FolDep": lambda k: k.all_status(k.c.folders, "Folder", "Deprecated"),
    "OneDocApp": lambda k: k.exactly_one_status("Approved"),
    "OneDocDep": lambda k: k.exactly_one_status("Deprecated"),
    "HasRPLC": lambda k: k.unique_relationship("RPLC"),
    "HasXFRM_RPLC": lambda k: k.unique_relationship("XFRM_RPLC"),
    "HasAPND": lambda k: k.unique_relationship("APND"),
    "DocRplcDoc": Checker.doc_replaces_doc,
    "None": Checker.none,
}

COUNTED = {
    "Documents": ("DocumentEntries", lambda c: c.documents),
    "SubmissionSets": ("SubmissionSets", lambda c: c.submission_sets),
    "Folders": ("Folders", lambda c: c.folders),
    "Associations": ("Associations", lambda c: c.associations),
}


def check_contents(
    expected: etree._Element, response: etree._Element, resolve_id: Callable[[etree._Element], str]
) -> list[str]:
    """Problems found checking `ExpectedContents` against a query response ([] = all hold).

    `resolve_id(use_id_element)` returns the id a `UseId` inside `DocumentEntries` points to.
    """
    contents = read_contents(response)
    problems: list[str] = []
    for condition in expected:
        name = _local(condition)
        if not name:
            continue
        checker = Checker(contents)
        if name in COUNTED:
            what, pick = COUNTED[name]
            checker.count(what, pick(contents), _count(condition))
        elif name == "ObjectRefs":
            checker.count("ObjectRefs", contents.object_refs, _count(condition))
            checker.none()
        elif name == "DocumentEntries":
            _document_entries(condition, contents, checker, resolve_id)
        elif name in CONDITIONS:
            CONDITIONS[name](checker)
        else:
            checker.err(f"ExpectedContents condition <{name}> is not supported by this runner")
        problems += [f"{name}: {p}" for p in checker.problems]
    return problems


def _count(condition: etree._Element) -> int:
    try:
        return int(condition.get("count", ""))
    except ValueError:
        raise ValueError(f"<{_local(condition)}> needs an integer count attribute") from None


def _document_entries(
    condition: etree._Element, contents: QueryContents, checker: Checker, resolve_id: Callable[[etree._Element], str]
) -> None:
    for selection in condition:
        mode = _local(selection)
        if mode == "DocumentEntryType":
            wanted = (selection.text or "").strip()
            for doc in contents.documents:
                if doc.get("objectType") != wanted:
                    checker.err(
                        f"DocumentEntry {doc.get('id')} has objectType {doc.get('objectType')} instead of {wanted}"
                    )
            continue
        if mode not in ("MustOnlyInclude", "Include", "Exclude"):
            continue
        matched = 0
        for entry in selection:
            if _local(entry) != "DocumentEntry":
                continue
            found: etree._Element | None = None
            for part in entry:
                if _local(part) == "UseId":
                    ident = resolve_id(part)
                    found = next((d for d in contents.documents if d.get("id") == ident), None)
                    if found is None and mode != "Exclude":
                        checker.err(f"DocumentEntry {ident} is not in the response")
                    elif found is not None and mode == "Exclude":
                        checker.err(f"DocumentEntry {ident} is in the response and should not be")
                    matched += found is not None
                elif _local(part) == "DocumentEntryType" and found is not None:
                    wanted = (part.text or "").strip()
                    if found.get("objectType") != wanted:
                        checker.err(
                            f"DocumentEntry {found.get('id')} has objectType {found.get('objectType')} instead of {wanted}"
                        )
        if mode == "MustOnlyInclude" and matched != len(contents.documents):
            checker.err(f"the response holds {len(contents.documents)} DocumentEntries, only {matched} expected")
