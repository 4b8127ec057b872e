"""`dmp-xds bench-load`: fill a registry with realistic generated metadata, fast.

Patients get INS-NIR ids; each has several submissions of 1-3 documents with CI-SIS codes read
from the ANS value sets (classCode J06 and formatCode J10 shipped in dmp_xds/data; typeCode,
practice setting, facility type, confidentiality and author specialty from the ANS folder),
one to three authors, a folder for some patients and replacements (RPLC, the original
Deprecated) for some documents. Generation is seeded, hence repeatable.

Rows go in through `RegistryStore.bulk_store`: one executemany per table for a batch of
patients, never one submission at a time. Metadata is not validated: it is generated valid.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dmp_xds.config import DATA_DIR
from dmp_xds.dmp.ins import INS_NIR
from dmp_xds.storage.store import RegistryStore
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    LocalizedString,
    Submission,
    SubmissionSet,
)
from dmp_xds.xds.xml import parse_bytes

OWN_VALUE_SETS = {"class": "xds-class-code-j06.xml", "format": "xds-format-code-j10.xml"}
ANS_VALUE_SETS = {
    "type": "JDV_J07_XdsTypeCode_CISIS.xml",
    "practice": "JDV_J04_XdsPracticeSettingCode_CISIS.xml",
    "facility": "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS.xml",
    "confidentiality": "JDV_J08_XdsConfidentialityCode_CISIS.xml",
    "specialty": "JDV_J01_XdsAuthorSpecialty_CISIS.xml",
}
FOLDER_SHARE = 0.2  # patients with a folder holding their first submission's documents
REPLACEMENT_SHARE = 0.05  # documents that replace an earlier one of the same patient
FAMILY_NAMES = (
    "MARTIN",
    "BERNARD",
    "DUBOIS",
    "THOMAS",
    "ROBERT",
    "RICHARD",
    "PETIT",
    "DURAND",
    "LEROY",
    "MOREAU",
    "SIMON",
    "LAURENT",
    "LEFEBVRE",
    "MICHEL",
    "GARCIA",
    "DAVID",
    "BERTRAND",
    "ROUX",
)
GIVEN_NAMES = ("Jeanne", "Paul", "Marie", "Louis", "Camille", "Hugo", "Lea", "Jules", "Chloe", "Arthur")
INSTITUTIONS = (
    "CHU de Rennes",
    "Hopital Saint-Louis",
    "Clinique du Parc",
    "Centre hospitalier de Dax",
    "Cabinet medical des Lilas",
    "Laboratoire Biomed",
)


class ValueSetMissing(Exception):
    pass


def _concepts(path: Path) -> list[Code]:
    if not path.is_file():
        raise ValueSetMissing(f"value set file not found: {path}")
    codes = [
        Code(c.get("code", ""), c.get("codeSystem", ""), c.get("displayName", ""))
        for c in parse_bytes(path.read_bytes()).iter("{*}Concept")
        if c.get("code") and c.get("codeSystem")
    ]
    if not codes:
        raise ValueSetMissing(f"no Concept in {path}")
    return codes


@dataclass(frozen=True)
class CodePools:
    class_codes: list[Code]
    format_codes: list[Code]
    type_codes: list[Code]
    practice_settings: list[Code]
    facility_types: list[Code]
    confidentiality: list[Code]
    specialties: list[Code]

    @classmethod
    def load(cls, ans_value_sets: Path) -> CodePools:
        own = {k: _concepts(DATA_DIR / f) for k, f in OWN_VALUE_SETS.items()}
        ans = {k: _concepts(ans_value_sets / f) for k, f in ANS_VALUE_SETS.items()}
        return cls(
            own["class"],
            own["format"],
            ans["type"],
            ans["practice"],
            ans["facility"],
            ans["confidentiality"],
            ans["specialty"],
        )


def patient_id(index: int) -> str:
    """A unique INS-NIR-shaped patient id (sex digit, then the index on 12 digits)."""
    return f"{1 + index % 2}{index:012d}^^^&{INS_NIR}&ISO"


class Generator:
    def __init__(self, pools: CodePools, seed: int) -> None:
        self.pools = pools
        self.rng = random.Random(seed)

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _entry_uuid(self) -> str:
        return f"urn:uuid:{self._uuid()}"

    def _unique_id(self) -> str:
        return f"2.25.{self._uuid().int}"

    def _code(self, pool: list[Code]) -> Code:
        code = self.rng.choice(pool)
        return Code(code.code, code.scheme, code.display)

    def _dtm(self, start_year: int = 2015, end_year: int = 2025) -> str:
        r = self.rng
        return (
            f"{r.randint(start_year, end_year)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
            f"{r.randint(7, 19):02d}{r.randint(0, 59):02d}{r.randint(0, 59):02d}"
        )

    def _author(self) -> Author:
        r = self.rng
        rpps = f"8{r.randint(0, 10**10 - 1):010d}"
        person = f"{rpps}^{r.choice(FAMILY_NAMES)}^{r.choice(GIVEN_NAMES)}^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^RPPS"
        finess = f"{r.randint(10, 99)}{r.randint(0, 10**7 - 1):07d}"
        institution = f"{r.choice(INSTITUTIONS)}^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^3{finess}"
        specialty = self._code(self.pools.specialties)
        return Author(
            person=person,
            institutions=[institution],
            roles=["10^Medecin^1.2.250.1.71.1.2.7"],
            specialties=[f"{specialty.code}^{specialty.display}^{specialty.scheme}"],
        )

    def _document(self, patient: str, authors: list[Author]) -> DocumentEntry:
        r = self.rng
        created = self._dtm()
        entry_uuid = self._entry_uuid()
        confidentiality = (
            [self._code(self.pools.confidentiality)]
            if r.random() < 0.3
            else [next((c for c in self.pools.confidentiality if c.code == "N"), self.pools.confidentiality[0])]
        )
        type_code = self._code(self.pools.type_codes)
        return DocumentEntry(
            entry_uuid=entry_uuid,
            unique_id=self._unique_id(),
            patient_id=patient,
            mime_type="text/xml",
            status=v.STATUS_APPROVED,
            logical_id=entry_uuid,
            version="1",
            title=[LocalizedString(type_code.display or "Document", "fr-FR", "UTF-8")],
            class_code=self._code(self.pools.class_codes),
            type_code=type_code,
            format_code=self._code(self.pools.format_codes),
            healthcare_facility_type_code=self._code(self.pools.facility_types),
            practice_setting_code=self._code(self.pools.practice_settings),
            confidentiality_codes=confidentiality,
            authors=r.sample(authors, r.randint(1, min(3, len(authors)))),
            creation_time=created,
            service_start_time=created[:8],
            service_stop_time=created[:8],
            hash=f"{r.getrandbits(160):040x}",
            size=r.randint(2_000, 2_000_000),
            language_code="fr-FR",
            repository_unique_id="1.2.250.1.999.1.2",
            source_patient_id=f"IPP{r.randint(0, 10**8):08d}^^^&1.2.250.1.999.2&ISO",
            source_patient_info=["PID-5|" + r.choice(FAMILY_NAMES) + "^" + r.choice(GIVEN_NAMES), "PID-8|F"],
        )

    def patient(self, index: int, documents: int) -> list[Submission]:
        """The submissions of one patient: `documents` DocumentEntries in 1-3 per submission."""
        r = self.rng
        patient = patient_id(index)
        authors = [self._author() for _ in range(3)]
        submissions: list[Submission] = []
        registered: list[DocumentEntry] = []
        remaining = documents
        while remaining > 0:
            count = min(remaining, r.randint(1, 3))
            remaining -= count
            ss = SubmissionSet(
                entry_uuid=self._entry_uuid(),
                unique_id=self._unique_id(),
                source_id="1.2.250.1.999.1.3",
                patient_id=patient,
                submission_time=self._dtm(),
                status=v.STATUS_APPROVED,
                content_type_code=self._code(self.pools.practice_settings),
                authors=[authors[0]],
            )
            submission = Submission(submission_set=ss, submission_set_count=1)
            for _ in range(count):
                document = self._document(patient, authors)
                submission.documents.append(document)
                submission.associations.append(self._member(ss.entry_uuid, document.entry_uuid, "Original"))
                if registered and r.random() < REPLACEMENT_SHARE:
                    original = r.choice([d for d in registered if d.status == v.STATUS_APPROVED] or registered)
                    original.status = v.STATUS_DEPRECATED
                    replacement = Association(
                        self._entry_uuid(), v.RPLC, document.entry_uuid, original.entry_uuid, v.STATUS_APPROVED
                    )
                    submission.associations += [replacement, self._member(ss.entry_uuid, replacement.entry_uuid)]
            if not submissions and r.random() < FOLDER_SHARE:
                self._add_folder(submission)
            registered += submission.documents
            submissions.append(submission)
        return submissions

    def _member(self, source: str, target: str, status: str | None = None) -> Association:
        slots = {v.SLOT_SUBMISSION_SET_STATUS: [status]} if status else {}
        return Association(self._entry_uuid(), v.HAS_MEMBER, source, target, v.STATUS_APPROVED, slots=slots)

    def _add_folder(self, submission: Submission) -> None:
        ss = submission.submission_set
        assert ss is not None
        folder_uuid = self._entry_uuid()
        folder = Folder(
            entry_uuid=folder_uuid,
            unique_id=self._unique_id(),
            patient_id=ss.patient_id,
            status=v.STATUS_APPROVED,
            logical_id=folder_uuid,
            version="1",
            last_update_time=ss.submission_time,
            title=[LocalizedString("Sejour", "fr-FR", "UTF-8")],
            codes=[self._code(self.pools.practice_settings)],
        )
        submission.folders.append(folder)
        submission.associations.append(self._member(ss.entry_uuid, folder_uuid))
        for document in submission.documents:
            link = self._member(folder_uuid, document.entry_uuid)
            submission.associations += [link, self._member(ss.entry_uuid, link.entry_uuid)]


def batches(patients: int, batch_size: int, first: int = 0) -> Iterator[range]:
    for start in range(first, first + patients, batch_size):
        yield range(start, min(start + batch_size, first + patients))


def load(
    store: RegistryStore,
    pools: CodePools,
    patients: int,
    documents_per_patient: int,
    *,
    seed: int = 1,
    first_patient: int = 0,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Generate and store `patients` patients; returns the DocumentEntries written.
    `progress` is called with the number of patients of each batch stored."""
    generator = Generator(pools, seed)
    written = 0
    for batch in batches(patients, batch_size, first_patient):
        submissions = [s for index in batch for s in generator.patient(index, documents_per_patient)]
        store.bulk_store(submissions, [patient_id(index) for index in batch])
        written += sum(len(s.documents) for s in submissions)
        if progress is not None:
            progress(len(batch))
    return written
