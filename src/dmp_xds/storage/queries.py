"""ITI-18 stored queries: parameters parsed into a typed value, one SQL builder per query.

Pure code (docs/architecture.md): `parse_stored_query` turns the slots of a `rim:AdhocQuery` into a
`StoredQuery` or a list of `XdsError`s; `build_plan` turns a `StoredQuery` into SQLAlchemy Core
selects. Running them and rendering the rows is the transaction's business
(services/iti18.py).

Value syntax (ITI TF-2a §3.18.4.1.2.3.5): strings are quoted (`'...'`, a quote doubled inside),
lists are `('a','b')` and may be spread over several `rim:Value`s, times are bare DTM numbers,
codes are `code^^scheme` (HL7 CE: code, display name left empty, coding scheme). Several values
of one parameter are ORed; where the query allows it, several slots of the same name are ANDed.

Every filter on a multi-valued attribute (codes, authors, reference ids) is a correlated EXISTS:
the patient + status index finds the patient's few entries first, so a common value (the
confidentiality code `N`, shared by a million documents) never drives the plan.

One patient at a time: every select of a plan, its sub-selects included, names the patient
(`patient_id = :patient` on every table it reads), and `run_plan` runs the plan once per patient
the query concerns: the one it names, or those of the objects it names by id, found first in the
claim tables (registry_entry_uuid, registry_unique_id). On Citus each run is then routed to the
patient's shard (docs/scaling.md).

Versions (ITI-57): every DocumentEntry / Folder select goes through `_document_entries` /
`_folders`, the one place that keeps the latest version only (`is_latest`) unless a query asks
for all of them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    exists,
    or_,
    select,
    union,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from dmp_xds.storage.serialize import sortable_dtm
from dmp_xds.storage.store import CODE_KIND_CONFIDENTIALITY, CODE_KIND_EVENT
from dmp_xds.storage.tables import (
    AssociationRow,
    DocumentEntryAuthorRow,
    DocumentEntryCodeRow,
    DocumentEntryReferenceIdRow,
    DocumentEntryRow,
    FolderCodeRow,
    FolderRow,
    RegistryEntryUuidRow,
    RegistryUniqueIdRow,
    SubmissionSetAuthorRow,
    SubmissionSetRow,
)
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode, XdsError, error

_de = DocumentEntryRow.__table__
_de_code = DocumentEntryCodeRow.__table__
_de_author = DocumentEntryAuthorRow.__table__
_de_reference = DocumentEntryReferenceIdRow.__table__
_ss = SubmissionSetRow.__table__
_ss_author = SubmissionSetAuthorRow.__table__
_folder = FolderRow.__table__
_folder_code = FolderCodeRow.__table__
_association = AssociationRow.__table__
_entry_uuid_claim = RegistryEntryUuidRow.__table__
_unique_id_claim = RegistryUniqueIdRow.__table__

# The patient a plan's selects are run for (run_plan binds it).
_PATIENT: BindParameter[str] = bindparam("patient")


def _own(table: Any) -> ColumnElement[bool]:
    """The rows of the patient the plan runs for."""
    return cast(ColumnElement[bool], table.c.patient_id == _PATIENT)


# --- parameters ----------------------------------------------------------------------------


class ParamKind(enum.Enum):
    ID = "a quoted string"  # single-valued
    IDS = "a list of quoted strings"
    CODES = "a list of quoted codes 'code^^scheme'"
    TIME = "a DTM time (YYYY[MM[DD[hh[mm[ss]]]]])"  # single-valued
    PATTERNS = "a list of quoted LIKE patterns"
    LEVEL = "a metadata level, 1 or 2"  # single-valued, quoted or not


class ReturnType(enum.Enum):
    LEAF_CLASS = v.RETURN_TYPE_LEAF_CLASS
    OBJECT_REF = v.RETURN_TYPE_OBJECT_REF


@dataclass(frozen=True, slots=True)
class CodeValue:
    code: str
    scheme: str


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    kind: ParamKind
    required: bool = False
    and_slots: bool = False  # several slots of this name are ANDed (each slot an OR list)


@dataclass(frozen=True, slots=True)
class QuerySpec:
    name: str
    query_id: str
    params: tuple[ParamSpec, ...]
    one_of: tuple[tuple[str, ...], ...] = ()  # exactly one of each group is required

    def param(self, name: str) -> ParamSpec | None:
        for spec in self.params:
            if spec.name == name:
                return spec
        return None


ParamValue = str | tuple[str, ...] | tuple[tuple[CodeValue, ...], ...]


@dataclass(frozen=True, slots=True)
class StoredQuery:
    """A parsed, valid stored query: which one, its parameters as typed values."""

    spec: QuerySpec
    return_type: ReturnType
    values: Mapping[str, ParamValue] = field(default_factory=dict)
    home_community_id: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def leaf_class(self) -> bool:
        return self.return_type is ReturnType.LEAF_CLASS

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        assert value is None or isinstance(value, str)
        return value

    def texts(self, name: str) -> tuple[str, ...]:
        value = self.values.get(name, ())
        assert isinstance(value, tuple)
        # The parameter's kind (ParamKind.IDS, PATTERNS) made it a tuple of strings.
        return cast(tuple[str, ...], value)

    def codes(self, name: str) -> tuple[tuple[CodeValue, ...], ...]:
        """One tuple per slot (ANDed), each an OR list."""
        value = self.values.get(name, ())
        assert isinstance(value, tuple)
        # The parameter's kind (ParamKind.CODES) made it a tuple of code lists.
        return cast(tuple[tuple[CodeValue, ...], ...], value)


def _p(name: str, kind: ParamKind, required: bool = False, and_slots: bool = False) -> ParamSpec:
    return ParamSpec(name, kind, required, and_slots)


_ID, _IDS, _CODES, _TIME, _PATTERNS = (ParamKind.ID, ParamKind.IDS, ParamKind.CODES, ParamKind.TIME, ParamKind.PATTERNS)
_HOME = _p(v.P_HOME_COMMUNITY_ID, _ID)
_DE_TYPE = _p(v.P_DE_TYPE, _IDS)
_CONTENT_FILTERS = (
    _p(v.P_DE_FORMAT_CODE, _CODES),
    _p(v.P_DE_CONFIDENTIALITY_CODE, _CODES, and_slots=True),
    _DE_TYPE,
    _HOME,
)
_FIND_DOCUMENTS = (
    _p(v.P_DE_PATIENT_ID, _ID, required=True),
    _p(v.P_DE_STATUS, _IDS, required=True),
    _p(v.P_DE_CLASS_CODE, _CODES),
    _p(v.P_DE_TYPE_CODE, _CODES),
    _p(v.P_DE_PRACTICE_SETTING_CODE, _CODES),
    _p(v.P_DE_CREATION_TIME_FROM, _TIME),
    _p(v.P_DE_CREATION_TIME_TO, _TIME),
    _p(v.P_DE_SERVICE_START_TIME_FROM, _TIME),
    _p(v.P_DE_SERVICE_START_TIME_TO, _TIME),
    _p(v.P_DE_SERVICE_STOP_TIME_FROM, _TIME),
    _p(v.P_DE_SERVICE_STOP_TIME_TO, _TIME),
    _p(v.P_DE_HEALTHCARE_FACILITY_TYPE_CODE, _CODES),
    _p(v.P_DE_EVENT_CODE_LIST, _CODES, and_slots=True),
    _p(v.P_DE_CONFIDENTIALITY_CODE, _CODES, and_slots=True),
    _p(v.P_DE_AUTHOR_PERSON, _PATTERNS),
    _p(v.P_DE_FORMAT_CODE, _CODES),
    _DE_TYPE,
    _HOME,
)
_DE_IDS = ((v.P_DE_ENTRY_UUID, v.P_DE_UNIQUE_ID),)
# ITI-57 (Metadata Update option): GetDocuments and GetFolders also take a logical id, and
# $MetadataLevel 2 asks for every version rather than the latest (ITI TF-2a §3.18.4.1.2.3.5).
_METADATA_LEVEL = _p(v.P_METADATA_LEVEL, ParamKind.LEVEL)

QUERIES: tuple[QuerySpec, ...] = (
    QuerySpec("FindDocuments", v.SQ_FIND_DOCUMENTS, _FIND_DOCUMENTS),
    QuerySpec(
        "FindDocumentsByReferenceId",
        v.SQ_FIND_DOCUMENTS_BY_REFERENCE_ID,
        _FIND_DOCUMENTS + (_p(v.P_DE_REFERENCE_ID_LIST, _IDS, required=True),),
    ),
    QuerySpec(
        "FindSubmissionSets",
        v.SQ_FIND_SUBMISSION_SETS,
        (
            _p(v.P_SS_PATIENT_ID, _ID, required=True),
            _p(v.P_SS_STATUS, _IDS, required=True),
            _p(v.P_SS_SOURCE_ID, _IDS),
            _p(v.P_SS_SUBMISSION_TIME_FROM, _TIME),
            _p(v.P_SS_SUBMISSION_TIME_TO, _TIME),
            _p(v.P_SS_AUTHOR_PERSON, _PATTERNS),
            _p(v.P_SS_CONTENT_TYPE, _CODES),
            _HOME,
        ),
    ),
    QuerySpec(
        "FindFolders",
        v.SQ_FIND_FOLDERS,
        (
            _p(v.P_FOLDER_PATIENT_ID, _ID, required=True),
            _p(v.P_FOLDER_STATUS, _IDS, required=True),
            _p(v.P_FOLDER_LAST_UPDATE_TIME_FROM, _TIME),
            _p(v.P_FOLDER_LAST_UPDATE_TIME_TO, _TIME),
            _p(v.P_FOLDER_CODE_LIST, _CODES, and_slots=True),
            _HOME,
        ),
    ),
    QuerySpec(
        "GetAll",
        v.SQ_GET_ALL,
        (
            _p(v.P_PATIENT_ID, _ID, required=True),
            _p(v.P_DE_STATUS, _IDS, required=True),
            _p(v.P_SS_STATUS, _IDS, required=True),
            _p(v.P_FOLDER_STATUS, _IDS, required=True),
            *_CONTENT_FILTERS,
        ),
    ),
    QuerySpec(
        "GetDocuments",
        v.SQ_GET_DOCUMENTS,
        (_p(v.P_DE_ENTRY_UUID, _IDS), _p(v.P_DE_UNIQUE_ID, _IDS), _p(v.P_DE_LOGICAL_ID, _IDS), _METADATA_LEVEL, _HOME),
        ((v.P_DE_ENTRY_UUID, v.P_DE_UNIQUE_ID, v.P_DE_LOGICAL_ID),),
    ),
    QuerySpec(
        "GetFolders",
        v.SQ_GET_FOLDERS,
        (
            _p(v.P_FOLDER_ENTRY_UUID, _IDS),
            _p(v.P_FOLDER_UNIQUE_ID, _IDS),
            _p(v.P_FOLDER_LOGICAL_ID, _IDS),
            _METADATA_LEVEL,
            _HOME,
        ),
        ((v.P_FOLDER_ENTRY_UUID, v.P_FOLDER_UNIQUE_ID, v.P_FOLDER_LOGICAL_ID),),
    ),
    QuerySpec("GetAssociations", v.SQ_GET_ASSOCIATIONS, (_p(v.P_UUID, _IDS, required=True), _HOME)),
    QuerySpec(
        "GetDocumentsAndAssociations",
        v.SQ_GET_DOCUMENTS_AND_ASSOCIATIONS,
        (_p(v.P_DE_ENTRY_UUID, _IDS), _p(v.P_DE_UNIQUE_ID, _IDS), _HOME),
        _DE_IDS,
    ),
    QuerySpec("GetSubmissionSets", v.SQ_GET_SUBMISSION_SETS, (_p(v.P_UUID, _IDS, required=True), _HOME)),
    QuerySpec(
        "GetSubmissionSetAndContents",
        v.SQ_GET_SUBMISSION_SET_AND_CONTENTS,
        (_p(v.P_SS_ENTRY_UUID, _ID), _p(v.P_SS_UNIQUE_ID, _ID), *_CONTENT_FILTERS),
        ((v.P_SS_ENTRY_UUID, v.P_SS_UNIQUE_ID),),
    ),
    QuerySpec(
        "GetFolderAndContents",
        v.SQ_GET_FOLDER_AND_CONTENTS,
        (_p(v.P_FOLDER_ENTRY_UUID, _ID), _p(v.P_FOLDER_UNIQUE_ID, _ID), _METADATA_LEVEL, *_CONTENT_FILTERS),
        ((v.P_FOLDER_ENTRY_UUID, v.P_FOLDER_UNIQUE_ID),),
    ),
    QuerySpec(
        "GetFoldersForDocument",
        v.SQ_GET_FOLDERS_FOR_DOCUMENT,
        (_p(v.P_DE_ENTRY_UUID, _ID), _p(v.P_DE_UNIQUE_ID, _ID), _HOME),
        _DE_IDS,
    ),
    QuerySpec(
        "GetRelatedDocuments",
        v.SQ_GET_RELATED_DOCUMENTS,
        (
            _p(v.P_DE_ENTRY_UUID, _ID),
            _p(v.P_DE_UNIQUE_ID, _ID),
            _p(v.P_ASSOCIATION_TYPES, _IDS, required=True),
            _DE_TYPE,
            _METADATA_LEVEL,
            _HOME,
        ),
        _DE_IDS,
    ),
)
QUERY_BY_ID: dict[str, QuerySpec] = {q.query_id: q for q in QUERIES}
QUERY_BY_NAME: dict[str, QuerySpec] = {q.name: q for q in QUERIES}


# --- value syntax --------------------------------------------------------------------------


class _Malformed(ValueError):
    pass


def _items(raw: str) -> list[tuple[str, bool]]:
    """The items of one rim:Value: `'a'`, `('a', 'b')` or a bare number. Each item is
    (text, was_quoted)."""
    text = raw.strip()
    if text.startswith("(") and text.endswith(")"):
        body = text[1:-1].strip()
        if not body:
            raise _Malformed("an empty list")
        return _list_items(body)
    return [_single_item(text)]


def _list_items(body: str) -> list[tuple[str, bool]]:
    items: list[tuple[str, bool]] = []
    position = 0
    while True:
        while position < len(body) and body[position].isspace():
            position += 1
        if position < len(body) and body[position] == "'":
            value, position = _quoted(body, position)
            items.append((value, True))
        else:
            end = body.find(",", position)
            end = len(body) if end < 0 else end
            items.append(_single_item(body[position:end]))
            position = end
        while position < len(body) and body[position].isspace():
            position += 1
        if position >= len(body):
            return items
        if body[position] != ",":
            raise _Malformed(f"unexpected {body[position : position + 10]!r} in a list")
        position += 1


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The string quoted at text[start] ('' inside is one quote) and the position after it."""
    chars: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "'":
            if text.startswith("''", position):
                chars.append("'")
                position += 2
                continue
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    raise _Malformed(f"unterminated quoted string {text[start : start + 40]!r}")


def _single_item(text: str) -> tuple[str, bool]:
    text = text.strip()
    if not text:
        raise _Malformed("an empty value")
    if text.startswith("'"):
        value, end = _quoted(text, 0)
        if end != len(text):
            raise _Malformed(f"text after the closing quote in {text!r}")
        return value, True
    return text, False


_DTM_FORMATS = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


def _time(text: str) -> str:
    if not text.isdigit() or len(text) not in _DTM_FORMATS:
        raise _Malformed(f"{text!r} is not a DTM time (YYYY[MM[DD[hh[mm[ss]]]]])")
    try:
        datetime.strptime(text, _DTM_FORMATS[len(text)])
    except ValueError as exc:
        raise _Malformed(f"{text!r} is not a valid time") from exc
    padded = sortable_dtm(text)
    assert padded is not None
    return padded


def _code(text: str) -> CodeValue:
    parts = text.split("^")
    # HL7 CE `code^display^scheme` (the display is ignored); `code^^^scheme` is accepted too.
    if len(parts) == 3 or (len(parts) == 4 and not parts[1] and not parts[2]):
        code, scheme = parts[0].strip(), parts[-1].strip()
        if code and scheme:
            return CodeValue(code, scheme)
    raise _Malformed(f"{text!r} is not a code 'code^^codingScheme'")


def _slot_value(spec: ParamSpec, raw_values: Sequence[str]) -> tuple[Any, XdsError | None]:
    """The typed value of one slot of parameter `spec`, or the error that prevents it."""
    try:
        items = [item for raw in raw_values for item in _items(raw)]
    except _Malformed as exc:
        return None, _malformed(spec, str(exc))
    if not items:
        return None, _malformed(spec, "no value")
    if spec.kind in (ParamKind.ID, ParamKind.TIME, ParamKind.LEVEL) and len(items) > 1:
        return None, error(
            ErrorCode.STORED_QUERY_PARAM_NUMBER, f"{spec.name} takes one value, {len(items)} were given", spec.name
        )
    try:
        if spec.kind is ParamKind.TIME:
            # Times are numbers; a quoted time is tolerated (some sources quote every value).
            return _time(items[0][0]), None
        if spec.kind is ParamKind.LEVEL:
            if items[0][0] not in ("1", "2"):
                raise _Malformed(f"{items[0][0]!r} is neither 1 nor 2")
            return items[0][0], None
        unquoted = [text for text, quoted in items if not quoted]
        if unquoted:
            raise _Malformed(f"{unquoted[0]!r} must be quoted ('...')")
        texts = [text for text, _ in items]
        if spec.kind is ParamKind.ID:
            return texts[0], None
        if spec.kind is ParamKind.CODES:
            return tuple(_code(text) for text in texts), None
        return tuple(dict.fromkeys(texts)), None
    except _Malformed as exc:
        return None, _malformed(spec, str(exc))


def _malformed(spec: ParamSpec, problem: str) -> XdsError:
    return error(ErrorCode.REGISTRY_ERROR, f"{spec.name} must be {spec.kind.value}: {problem}", spec.name)


def parse_stored_query(
    query_id: str,
    slots: Sequence[tuple[str, Sequence[str]]],
    return_type: str = v.RETURN_TYPE_LEAF_CLASS,
    home_community_id: str | None = None,
) -> StoredQuery | list[XdsError]:
    """The stored query of an AdhocQuery (its id, its slots in order, the returnType asked),
    or every error found in its parameters. Unknown parameters are ignored."""
    spec = QUERY_BY_ID.get(query_id.strip())
    if spec is None:
        return [error(ErrorCode.UNKNOWN_STORED_QUERY, f"unknown stored query id {query_id!r}", query_id)]
    errors: list[XdsError] = []
    try:
        kind = ReturnType(return_type)
    except ValueError:
        errors.append(
            error(
                ErrorCode.REGISTRY_ERROR,
                f"returnType must be LeafClass or ObjectRef, not {return_type!r}",
                "returnType",
            )
        )
        kind = ReturnType.LEAF_CLASS
    by_name: dict[str, list[Sequence[str]]] = {}
    for name, slot in slots:
        by_name.setdefault(name, []).append(slot)
    values: dict[str, ParamValue] = {}
    for param in spec.params:
        given = by_name.get(param.name)
        if given is None:
            if param.required:
                errors.append(
                    error(
                        ErrorCode.STORED_QUERY_MISSING_PARAM,
                        f"{spec.name} requires the parameter {param.name}",
                        param.name,
                    )
                )
            continue
        if len(given) > 1 and not param.and_slots:
            errors.append(
                error(
                    ErrorCode.STORED_QUERY_PARAM_NUMBER,
                    f"{param.name} is given in {len(given)} slots; {spec.name} allows one",
                    param.name,
                )
            )
            continue
        parsed = []
        for slot_values in given:
            value, problem = _slot_value(param, slot_values)
            if problem is not None:
                errors.append(problem)
            else:
                parsed.append(value)
        if len(parsed) == len(given):
            values[param.name] = tuple(parsed) if param.kind is ParamKind.CODES else parsed[0]
    for group in spec.one_of:
        given_names = [name for name in group if name in by_name]
        choices = " or ".join(group)
        if len(given_names) > 1:
            errors.append(
                error(
                    ErrorCode.STORED_QUERY_PARAM_NUMBER,
                    f"{spec.name} takes {choices}, not several",
                    " ".join(given_names),
                )
            )
        elif not given_names:
            errors.append(
                error(ErrorCode.STORED_QUERY_MISSING_PARAM, f"{spec.name} requires {choices}", " ".join(group))
            )
    if errors:
        return errors
    home = values.get(v.P_HOME_COMMUNITY_ID)
    return StoredQuery(spec, kind, values, home if isinstance(home, str) else home_community_id)


# --- SQL building blocks -------------------------------------------------------------------


class xds_like(FunctionElement[bool]):
    """`column LIKE pattern`, case-sensitive on every database.

    SQLite's LIKE ignores ASCII case and PostgreSQL's does not: SQLite gets GLOB instead (always
    case-sensitive), with the pattern translated in Python. Arguments: column, LIKE pattern
    (backslash escapes, as PostgreSQL reads it), GLOB pattern.
    """

    type = Boolean()
    name = "xds_like"
    inherit_cache = True


@compiles(xds_like)
def _compile_like(element: xds_like, compiler: Any, **kw: Any) -> str:
    column, like_pattern, _glob = list(element.clauses)
    return f"{compiler.process(column, **kw)} LIKE {compiler.process(like_pattern, **kw)}"


@compiles(xds_like, "sqlite")
def _compile_glob(element: xds_like, compiler: Any, **kw: Any) -> str:
    column, _like, glob_pattern = list(element.clauses)
    return f"{compiler.process(column, **kw)} GLOB {compiler.process(glob_pattern, **kw)}"


def like_patterns(pattern: str) -> tuple[str, str]:
    """An XDS author pattern (`%` any text, `_` one character, nothing else special) as a
    PostgreSQL LIKE pattern and as an SQLite GLOB pattern."""
    like = pattern.replace("\\", "\\\\")
    glob = []
    for char in pattern:
        glob.append({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(char, char))
    return like, "".join(glob)


def _matches_any(column: Any, patterns: Iterable[str]) -> ColumnElement[bool]:
    return or_(*[xds_like(column, *like_patterns(p)) for p in patterns])


def _code_in(code_column: Any, scheme_column: Any, codes: Sequence[CodeValue]) -> ColumnElement[bool]:
    # The IN on the code alone lets the (patient, status, code) indexes narrow the search; the
    # OR then pairs each code with its own scheme.
    return and_(
        code_column.in_(sorted({c.code for c in codes})),
        or_(*[and_(code_column == c.code, scheme_column == c.scheme) for c in codes]),
    )


def _time_range(column: Any, low: str | None, high: str | None) -> list[ColumnElement[bool]]:
    """From inclusive, To exclusive, on 14-digit padded DTMs (see `serialize.sortable_dtm`)."""
    conditions = []
    if low is not None:
        conditions.append(column >= low)
    if high is not None:
        conditions.append(column < high)
    return conditions


def _document_code_filters(q: StoredQuery, name: str, kind: str) -> list[ColumnElement[bool]]:
    return [
        exists().where(
            _own(_de_code),
            _de_code.c.entry_uuid == _de.c.entry_uuid,
            _de_code.c.kind == kind,
            _code_in(_de_code.c.code, _de_code.c.scheme, ors),
        )
        for ors in q.codes(name)
    ]


def _single_code_filter(q: StoredQuery, name: str, code_column: Any, scheme_column: Any) -> list[ColumnElement[bool]]:
    return [_code_in(code_column, scheme_column, ors) for ors in q.codes(name)]


def _document_content_filters(q: StoredQuery) -> list[ColumnElement[bool]]:
    """formatCode, confidentialityCode (AND/OR), DocumentEntryType: the filters shared by
    FindDocuments, GetAll and the "...AndContents" queries."""
    return [
        *_single_code_filter(q, v.P_DE_FORMAT_CODE, _de.c.format_code, _de.c.format_code_scheme),
        *_document_code_filters(q, v.P_DE_CONFIDENTIALITY_CODE, CODE_KIND_CONFIDENTIALITY),
        _de.c.object_type.in_(q.texts(v.P_DE_TYPE) or (v.DOCUMENT_ENTRY_STABLE,)),
    ]


def _entry_columns(table: Any, q: StoredQuery) -> tuple[Any, ...]:
    # ObjectRef needs no JSON: leaving `data` out spares reading and decoding it.
    if q.leaf_class:
        return (table.c.entry_uuid, table.c.patient_id, table.c.status, table.c.data)
    return (table.c.entry_uuid, table.c.patient_id)


def _document_entries(q: StoredQuery, *where: ColumnElement[bool], all_versions: bool = False) -> Select[Any]:
    # ITI-57: every query returns the latest version of a DocumentEntry only, unless it names
    # the versions it wants (GetDocuments by entryUUID, or with $MetadataLevel 2).
    latest = () if all_versions else (_de.c.is_latest,)
    return (
        select(*_entry_columns(_de, q)).where(_own(_de), *where, *latest).order_by(_de.c.created_at, _de.c.entry_uuid)
    )


def _submission_sets(q: StoredQuery, *where: ColumnElement[bool]) -> Select[Any]:
    return select(*_entry_columns(_ss, q)).where(_own(_ss), *where).order_by(_ss.c.created_at, _ss.c.entry_uuid)


def _folders(q: StoredQuery, *where: ColumnElement[bool], all_versions: bool = False) -> Select[Any]:
    latest = () if all_versions else (_folder.c.is_latest,)
    return (
        select(*_entry_columns(_folder, q))
        .where(_own(_folder), *where, *latest)
        .order_by(_folder.c.created_at, _folder.c.entry_uuid)
    )


def _all_versions(q: StoredQuery, uuid_param: str) -> bool:
    """Whether GetDocuments / GetFolders want every version: objects named by entryUUID are
    given as named; by uniqueId or logical id, every version with $MetadataLevel 2."""
    return uuid_param in q.values or q.values.get(v.P_METADATA_LEVEL) == "2"


def _associations(*where: ColumnElement[bool]) -> Select[Any]:
    return (
        select(
            _association.c.entry_uuid,
            _association.c.source,
            _association.c.target,
            _association.c.status,
            _association.c.data,
        )
        .where(_own(_association), *where)
        .order_by(_association.c.created_at, _association.c.entry_uuid)
    )


def _has_member_targets(sources: Any) -> Select[Any]:
    return select(_association.c.target).where(
        _own(_association), _association.c.association_type == v.HAS_MEMBER, _association.c.source.in_(sources)
    )


def _document_uuids(q: StoredQuery) -> Any:
    """The entryUUIDs named by a query's $XDSDocumentEntryEntryUUID or, through a subquery,
    its $XDSDocumentEntryUniqueId (single- or multi-valued)."""
    uuid_value = q.values.get(v.P_DE_ENTRY_UUID)
    if uuid_value is not None:
        return [uuid_value] if isinstance(uuid_value, str) else list(uuid_value)
    unique_id_value = q.values[v.P_DE_UNIQUE_ID]
    unique_ids = [unique_id_value] if isinstance(unique_id_value, str) else list(unique_id_value)
    return select(_de.c.entry_uuid).where(_own(_de), _de.c.unique_id.in_(unique_ids)).scalar_subquery()


def _by_id(
    table: Any, q: StoredQuery, uuid_param: str, unique_id_param: str, logical_id_param: str = ""
) -> ColumnElement[bool]:
    value = q.values.get(uuid_param)
    column = table.c.entry_uuid
    if value is None and logical_id_param in q.values:
        value, column = q.values[logical_id_param], table.c.logical_id
    elif value is None:
        value, column = q.values[unique_id_param], table.c.unique_id
    return column.in_([value] if isinstance(value, str) else list(value))


# --- plans ---------------------------------------------------------------------------------


class AssociationScope(enum.Enum):
    """Associations that depend on the objects found, fetched once those are known."""

    BETWEEN_RESULTS = "between"  # source found, target found (or a kept association)
    TOUCHING_RESULTS = "touching"  # source or target found
    # GetFolderAndContents: the folder's HasMember associations to the documents found, and no
    # other association between them (a replacement's RPLC is not folder content; NIST 12327).
    FOLDER_MEMBERS = "folder-members"


@dataclass(frozen=True)
class Route:
    """Whose rows a query reads: the patient it names, or the patients of the objects it names
    by entryUUID, uniqueId or logical id (looked up by `run_plan`)."""

    patient: str | None = None
    entry_uuids: tuple[str, ...] = ()
    unique_ids: tuple[str, ...] = ()
    document_logical_ids: tuple[str, ...] = ()
    folder_logical_ids: tuple[str, ...] = ()


_PATIENT_PARAMS = (v.P_DE_PATIENT_ID, v.P_SS_PATIENT_ID, v.P_FOLDER_PATIENT_ID, v.P_PATIENT_ID)
_ENTRY_UUID_PARAMS = (v.P_DE_ENTRY_UUID, v.P_FOLDER_ENTRY_UUID, v.P_SS_ENTRY_UUID, v.P_UUID)
_UNIQUE_ID_PARAMS = (v.P_DE_UNIQUE_ID, v.P_FOLDER_UNIQUE_ID, v.P_SS_UNIQUE_ID)


def route_of(q: StoredQuery) -> Route:
    for name in _PATIENT_PARAMS:
        patient = q.values.get(name)
        if isinstance(patient, str):
            return Route(patient=patient)

    def values(*names: str) -> tuple[str, ...]:
        found: list[str] = []
        for name in names:
            value = q.values.get(name)
            if isinstance(value, str):
                found.append(value)
            elif value is not None:
                found += [item for item in value if isinstance(item, str)]
        return tuple(dict.fromkeys(found))

    return Route(
        entry_uuids=values(*_ENTRY_UUID_PARAMS),
        unique_ids=values(*_UNIQUE_ID_PARAMS),
        document_logical_ids=values(v.P_DE_LOGICAL_ID),
        folder_logical_ids=values(v.P_FOLDER_LOGICAL_ID),
    )


def route_patients(connection: Connection, route: Route) -> list[str]:
    """The patients whose rows a query reads, in a stable order. By entryUUID or uniqueId, from
    the claim tables (on Citus, each id is looked up on the shard of its id); by logical id (a
    rare ITI-57 query), from the objects themselves."""
    if route.patient is not None:
        return [route.patient]
    found: set[str] = set()
    lookups = (
        (_entry_uuid_claim.c.patient_id, _entry_uuid_claim.c.entry_uuid, route.entry_uuids),
        (_unique_id_claim.c.patient_id, _unique_id_claim.c.unique_id, route.unique_ids),
        (_de.c.patient_id, _de.c.logical_id, route.document_logical_ids),
        (_folder.c.patient_id, _folder.c.logical_id, route.folder_logical_ids),
    )
    for patient, key, ids in lookups:
        for start in range(0, len(ids), _ROUTE_CHUNK):
            found.update(connection.scalars(select(patient).where(key.in_(ids[start : start + _ROUTE_CHUNK]))))
    return sorted(found)


_ROUTE_CHUNK = 500


@dataclass(frozen=True)
class QueryPlan:
    """The selects of one stored query. Entry selects yield (entry_uuid, patient_id[, status,
    data]) — status and data for LeafClass only; association selects (entry_uuid, source,
    target, status, data). The status column, not the one inside `data`, is the current one."""

    submission_sets: Select[Any] | None = None
    folders: Select[Any] | None = None
    documents: Select[Any] | None = None
    associations: Select[Any] | AssociationScope | None = None
    # The entries found are there only through an association with the objects the query names
    # (GetRelatedDocuments, GetSubmissionSets, GetFoldersForDocument): where access control
    # hides that association, the entry goes too, as if the hidden object did not exist.
    anchored: bool = False
    # Associations that put the entries in the answer without being part of it (association
    # selects as above), read only for that access control.
    links: Select[Any] | None = None
    # Whose rows: every select above is run once per patient of the route.
    route: Route = field(default_factory=Route)


# Associations fetched by ids: one compiled form for every list length (expanding parameter).
_ID_LIST: BindParameter[str] = bindparam("ids", expanding=True)
ASSOCIATIONS_FROM = _associations(_association.c.source.in_(_ID_LIST))
ASSOCIATIONS_TOUCHING = _associations(or_(_association.c.source.in_(_ID_LIST), _association.c.target.in_(_ID_LIST)))


def find_documents(q: StoredQuery) -> QueryPlan:
    where = [
        _de.c.patient_id == q.text(v.P_DE_PATIENT_ID),
        _de.c.status.in_(q.texts(v.P_DE_STATUS)),
        *_single_code_filter(q, v.P_DE_CLASS_CODE, _de.c.class_code, _de.c.class_code_scheme),
        *_single_code_filter(q, v.P_DE_TYPE_CODE, _de.c.type_code, _de.c.type_code_scheme),
        *_single_code_filter(
            q, v.P_DE_PRACTICE_SETTING_CODE, _de.c.practice_setting_code, _de.c.practice_setting_code_scheme
        ),
        *_single_code_filter(
            q,
            v.P_DE_HEALTHCARE_FACILITY_TYPE_CODE,
            _de.c.healthcare_facility_type_code,
            _de.c.healthcare_facility_type_code_scheme,
        ),
        *_time_range(_de.c.creation_time, q.text(v.P_DE_CREATION_TIME_FROM), q.text(v.P_DE_CREATION_TIME_TO)),
        *_time_range(
            _de.c.service_start_time, q.text(v.P_DE_SERVICE_START_TIME_FROM), q.text(v.P_DE_SERVICE_START_TIME_TO)
        ),
        *_time_range(
            _de.c.service_stop_time, q.text(v.P_DE_SERVICE_STOP_TIME_FROM), q.text(v.P_DE_SERVICE_STOP_TIME_TO)
        ),
        *_document_code_filters(q, v.P_DE_EVENT_CODE_LIST, CODE_KIND_EVENT),
        *_document_content_filters(q),
    ]
    authors = q.texts(v.P_DE_AUTHOR_PERSON)
    if authors:
        where.append(
            exists().where(
                _own(_de_author),
                _de_author.c.entry_uuid == _de.c.entry_uuid,
                _matches_any(_de_author.c.author_person, authors),
            )
        )
    references = q.texts(v.P_DE_REFERENCE_ID_LIST)
    if references:
        where.append(
            exists().where(
                _own(_de_reference),
                _de_reference.c.entry_uuid == _de.c.entry_uuid,
                _de_reference.c.reference_id.in_(references),
            )
        )
    return QueryPlan(documents=_document_entries(q, *where))


def find_documents_by_reference_id(q: StoredQuery) -> QueryPlan:
    return find_documents(q)  # the reference id filter is applied whenever the parameter is given


def find_submission_sets(q: StoredQuery) -> QueryPlan:
    where = [
        _ss.c.patient_id == q.text(v.P_SS_PATIENT_ID),
        _ss.c.status.in_(q.texts(v.P_SS_STATUS)),
        *_time_range(_ss.c.submission_time, q.text(v.P_SS_SUBMISSION_TIME_FROM), q.text(v.P_SS_SUBMISSION_TIME_TO)),
        *_single_code_filter(q, v.P_SS_CONTENT_TYPE, _ss.c.content_type_code, _ss.c.content_type_code_scheme),
    ]
    sources = q.texts(v.P_SS_SOURCE_ID)
    if sources:
        where.append(_ss.c.source_id.in_(sources))
    authors = q.texts(v.P_SS_AUTHOR_PERSON)
    if authors:
        where.append(
            exists().where(
                _own(_ss_author),
                _ss_author.c.entry_uuid == _ss.c.entry_uuid,
                _matches_any(_ss_author.c.author_person, authors),
            )
        )
    return QueryPlan(submission_sets=_submission_sets(q, *where))


def find_folders(q: StoredQuery) -> QueryPlan:
    where = [
        _folder.c.patient_id == q.text(v.P_FOLDER_PATIENT_ID),
        _folder.c.status.in_(q.texts(v.P_FOLDER_STATUS)),
        *_time_range(
            _folder.c.last_update_time, q.text(v.P_FOLDER_LAST_UPDATE_TIME_FROM), q.text(v.P_FOLDER_LAST_UPDATE_TIME_TO)
        ),
        *[
            exists().where(
                _own(_folder_code),
                _folder_code.c.entry_uuid == _folder.c.entry_uuid,
                _code_in(_folder_code.c.code, _folder_code.c.scheme, ors),
            )
            for ors in q.codes(v.P_FOLDER_CODE_LIST)
        ],
    ]
    return QueryPlan(folders=_folders(q, *where))


def get_all(q: StoredQuery) -> QueryPlan:
    patient = q.text(v.P_PATIENT_ID)
    return QueryPlan(
        submission_sets=_submission_sets(q, _ss.c.patient_id == patient, _ss.c.status.in_(q.texts(v.P_SS_STATUS))),
        folders=_folders(q, _folder.c.patient_id == patient, _folder.c.status.in_(q.texts(v.P_FOLDER_STATUS))),
        documents=_document_entries(
            q, _de.c.patient_id == patient, _de.c.status.in_(q.texts(v.P_DE_STATUS)), *_document_content_filters(q)
        ),
        associations=AssociationScope.BETWEEN_RESULTS,
    )


def get_documents(q: StoredQuery) -> QueryPlan:
    return QueryPlan(
        documents=_document_entries(
            q,
            _by_id(_de, q, v.P_DE_ENTRY_UUID, v.P_DE_UNIQUE_ID, v.P_DE_LOGICAL_ID),
            all_versions=_all_versions(q, v.P_DE_ENTRY_UUID),
        )
    )


def get_folders(q: StoredQuery) -> QueryPlan:
    return QueryPlan(
        folders=_folders(
            q,
            _by_id(_folder, q, v.P_FOLDER_ENTRY_UUID, v.P_FOLDER_UNIQUE_ID, v.P_FOLDER_LOGICAL_ID),
            all_versions=_all_versions(q, v.P_FOLDER_ENTRY_UUID),
        )
    )


def get_associations(q: StoredQuery) -> QueryPlan:
    ids = list(q.texts(v.P_UUID))
    return QueryPlan(associations=_associations(or_(_association.c.source.in_(ids), _association.c.target.in_(ids))))


def get_documents_and_associations(q: StoredQuery) -> QueryPlan:
    return QueryPlan(documents=get_documents(q).documents, associations=AssociationScope.TOUCHING_RESULTS)


def get_submission_sets(q: StoredQuery) -> QueryPlan:
    ids = list(q.texts(v.P_UUID))
    links = and_(_own(_association), _association.c.association_type == v.HAS_MEMBER, _association.c.target.in_(ids))
    return QueryPlan(
        submission_sets=_submission_sets(q, _ss.c.entry_uuid.in_(select(_association.c.source).where(links))),
        associations=_associations(links, _association.c.source.in_(select(_ss.c.entry_uuid).where(_own(_ss)))),
        anchored=True,
    )


def get_submission_set_and_contents(q: StoredQuery) -> QueryPlan:
    chosen = _by_id(_ss, q, v.P_SS_ENTRY_UUID, v.P_SS_UNIQUE_ID)
    members = _has_member_targets(select(_ss.c.entry_uuid).where(_own(_ss), chosen))
    return QueryPlan(
        submission_sets=_submission_sets(q, chosen),
        folders=_folders(q, _folder.c.entry_uuid.in_(members)),
        documents=_document_entries(q, _de.c.entry_uuid.in_(members), *_document_content_filters(q)),
        associations=AssociationScope.BETWEEN_RESULTS,
    )


def get_folder_and_contents(q: StoredQuery) -> QueryPlan:
    chosen = _by_id(_folder, q, v.P_FOLDER_ENTRY_UUID, v.P_FOLDER_UNIQUE_ID)
    all_versions = _all_versions(q, v.P_FOLDER_ENTRY_UUID)
    versions = (chosen,) if all_versions else (chosen, _folder.c.is_latest)
    members = _has_member_targets(select(_folder.c.entry_uuid).where(_own(_folder), *versions))
    return QueryPlan(
        folders=_folders(q, chosen, all_versions=all_versions),
        documents=_document_entries(q, _de.c.entry_uuid.in_(members), *_document_content_filters(q)),
        associations=AssociationScope.FOLDER_MEMBERS,
    )


def get_folders_for_document(q: StoredQuery) -> QueryPlan:
    membership = and_(
        _own(_association),
        _association.c.association_type == v.HAS_MEMBER,
        _association.c.target.in_(_document_uuids(q)),
    )
    return QueryPlan(
        folders=_folders(q, _folder.c.entry_uuid.in_(select(_association.c.source).where(membership))),
        anchored=True,
        links=_associations(membership, _association.c.source.in_(select(_folder.c.entry_uuid).where(_own(_folder)))),
    )


def get_related_documents(q: StoredQuery) -> QueryPlan:
    documents = _document_uuids(q)
    # Only associations between two DocumentEntries relate documents: a HasMember from a
    # SubmissionSet does not, even when HasMember is among the types asked for.
    other = _de.alias("other_document")
    # An association deprecated by ITI-57 no longer relates its documents, unless the caller
    # asks for the history ($MetadataLevel 2; NIST 20001).
    current = () if q.values.get(v.P_METADATA_LEVEL) == "2" else (_association.c.status == v.STATUS_APPROVED,)
    related = and_(
        _own(_association),
        _association.c.association_type.in_(q.texts(v.P_ASSOCIATION_TYPES)),
        *current,
        or_(
            and_(
                _association.c.source.in_(documents),
                exists().where(_own(other), other.c.entry_uuid == _association.c.target),
            ),
            and_(
                _association.c.target.in_(documents),
                exists().where(_own(other), other.c.entry_uuid == _association.c.source),
            ),
        ),
    )
    ends = union(select(_association.c.source).where(related), select(_association.c.target).where(related))
    where = [_de.c.entry_uuid.in_(ends)]
    if q.texts(v.P_DE_TYPE):
        where.append(_de.c.object_type.in_(q.texts(v.P_DE_TYPE)))
    return QueryPlan(documents=_document_entries(q, *where), associations=_associations(related), anchored=True)


BUILDERS = {
    "FindDocuments": find_documents,
    "FindDocumentsByReferenceId": find_documents_by_reference_id,
    "FindSubmissionSets": find_submission_sets,
    "FindFolders": find_folders,
    "GetAll": get_all,
    "GetDocuments": get_documents,
    "GetFolders": get_folders,
    "GetAssociations": get_associations,
    "GetDocumentsAndAssociations": get_documents_and_associations,
    "GetSubmissionSets": get_submission_sets,
    "GetSubmissionSetAndContents": get_submission_set_and_contents,
    "GetFolderAndContents": get_folder_and_contents,
    "GetFoldersForDocument": get_folders_for_document,
    "GetRelatedDocuments": get_related_documents,
}


def build_plan(q: StoredQuery) -> QueryPlan:
    return replace(BUILDERS[q.name](q), route=route_of(q))


def associations_between(rows: Sequence[tuple[str, str, str]], found: set[str]) -> list[str]:
    """Which associations (id, source, target) link objects found: source and target found,
    or source found and target an association kept (the SubmissionSet's HasMember to a
    Folder→DocumentEntry link). Ids of the kept associations, in the order given."""
    direct = {a for a, source, target in rows if source in found and target in found}
    return [a for a, source, target in rows if a in direct or (source in found and target in direct)]


@dataclass
class QueryRows:
    """What the selects of a plan returned (see `QueryPlan` for the row shapes)."""

    submission_sets: list[Any] = field(default_factory=list)
    folders: list[Any] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)
    associations: list[Any] = field(default_factory=list)
    links: list[Any] = field(default_factory=list)  # QueryPlan.links: for access control, never answered

    def entries(self) -> list[Any]:
        return self.submission_sets + self.folders + self.documents


def _fetch(connection: Connection, select: Select[Any] | None, limit: int, patient: str) -> list[Any]:
    if select is None:
        return []
    # One row over the limit is enough to know the limit is passed, whatever the real count.
    return list(connection.execute(select.limit(limit + 1), {"patient": patient}))


def run_plan(engine: Engine, plan: QueryPlan, limit: int, links: bool = False) -> QueryRows | list[XdsError]:
    """Run a plan on one connection, once per patient of its route (with its `links` if asked:
    access control needs them); XDSTooManyResults past `limit` objects."""
    rows = QueryRows()
    with engine.connect() as connection:
        for patient in route_patients(connection, plan.route):
            own = _run_for(connection, plan, limit, links, patient)
            if isinstance(own, list):
                return own
            rows.links += own.links
            rows.submission_sets += own.submission_sets
            rows.folders += own.folders
            rows.documents += own.documents
            rows.associations += own.associations
            if len(rows.links) > limit or len(rows.entries()) + len(rows.associations) > limit:
                return [_too_many(limit)]
    return rows


def _run_for(
    connection: Connection, plan: QueryPlan, limit: int, links: bool, patient: str
) -> QueryRows | list[XdsError]:
    rows = QueryRows()
    if links:
        rows.links = _fetch(connection, plan.links, limit, patient)
        if len(rows.links) > limit:
            return [_too_many(limit)]
    rows.submission_sets = _fetch(connection, plan.submission_sets, limit, patient)
    rows.folders = _fetch(connection, plan.folders, limit, patient)
    rows.documents = _fetch(connection, plan.documents, limit, patient)
    found = [row[0] for row in rows.entries()]
    if len(found) > limit:
        return [_too_many(limit)]
    if isinstance(plan.associations, AssociationScope):
        if found:
            statement = (
                ASSOCIATIONS_TOUCHING if plan.associations is AssociationScope.TOUCHING_RESULTS else ASSOCIATIONS_FROM
            )
            rows.associations = list(connection.execute(statement, {"ids": found, "patient": patient}))
    else:
        rows.associations = _fetch(connection, plan.associations, limit, patient)
    if plan.associations is AssociationScope.BETWEEN_RESULTS:
        keep = set(associations_between([(r[0], r[1], r[2]) for r in rows.associations], set(found)))
        rows.associations = [r for r in rows.associations if r[0] in keep]
    elif plan.associations is AssociationScope.FOLDER_MEMBERS:
        folders, documents = {r[0] for r in rows.folders}, {r[0] for r in rows.documents}
        rows.associations = [
            r
            for r in rows.associations
            if r[1] in folders and r[2] in documents and r[4].get("association_type") == v.HAS_MEMBER
        ]
    if len(found) + len(rows.associations) > limit:
        return [_too_many(limit)]
    return rows


def _too_many(limit: int) -> XdsError:
    return error(
        ErrorCode.TOO_MANY_RESULTS, f"the query matches more than {limit} objects; narrow it (dates, codes, status)"
    )
