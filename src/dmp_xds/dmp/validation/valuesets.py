"""CI-SIS value sets, read from files once at start-up.

The ANS publishes its value sets ("jeux de valeurs", JDV) as IHE SVS XML files. Those that
constrain XDS metadata are read from the directory a deployment configures
(`DMP_XDS_VALUE_SETS`, e.g. the `jeuxDeValeurs` folder of ANS TestContenuCDA). ANS publishes three
more that are not in that folder, contentTypeCode (JDV_J03), classCode (JDV_J06) and formatCode
(JDV_J10): this package ships them in `dmp_xds/data/`, each file naming its source, together with
the ANS association tables that give a CDA document's formatCode (ASS_A11 by templateId, ASS_A12
by body media type) and a document's classCode from its typeCode (ASS_X04).

No code is ever spelled out in Python: a missing or unreadable file is a `ValueSetError` that
names it, so that a server never starts with a check that silently lets everything through.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dmp_xds.config import DATA_DIR
from dmp_xds.xds.xml import UnsafeXmlError, parse_bytes

NS_SVS = "urn:ihe:iti:svs:2008"

# Value sets a deployment provides (ANS files, not redistributed here), by attribute.
ANS_FILES: dict[str, str] = {
    "author_specialty": "JDV_J01_XdsAuthorSpecialty_CISIS.xml",
    "healthcare_facility_type": "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS.xml",
    "practice_setting": "JDV_J04_XdsPracticeSettingCode_CISIS.xml",
    "type_code": "JDV_J07_XdsTypeCode_CISIS.xml",
    "confidentiality": "JDV_J08_XdsConfidentialityCode_CISIS.xml",
}
# Value sets and tables shipped with dmp-xds (dmp_xds/data).
OWN_FILES: dict[str, str] = {
    "content_type": "xds-content-type-code-j03.xml",
    "class_code": "xds-class-code-j06.xml",
    "format_code": "xds-format-code-j10.xml",
}
FORMAT_BY_TEMPLATE_FILE = "format-code-by-template-a11.tsv"
FORMAT_BY_MEDIA_TYPE_FILE = "format-code-by-media-type-a12.tsv"
CLASS_BY_TYPE_FILE = "xds-class-by-type-x04.tsv"


class ValueSetError(Exception):
    """A value set file is missing or unreadable; the message names the file and the setting."""


@dataclass(frozen=True, slots=True)
class ValueSet:
    name: str  # as published, e.g. JDV_J07_XdsTypeCode_CISIS
    oid: str
    codes: frozenset[tuple[str, str]]  # (code, codeSystem)
    displays: dict[tuple[str, str], str]

    def __contains__(self, code_and_system: object) -> bool:
        return code_and_system in self.codes

    def display(self, code: str, system: str) -> str:
        return self.displays.get((code, system), "")


@dataclass(frozen=True, slots=True)
class CodeMapping:
    """An ANS association table: key -> (code, codingScheme). `derived`: the keys whose row is
    our own derivation where the ANS table has none (the file says why)."""

    name: str
    targets: dict[str, tuple[str, str]]
    derived: frozenset[str] = frozenset()

    def get(self, key: str) -> tuple[str, str] | None:
        return self.targets.get(key)


@dataclass(frozen=True, slots=True)
class CisisValueSets:
    author_specialty: ValueSet  # JDV_J01
    healthcare_facility_type: ValueSet  # JDV_J02
    content_type: ValueSet  # JDV_J03 (shipped)
    practice_setting: ValueSet  # JDV_J04
    class_code: ValueSet  # JDV_J06 (shipped)
    type_code: ValueSet  # JDV_J07
    confidentiality: ValueSet  # JDV_J08
    format_code: ValueSet  # JDV_J10 (shipped)
    format_by_template: CodeMapping  # ASS_A11
    format_by_media_type: CodeMapping  # ASS_A12
    class_by_type: CodeMapping  # ASS_X04: typeCode -> classCode


def read_value_set(path: Path) -> ValueSet:
    """One SVS file (`RetrieveValueSetResponse/ValueSet/ConceptList/Concept`)."""
    try:
        root = parse_bytes(path.read_bytes())
    except FileNotFoundError as exc:
        raise ValueSetError(f"value set file {path} does not exist") from exc
    except (OSError, UnsafeXmlError) as exc:
        raise ValueSetError(f"value set file {path} cannot be read: {exc}") from exc
    value_set = root.find(f"{{{NS_SVS}}}ValueSet")
    if value_set is None:
        raise ValueSetError(f"value set file {path} has no svs:ValueSet element")
    displays: dict[tuple[str, str], str] = {}
    for concept in value_set.iter(f"{{{NS_SVS}}}Concept"):
        code, system = concept.get("code"), concept.get("codeSystem")
        if code and system:
            displays[(code, system)] = concept.get("displayName", "")
    if not displays:
        raise ValueSetError(f"value set file {path} lists no concept")
    name = path.name.removesuffix(".xml")
    return ValueSet(name, value_set.get("id", ""), frozenset(displays), displays)


def read_mapping(path: Path) -> CodeMapping:
    """A tab-separated association table: `key <TAB> code <TAB> codingScheme`, then `<TAB>derived`
    on the rows that are not ANS's; `#` comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueSetError(f"association table {path} cannot be read: {exc}") from exc
    targets: dict[str, tuple[str, str]] = {}
    derived: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) not in (3, 4) or (len(fields) == 4 and fields[3] != "derived"):
            raise ValueSetError(
                f"{path}:{number}: expected key, code and codingScheme separated by tabs, and "
                "'derived' after a fourth tab on a row that is not the ANS table's"
            )
        targets[fields[0]] = (fields[1], fields[2])
        if len(fields) == 4:
            derived.add(fields[0])
    return CodeMapping(path.stem, targets, frozenset(derived))


def load_cisis_value_sets(directory: str | Path) -> CisisValueSets:
    """The CI-SIS value sets: the ANS files from `directory`, ours from the package."""
    ans_dir = Path(directory)
    if not str(directory) or not ans_dir.is_dir():
        raise ValueSetError(
            f"value set directory {str(directory) or '(not set)'} does not exist: set DMP_XDS_VALUE_SETS to "
            f"the directory of the ANS CI-SIS value set files ({', '.join(ANS_FILES.values())})"
        )
    sets = {name: read_value_set(ans_dir / file) for name, file in ANS_FILES.items()}
    sets |= {name: read_value_set(DATA_DIR / file) for name, file in OWN_FILES.items()}
    return CisisValueSets(
        **sets,
        format_by_template=read_mapping(DATA_DIR / FORMAT_BY_TEMPLATE_FILE),
        format_by_media_type=read_mapping(DATA_DIR / FORMAT_BY_MEDIA_TYPE_FILE),
        class_by_type=read_mapping(DATA_DIR / CLASS_BY_TYPE_FILE),
    )


def load_format_mappings() -> tuple[CodeMapping, CodeMapping, ValueSet]:
    """The formatCode tables and JDV_J10 alone (shipped with the package): what a Document
    Source needs to give a CDA document its formatCode, without the ANS files."""
    return (
        read_mapping(DATA_DIR / FORMAT_BY_TEMPLATE_FILE),
        read_mapping(DATA_DIR / FORMAT_BY_MEDIA_TYPE_FILE),
        read_value_set(DATA_DIR / OWN_FILES["format_code"]),
    )


def load_class_and_content_type_tables() -> tuple[CodeMapping, ValueSet, ValueSet]:
    """ASS_X04, JDV_J06 and JDV_J03 alone (shipped with the package): what a Document Source
    needs to give a document its classCode and a SubmissionSet its contentTypeCode."""
    return (
        read_mapping(DATA_DIR / CLASS_BY_TYPE_FILE),
        read_value_set(DATA_DIR / OWN_FILES["class_code"]),
        read_value_set(DATA_DIR / OWN_FILES["content_type"]),
    )
