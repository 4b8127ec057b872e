"""Builders of fully populated model objects with realistic French DMP values.

Every builder takes keyword overrides for any field of the object it builds, so a test states
only what matters to it: `make_document_entry(patient_id=OTHER_PATIENT, size=None)`.
Ids and uniqueIds are fresh on every call, so several objects can share one submission.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from lxml import etree

from dmp_xds.xds import vocabulary as v
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
from dmp_xds.xds.xml import parse_bytes

# INS-NIR of a test patient (OID of the INS-NIR identification domain).
PATIENT_ID = "1234567890123^^^&1.2.250.1.213.1.4.8&ISO"
OTHER_PATIENT_ID = "2987654321098^^^&1.2.250.1.213.1.4.8&ISO"
SOURCE_PATIENT_ID = "IPP-000123^^^&1.2.250.1.999.2.1&ISO"
REPOSITORY_UNIQUE_ID = "1.2.250.1.999.1.2"
SOURCE_ID = "1.2.250.1.999.1.3"
UNIQUE_ID_ROOT = "1.2.250.1.999.1.1"  # uniqueIds are UNIQUE_ID_ROOT.<n>
DOCUMENT_CONTENT = b"Compte rendu de consultation du 12 mars 2024.\n"

AUTHOR_PERSON = "801234567897^MARTIN^Jeanne^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^RPPS"
AUTHOR_INSTITUTION = "Hopital Saint-Louis^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^3750100041"
LEGAL_AUTHENTICATOR = AUTHOR_PERSON

_counter = itertools.count(1)


def new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def new_unique_id() -> str:
    return f"{UNIQUE_ID_ROOT}.{next(_counter)}"


def make_code(
    code: str = "11488-4",
    scheme: str = "2.16.840.1.113883.6.1",
    display: str = "Compte rendu de consultation",
    **overrides: Any,
) -> Code:
    return replace(Code(code, scheme, display), **overrides)


def make_author(**overrides: Any) -> Author:
    author = Author(
        person=AUTHOR_PERSON,
        institutions=[AUTHOR_INSTITUTION],
        roles=["10^Medecin^1.2.250.1.71.1.2.7"],
        specialties=["SM26^Qualifie en Medecine Generale (SM)^1.2.250.1.71.4.2.5"],
        telecommunications=["^^Internet^jeanne.martin@hopital.example"],
    )
    return replace(author, **overrides)


def make_document_entry(**overrides: Any) -> DocumentEntry:
    """A stable DocumentEntry with every attribute an ITI-41 source sends (and a few optional)."""
    entry = DocumentEntry(
        entry_uuid=new_uuid(),
        unique_id=new_unique_id(),
        patient_id=PATIENT_ID,
        mime_type="text/plain",
        object_type=v.DOCUMENT_ENTRY_STABLE,
        title=[LocalizedString("Compte rendu de consultation", "fr-FR", "UTF-8")],
        comments=[LocalizedString("Consultation de suivi", "fr-FR", "UTF-8")],
        class_code=make_code("11", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
        type_code=make_code(),
        format_code=make_code("urn:ihe:iti:xds-sd:text:2008", "1.3.6.1.4.1.19376.1.2.3", "Texte non structure"),
        healthcare_facility_type_code=make_code("SA01", "1.2.250.1.71.4.2.4", "Etablissement public de sante"),
        practice_setting_code=make_code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement de sante"),
        confidentiality_codes=[make_code("N", "2.16.840.1.113883.5.25", "Normal")],
        event_codes=[make_code("GLICE", "1.2.250.1.213.1.1.5.3", "Glycemie")],
        authors=[make_author()],
        creation_time="20240312093000",
        service_start_time="20240312090000",
        service_stop_time="20240312093000",
        hash=hashlib.sha1(DOCUMENT_CONTENT).hexdigest(),
        size=len(DOCUMENT_CONTENT),
        language_code="fr-FR",
        legal_authenticator=LEGAL_AUTHENTICATOR,
        repository_unique_id=REPOSITORY_UNIQUE_ID,
        source_patient_id=SOURCE_PATIENT_ID,
        source_patient_info=[
            "PID-3|" + SOURCE_PATIENT_ID,
            "PID-5|DUPONT^Marie^^^^^L",
            "PID-7|19650415",
            "PID-8|F",
        ],
        reference_ids=["ORD-2024-0042^^^&1.2.250.1.999.3&ISO^urn:ihe:iti:xds:2013:order"],
    )
    return replace(entry, **overrides)


def make_submission_set(**overrides: Any) -> SubmissionSet:
    submission_set = SubmissionSet(
        entry_uuid=new_uuid(),
        unique_id=new_unique_id(),
        source_id=SOURCE_ID,
        patient_id=PATIENT_ID,
        submission_time="20240312094500",
        title=[LocalizedString("Envoi du compte rendu", "fr-FR", "UTF-8")],
        # JDV_J03: "04" of TRE_R209-TypeActivite (1.2.250.1.213.2.2), as the CI-SIS profile requires.
        content_type_code=make_code("04", "1.2.250.1.213.2.2", "Hospitalisation de jour"),
        authors=[make_author()],
        intended_recipients=[AUTHOR_INSTITUTION],
    )
    return replace(submission_set, **overrides)


def make_folder(**overrides: Any) -> Folder:
    folder = Folder(
        entry_uuid=new_uuid(),
        unique_id=new_unique_id(),
        patient_id=PATIENT_ID,
        title=[LocalizedString("Sejour du 10 au 14 mars 2024", "fr-FR", "UTF-8")],
        codes=[make_code("04", "1.2.250.1.213.1.1.4.12", "Hospitalisation de jour")],
    )
    return replace(folder, **overrides)


def make_association(source: str, target: str, **overrides: Any) -> Association:
    """A HasMember association (SubmissionSetStatus Original) unless overridden."""
    association = Association(
        entry_uuid=new_uuid(),
        association_type=v.HAS_MEMBER,
        source=source,
        target=target,
        slots={v.SLOT_SUBMISSION_SET_STATUS: ["Original"]},
    )
    return replace(association, **overrides)


def make_submission(
    document_count: int = 1,
    *,
    with_folder: bool = False,
    submission_set: SubmissionSet | None = None,
    documents: list[DocumentEntry] | None = None,
    object_refs: list[ObjectRef] | None = None,
) -> Submission:
    """A consistent submission: one SubmissionSet, its documents (and folder), HasMember links."""
    ss = submission_set or make_submission_set()
    if documents is None:
        documents = [make_document_entry() for _ in range(document_count)]
    docs = documents
    associations = [make_association(ss.entry_uuid, d.entry_uuid) for d in docs]
    folders: list[Folder] = []
    if with_folder:
        folder = make_folder(patient_id=ss.patient_id)
        folders.append(folder)
        associations.append(make_association(ss.entry_uuid, folder.entry_uuid, slots={}))
        for doc in docs:
            # ITI TF-3 §4.2.2.1.2: a Folder->Document link made in a submission is itself a
            # member of the SubmissionSet.
            link = make_association(folder.entry_uuid, doc.entry_uuid, slots={})
            associations += [link, make_association(ss.entry_uuid, link.entry_uuid, slots={})]
    return Submission(
        submission_set=ss,
        documents=docs,
        folders=folders,
        associations=associations,
        object_refs=list(object_refs or []),
        submission_set_count=1,
    )


# --- The ANS TestContenuCDA kit (read in place, never copied into this repository) ------------

# ../shared/ans-testcontenucda next to the checkout, or wherever DMP_XDS_ANS_TESTCONTENUCDA says.
ANS_KIT = Path(
    os.environ.get("DMP_XDS_ANS_TESTCONTENUCDA", Path(__file__).resolve().parents[2] / "shared" / "ans-testcontenucda")
)
ANS_EXAMPLES = ANS_KIT / "ExemplesCDA"  # the kit's 94 example CDA documents


def registered(submission: Submission) -> Submission:
    """The values the registry sets itself before storing, versions given by the test kept (for
    tests that store straight into the RegistryStore; services.register does it for a server)."""
    if submission.submission_set is not None:
        submission.submission_set.status = v.STATUS_APPROVED
    for obj in [*submission.documents, *submission.folders]:
        obj.status = v.STATUS_APPROVED
        obj.logical_id = obj.logical_id or obj.entry_uuid
        obj.version = obj.version or "1"
    for assoc in submission.associations:
        assoc.status = v.STATUS_APPROVED
    return submission


def ans_example(name: str) -> bytes:
    """One example document of the kit. Fails, not skips, when the kit is missing: for the CDA
    reader these are the only real data."""
    path = ANS_EXAMPLES / name
    assert path.is_file(), f"ANS example {path} is missing (set DMP_XDS_ANS_TESTCONTENUCDA)"
    return path.read_bytes()


# --- NIST testkit messages (read in place, never copied into this repository) ----------------

# ../shared/nist-testkit next to the checkout (docs/architecture.md), or wherever DMP_XDS_NIST_TESTKIT says.
TESTKIT = Path(os.environ.get("DMP_XDS_NIST_TESTKIT", Path(__file__).resolve().parents[2] / "shared" / "nist-testkit"))


def ebrim30_testkit_files() -> list[Path]:
    """Every testkit file (test plans and shared test data) that holds an ebRIM 3.0
    lcm:SubmitObjectsRequest, alone or inside xdsb:ProvideAndRegisterDocumentSetRequest,
    sorted. Raises if the testkit is missing, so that tests built on it fail rather than
    silently run on nothing."""
    if not (TESTKIT / "tests").is_dir():
        raise FileNotFoundError(f"NIST testkit not found at {TESTKIT}")
    found = []
    for path in sorted(TESTKIT.rglob("*.xml")):
        data = path.read_bytes()
        if b"xsd:rim:3.0" in data and b"SubmitObjectsRequest" in data:
            found.append(path)
    return found


def submit_objects_requests_in(path: Path) -> list[etree._Element]:
    """The lcm:SubmitObjectsRequest elements of one testkit file, parsed securely."""
    root = parse_bytes(path.read_bytes())
    return list(root.iter(v.TAG_SUBMIT_OBJECTS_REQUEST))
