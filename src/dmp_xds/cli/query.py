"""`dmp-xds query ...` (ITI-18 from the command line) and `dmp-xds bench-load`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from lxml import etree

from dmp_xds.config import checkout_root
from dmp_xds.xds import vocabulary as v

STATUS_NAMES = {"approved": v.STATUS_APPROVED, "deprecated": v.STATUS_DEPRECATED, "submitted": v.STATUS_SUBMITTED}


def default_value_sets() -> str | None:
    """$DMP_XDS_VALUE_SETS, else the ANS kit beside a source checkout (none for an installed package)."""
    if "DMP_XDS_VALUE_SETS" in os.environ:
        return os.environ["DMP_XDS_VALUE_SETS"]
    root = checkout_root()
    return str(root.parent / "shared" / "ans-testcontenucda" / "jeuxDeValeurs") if root is not None else None


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _list(values: Sequence[str]) -> str:
    return "(" + ",".join(_quoted(value) for value in values) + ")"


def adhoc_query_request(query_id: str, slots: Sequence[tuple[str, str]], return_type: str) -> etree._Element:
    """A query:AdhocQueryRequest; `slots` are (parameter, value as written in the rim:Value)."""
    request = etree.Element(v.TAG_ADHOC_QUERY_REQUEST, nsmap={"query": v.NS_QUERY, "rim": v.NS_RIM})
    etree.SubElement(request, v.TAG_RESPONSE_OPTION, returnComposedObjects="true", returnType=return_type)
    query = etree.SubElement(request, v.TAG_ADHOC_QUERY, id=query_id)
    for name, value in slots:
        value_list = etree.SubElement(etree.SubElement(query, v.TAG_SLOT, name=name), v.TAG_VALUE_LIST)
        etree.SubElement(value_list, v.TAG_VALUE).text = value
    return request


def _slot_values(element: etree._Element, name: str) -> list[str]:
    for slot in element.iterfind(v.TAG_SLOT):
        if slot.get("name") == name:
            return [value.text or "" for value in slot.iterfind(f"{v.TAG_VALUE_LIST}/{v.TAG_VALUE}")]
    return []


def _classified(element: etree._Element, scheme: str) -> str:
    for classification in element.iterfind(v.TAG_CLASSIFICATION):
        if classification.get("classificationScheme") == scheme:
            return classification.get("nodeRepresentation", "")
    return ""


def _identifier(element: etree._Element) -> str:
    for identifier in element.iterfind(v.TAG_EXTERNAL_IDENTIFIER):
        if identifier.get("identificationScheme") in (v.DE_UNIQUE_ID, v.SS_UNIQUE_ID, v.FOLDER_UNIQUE_ID):
            return identifier.get("value", "")
    return ""


def _title(element: etree._Element) -> str:
    string = element.find(f"{v.TAG_NAME}/{v.TAG_LOCALIZED_STRING}")
    return "" if string is None else string.get("value", "")


def print_table(response: etree._Element) -> None:
    """The objects of an AdhocQueryResponse as a table, then its errors."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table("kind", "status", "uniqueId / id", "class", "type", "created", "title")
    objects = response.find(v.TAG_REGISTRY_OBJECT_LIST)
    for obj in [] if objects is None else list(objects):
        kind = etree.QName(obj).localname
        status = (obj.get("status") or "").rsplit(":", 1)[-1]
        if kind == "ExtrinsicObject":
            table.add_row(
                "DocumentEntry",
                status,
                _identifier(obj),
                _classified(obj, v.DE_CLASS_CODE),
                _classified(obj, v.DE_TYPE_CODE),
                "".join(_slot_values(obj, v.SLOT_CREATION_TIME)[:1]),
                _title(obj),
            )
        elif kind == "RegistryPackage":
            is_ss = any(
                c.get("classificationNode") == v.SUBMISSION_SET_NODE for c in obj.iterfind(v.TAG_CLASSIFICATION)
            )
            time = _slot_values(obj, v.SLOT_SUBMISSION_TIME if is_ss else v.SLOT_LAST_UPDATE_TIME)
            table.add_row(
                "SubmissionSet" if is_ss else "Folder", status, _identifier(obj), "", "", "".join(time[:1]), _title(obj)
            )
        elif kind == "Association":
            table.add_row(
                "Association",
                status,
                obj.get("id", ""),
                "",
                obj.get("associationType", "").rsplit(":", 1)[-1],
                "",
                f"{obj.get('sourceObject')} -> {obj.get('targetObject')}",
            )
        else:
            table.add_row(kind, "", obj.get("id", ""), "", "", "", "")
    console.print(table)
    status = response.get("status", "").rsplit(":", 1)[-1]
    console.print(f"{status}: {table.row_count} object(s)")
    for error in response.iter(v.TAG_REGISTRY_ERROR):
        console.print(f"[red]{error.get('errorCode')}[/red]: {error.get('codeContext')}")


def _run(ctx: click.Context, query_id: str, slots: list[tuple[str, str]], patient: str = "") -> None:
    """Send the stored query; `patient` (a CX) is the one its VIHF names, against a secured server."""
    from dmp_xds.cli.client import CALL_ERRORS, call_failed, make_client

    options = ctx.obj["query"]
    request = adhoc_query_request(query_id, slots, "ObjectRef" if options["object_ref"] else "LeafClass")
    try:
        client = make_client(options["target"], options["timeout"], registry_url=options["registry"])
        response = client.stored_query(request, patient)
    except CALL_ERRORS as exc:
        raise call_failed(exc) from exc
    if options["xml"]:
        click.echo(etree.tostring(response, pretty_print=True, encoding="unicode"))
    else:
        print_table(response)
    if response.get("status") != v.RESPONSE_SUCCESS:
        ctx.exit(1)


def _patient(value: str) -> str:
    from dmp_xds.cli.client import patient_cx

    return patient_cx(value)


def _statuses(values: Sequence[str]) -> str:
    return _list([STATUS_NAMES.get(s.lower(), s) for s in values])


def _codes(values: Sequence[str]) -> str:
    """CLI codes `code^^scheme` (or `code^scheme`) as an ITI-18 list."""
    out = []
    for value in values:
        parts = value.split("^")
        out.append(f"{parts[0]}^^{parts[1]}" if len(parts) == 2 else value)  # else the registry judges it
    return _list(out)


def _lps_options(function: Any) -> Any:
    from dmp_xds.cli.client import lps_options

    return lps_options(function)


@click.group("query")
@click.option("--registry", help="Registry endpoint (default: under --url).")
@click.option("--xml", is_flag=True, help="Print the raw AdhocQueryResponse.")
@click.option("--object-ref", is_flag=True, help="Ask for ObjectRefs instead of full objects (LeafClass).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds.")
@_lps_options
@click.pass_context
def query(ctx: click.Context, **options: Any) -> None:
    """ITI-18 Registry Stored Query (the DMP's TD3.1). The options above (--url, --pki...) go before
    the query's name: `dmp-xds query --pki var/pki find-documents --patient ...`."""
    from dmp_xds.cli.client import pop_target

    ctx.ensure_object(dict)
    options["target"] = pop_target(options)
    ctx.obj["query"] = options


_STATUS = click.option(
    "--status",
    multiple=True,
    default=("approved",),
    show_default=True,
    help="approved | deprecated | submitted | a status URN (repeatable: OR).",
)


_PATIENT_OF_VIHF = click.option(
    "--patient", help="The documents' patient (INS as CX, or a bare NIR): its VIHF names it; required with --pki."
)


@query.command("find-documents")
@click.option("--patient", required=True, help="Patient INS, as CX or a bare NIR.")
@_STATUS
@click.option("--class", "class_codes", multiple=True, help="classCode code^^scheme (repeatable: OR).")
@click.option("--type", "type_codes", multiple=True, help="typeCode code^^scheme (repeatable: OR).")
@click.option("--practice-setting", multiple=True, help="practiceSettingCode code^^scheme.")
@click.option("--format", "format_codes", multiple=True, help="formatCode code^^scheme.")
@click.option("--confidentiality", multiple=True, help="confidentialityCode code^^scheme (OR).")
@click.option("--from", "time_from", help="creationTime from (DTM, inclusive).")
@click.option("--to", "time_to", help="creationTime to (DTM, exclusive).")
@click.option("--author", multiple=True, help="authorPerson pattern (% and _ wildcards).")
@click.option("--on-demand", is_flag=True, help="On-demand documents too.")
@click.pass_context
def find_documents(
    ctx: click.Context,
    patient: str,
    status: tuple[str, ...],
    class_codes: tuple[str, ...],
    type_codes: tuple[str, ...],
    practice_setting: tuple[str, ...],
    format_codes: tuple[str, ...],
    confidentiality: tuple[str, ...],
    time_from: str | None,
    time_to: str | None,
    author: tuple[str, ...],
    on_demand: bool,
) -> None:
    """FindDocuments: a patient's documents."""
    slots = [(v.P_DE_PATIENT_ID, _quoted(_patient(patient))), (v.P_DE_STATUS, _statuses(status))]
    for name, codes in (
        (v.P_DE_CLASS_CODE, class_codes),
        (v.P_DE_TYPE_CODE, type_codes),
        (v.P_DE_PRACTICE_SETTING_CODE, practice_setting),
        (v.P_DE_FORMAT_CODE, format_codes),
        (v.P_DE_CONFIDENTIALITY_CODE, confidentiality),
    ):
        if codes:
            slots.append((name, _codes(codes)))
    if time_from:
        slots.append((v.P_DE_CREATION_TIME_FROM, time_from))
    if time_to:
        slots.append((v.P_DE_CREATION_TIME_TO, time_to))
    if author:
        slots.append((v.P_DE_AUTHOR_PERSON, _list(author)))
    if on_demand:
        slots.append((v.P_DE_TYPE, _list([v.DOCUMENT_ENTRY_STABLE, v.DOCUMENT_ENTRY_ON_DEMAND])))
    _run(ctx, v.SQ_FIND_DOCUMENTS, slots, _patient(patient))


@query.command("find-submission-sets")
@click.option("--patient", required=True, help="Patient INS, as CX or a bare NIR.")
@_STATUS
@click.pass_context
def find_submission_sets(ctx: click.Context, patient: str, status: tuple[str, ...]) -> None:
    """FindSubmissionSets: a patient's submission sets."""
    _run(
        ctx,
        v.SQ_FIND_SUBMISSION_SETS,
        [(v.P_SS_PATIENT_ID, _quoted(_patient(patient))), (v.P_SS_STATUS, _statuses(status))],
        _patient(patient),
    )


@query.command("find-folders")
@click.option("--patient", required=True, help="Patient INS, as CX or a bare NIR.")
@_STATUS
@click.pass_context
def find_folders(ctx: click.Context, patient: str, status: tuple[str, ...]) -> None:
    """FindFolders: a patient's folders."""
    _run(
        ctx,
        v.SQ_FIND_FOLDERS,
        [(v.P_FOLDER_PATIENT_ID, _quoted(_patient(patient))), (v.P_FOLDER_STATUS, _statuses(status))],
        _patient(patient),
    )


@query.command("get-all")
@click.option("--patient", required=True, help="Patient INS, as CX or a bare NIR.")
@_STATUS
@click.pass_context
def get_all(ctx: click.Context, patient: str, status: tuple[str, ...]) -> None:
    """GetAll: everything of a patient (documents, submission sets, folders, associations)."""
    statuses = _statuses(status)
    _run(
        ctx,
        v.SQ_GET_ALL,
        [
            (v.P_PATIENT_ID, _quoted(_patient(patient))),
            (v.P_DE_STATUS, statuses),
            (v.P_SS_STATUS, statuses),
            (v.P_FOLDER_STATUS, statuses),
        ],
        _patient(patient),
    )


@query.command("get-documents")
@click.argument("ids", nargs=-1, required=True)
@click.option("--uuid", "by_uuid", is_flag=True, help="IDS are entryUUIDs (default: uniqueIds).")
@_PATIENT_OF_VIHF
@click.pass_context
def get_documents(ctx: click.Context, ids: tuple[str, ...], by_uuid: bool, patient: str | None) -> None:
    """GetDocuments: documents by uniqueId (or entryUUID)."""
    slots = [(v.P_DE_ENTRY_UUID if by_uuid else v.P_DE_UNIQUE_ID, _list(ids))]
    _run(ctx, v.SQ_GET_DOCUMENTS, slots, _patient(patient) if patient else "")


@query.command("get-related-documents")
@click.argument("unique_id")
@click.option(
    "--type",
    "types",
    multiple=True,
    default=("RPLC", "APND", "XFRM", "XFRM_RPLC", "signs"),
    show_default=True,
    help="Association types (short names or URNs).",
)
@_PATIENT_OF_VIHF
@click.pass_context
def get_related_documents(ctx: click.Context, unique_id: str, types: tuple[str, ...], patient: str | None) -> None:
    """GetRelatedDocuments: replacements, addenda, transforms of a document."""
    urns = [t if ":" in t else f"urn:ihe:iti:2007:AssociationType:{t}" for t in types]
    slots = [(v.P_DE_UNIQUE_ID, _quoted(unique_id)), (v.P_ASSOCIATION_TYPES, _list(urns))]
    _run(ctx, v.SQ_GET_RELATED_DOCUMENTS, slots, _patient(patient) if patient else "")


@click.command("bench-load")
@click.option("--patients", type=click.IntRange(min=1), required=True, help="Patients to generate.")
@click.option("--documents-per-patient", type=click.IntRange(min=1), required=True)
@click.option(
    "--first-patient",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Index of the first generated patient (to add to an already loaded registry).",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--value-sets",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_value_sets,
    help="Folder of the ANS value sets (JDV_J0x_*.xml); default $DMP_XDS_VALUE_SETS.",
)
@click.pass_context
def bench_load(
    ctx: click.Context,
    patients: int,
    documents_per_patient: int,
    first_patient: int,
    seed: int,
    value_sets: Path | None,
) -> None:
    """Fill the registry with generated metadata (for benchmarks): CI-SIS codes, several authors,
    folders, replacements. Bulk inserts; nothing is validated."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dmp_xds.cli.common import open_engine
    from dmp_xds.storage.store import RegistryStore
    from dmp_xds.tools.bench_load import CodePools, ValueSetMissing, load

    if value_sets is None:
        raise click.ClickException("no value sets: give --value-sets or DMP_XDS_VALUE_SETS")
    try:
        pools = CodePools.load(value_sets)
    except ValueSetMissing as exc:
        raise click.ClickException(f"{exc} (give --value-sets or DMP_XDS_VALUE_SETS)") from exc
    engine = open_engine(ctx)
    try:
        columns = (TextColumn("patients"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns) as progress:
            task = progress.add_task("load", total=patients)
            written = load(
                RegistryStore(engine),
                pools,
                patients,
                documents_per_patient,
                seed=seed,
                first_patient=first_patient,
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        engine.dispose()
    click.echo(f"{written} DocumentEntries for {patients} patients loaded")
