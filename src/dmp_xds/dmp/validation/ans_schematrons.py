"""The ANS schematrons that apply to a CDA document, compiled once and run with Saxon.

`DMP_XDS_SCHEMATRONS` names the `schematrons` folder of the ANS TestContenuCDA kit. Every CDA
document is checked against
- the CI-SIS "structuration minimale" (the French header rules, an ART-DECOR schematron in
  `profils/structurationMinimale/`);
- the three body profiles of `profils/`: `IHE.sch` (sections and entries of the IHE templates),
  `CI-SIS_ModelesDeContenusCDA.sch` (IHE entries as the CI-SIS "modèles de contenus CDA" volet
  constrains them, which every volet builds on) and `CI-SIS_Modeles_ANS.sch` (the sections and
  entries ANS defined). Their rules are keyed on templateIds: they check the templates a
  document uses, whatever its volet (an unstructured document has none). The kit's fourth
  profile, `profils/terminologies/schematron/terminologie.sch` (every code of the document
  looked up in the kit's terminology snapshots), is not run: it reads files whose paths it
  computes, so Saxon parses megabytes of RDF again on every document (about 250 ms), and the kit
  has no LOINC or SNOMED CT file for it;
- when its volet templateId (root and version) is in our table `data/schematron-by-template.tsv`,
  its volet's `CI-SIS_<volet>_<version>.sch`. The ANS kit leaves the choice of a volet schematron
  to its user; the table says where ours comes from.

The profiles are compiled at start-up (several seconds: the structuration minimale is large); a
volet schematron when the first document of that volet arrives, then kept (a lock makes two
threads compile it once).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from dmp_xds.config import DATA_DIR
from dmp_xds.dmp.validation.schematron import (
    Finding,
    SaxonDocument,
    SchematronError,
    SchematronValidator,
    parse_document,
)

PROFILE = Path("profils") / "structurationMinimale" / "ASIP-STRUCT-MIN-StrucMin.sch"
BODY_PROFILES = (
    Path("profils") / "IHE.sch",
    Path("profils") / "CI-SIS_ModelesDeContenusCDA.sch",
    Path("profils") / "CI-SIS_Modeles_ANS.sch",
)
VOLET_TABLE_FILE = "schematron-by-template.tsv"


def read_volet_table(path: Path) -> dict[tuple[str, str], str]:
    """(templateId root, extension) -> schematron file name, from a tab-separated file."""
    table: dict[tuple[str, str], str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not fields[0] or not fields[2]:
            raise SchematronError(f"{path}:{number}: expected root, extension and file separated by tabs")
        table[(fields[0], fields[1])] = fields[2]
    return table


def volet_schematron(table: dict[tuple[str, str], str], template_ids: list[tuple[str, str | None]]) -> str | None:
    """The volet schematron of a document with these ClinicalDocument/templateIds (root,
    extension), or None. A templateId with an extension the table does not know gets none: a
    volet's rules change between versions."""
    for root, extension in template_ids:
        found = table.get((root, extension or ""))
        if found:
            return found
    return None


@dataclass
class AnsSchematrons:
    directory: Path
    profile: SchematronValidator  # the structuration minimale
    table: dict[tuple[str, str], str]
    body_profiles: tuple[SchematronValidator, ...] = ()
    _volets: dict[str, SchematronValidator | SchematronError] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def volet(self, name: str) -> SchematronValidator | SchematronError:
        """The compiled volet schematron, or why it cannot be used (the kit ships
        CI-SIS_BIO-CR-BIO_2023.01.sch with an include that is not in the kit)."""
        with self._lock:
            if name not in self._volets:
                try:
                    self._volets[name] = _compiled(self.directory / name)
                except SchematronError as exc:
                    self._volets[name] = exc
            return self._volets[name]

    def validate(
        self, data: str | bytes | SaxonDocument, template_ids: list[tuple[str, str | None]]
    ) -> tuple[list[str], list[Finding]]:
        """(the schematrons that ran, their findings) on a document, as bytes (read with its XML
        declaration's encoding), text, or already parsed by Saxon. A volet schematron that
        cannot be compiled gives a warning: the document is not at fault. The document is
        parsed once for all."""
        document: str | bytes | SaxonDocument = data
        if not isinstance(data, SaxonDocument):
            try:
                document = parse_document(data)
            except SchematronError:
                pass  # each schematron reports that it could not run
        findings: list[Finding] = []
        ran: list[str] = []
        for profile in (self.profile, *self.body_profiles):
            findings += profile.validate(document)
            ran.append(profile.name)
        name = volet_schematron(self.table, template_ids)
        if name is not None:
            volet = self.volet(name)
            if isinstance(volet, SchematronError):
                findings.append(
                    Finding(
                        name,
                        "",
                        "",
                        "warning",
                        "",
                        f"this volet's ANS schematron cannot be used, the document was not checked against it: {volet}",
                    )
                )
            else:
                ran.append(volet.name)
                findings += volet.validate(document)
        return ran, findings


_CACHE: dict[Path, SchematronValidator] = {}
_CACHE_LOCK = threading.Lock()


def _compiled(path: Path) -> SchematronValidator:
    """One compilation per schematron file and process (tests build many validators)."""
    key = path.resolve()
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = SchematronValidator(key)
        return _CACHE[key]


def load_ans_schematrons(directory: str | Path) -> AnsSchematrons:
    """The ANS schematrons of `directory`; SchematronError names what is missing."""
    folder = Path(directory)
    if not folder.is_dir():
        raise SchematronError(
            f"schematron directory {folder} does not exist: set DMP_XDS_SCHEMATRONS to the "
            "schematrons folder of the ANS TestContenuCDA kit"
        )
    if not (folder / PROFILE).is_file():
        raise SchematronError(
            f"schematron directory {folder} has no {PROFILE} (CI-SIS structuration "
            "minimale): is it the schematrons folder of the ANS TestContenuCDA kit?"
        )
    table = {
        key: name for key, name in read_volet_table(DATA_DIR / VOLET_TABLE_FILE).items() if (folder / name).is_file()
    }  # a kit without some volet: those documents get the profiles only
    # A profile that cannot be compiled stops the start: it would otherwise check nothing, silently.
    return AnsSchematrons(
        folder, _compiled(folder / PROFILE), table, tuple(_compiled(folder / path) for path in BODY_PROFILES)
    )
