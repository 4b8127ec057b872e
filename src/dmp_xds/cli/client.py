"""`dmp-xds submit` and `dmp-xds retrieve`: the reference Document Source and Consumer.

The main CLI (`dmp_xds.cli.main`) registers the two click commands exported here. Endpoints default
to a local server; `DMP_XDS_URL` (e.g. `https://xds.example:8443`) changes the base of both.
"""

from __future__ import annotations

import mimetypes
import os
import sys
from pathlib import Path
from typing import Any

import click
import requests
from lxml import etree
from zeep.exceptions import Error as ZeepError

from dmp_xds.dmp.cda.header import CdaError, read_cda_header
from dmp_xds.dmp.ins import INS_NIR
from dmp_xds.tools.client.metadata import (
    DEFAULT_CLASS_CODE,
    DEFAULT_CONFIDENTIALITY,
    DEFAULT_SOURCE_ID,
    DOCUMENT_ID,
    FORMAT_MIME_TYPE_SUFFICIENT,
    build_submission,
    build_submission_from_cda,
    cx,
    default_class_code,
    parse_code,
)
from dmp_xds.tools.client.soap import XdsClient, XdsClientError
from dmp_xds.xds.model import Submission
from dmp_xds.xds.vocabulary import (
    NS_QUERY,
    NS_RIM,
    RESPONSE_FAILURE,
    RESPONSE_SUCCESS,
    SLOT_REPOSITORY_UNIQUE_ID,
    TAG_EXTRINSIC_OBJECT,
    TAG_REGISTRY_ERROR,
    TAG_REGISTRY_RESPONSE,
    TAG_SLOT,
    TAG_VALUE,
)
from dmp_xds.xds.xml import UnsafeXmlError

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
GET_DOCUMENTS_QUERY_ID = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


def base_url() -> str:
    return os.environ.get("DMP_XDS_URL", DEFAULT_BASE_URL).rstrip("/")


def default_repository_url() -> str:
    return base_url() + "/xds/repository"


def default_registry_url() -> str:
    return base_url() + "/xds/registry"


def patient_cx(value: str) -> str:
    """`--patient`: a CX as is, or a bare NIR taken as an INS-NIR."""
    value = value.strip()
    return value if "^" in value else cx(value, INS_NIR)


def _code_option(_ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    try:
        if value is None:
            return None
        if isinstance(value, tuple):
            return [parse_code(v) for v in value] or None
        return parse_code(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from exc


def _short_status(status: str) -> str:
    return status.rsplit(":", 1)[-1]


def print_response(response: etree._Element) -> bool:
    """Print the status and errors of an `rs:RegistryResponse`; True unless it is a Failure."""
    status = response.get("status", "")
    click.echo(f"status: {_short_status(status)}")
    for error in response.iter(TAG_REGISTRY_ERROR):
        severity = _short_status(error.get("severity", "Error"))
        location = f" ({error.get('location')})" if error.get("location") else ""
        click.echo(f"{severity}: {error.get('errorCode')}: {error.get('codeContext')}{location}", err=True)
    return status != RESPONSE_FAILURE and status != ""


def _is_cda(data: bytes) -> bool:
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return False
    try:
        read_cda_header(data)
    except (CdaError, UnsafeXmlError):
        return False
    return True


def _require(name: str, value: Any) -> Any:
    if value is None:
        raise click.UsageError(f"{name} is required for a document that is not a CDA")
    return value


def _submission(data: bytes, file: Path, options: dict[str, Any]) -> Submission:
    if _is_cda(data):
        try:
            return build_submission_from_cda(data, **options)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    return build_submission(
        data,
        patient_id=_require("--patient", options["patient_id"]),
        mime_type=options["mime_type"] or mimetypes.guess_type(file.name)[0] or "application/octet-stream",
        title=options["title"] or file.stem,
        class_code=options["class_code"] or default_class_code(options["type_code"]),
        type_code=_require("--type-code", options["type_code"]),
        format_code=options["format_code"] or FORMAT_MIME_TYPE_SUFFICIENT,
        confidentiality_code=options["confidentiality_code"] or DEFAULT_CONFIDENTIALITY,
        healthcare_facility_type_code=_require("--healthcare-facility-type", options["healthcare_facility_type_code"]),
        practice_setting_code=_require("--practice-setting", options["practice_setting_code"]),
        author_person=options["author_person"],
        author_institution=options["author_institution"],
        author_specialty=options["author_specialty"],
        source_id=options["source_id"],
        comments=options["comments"],
    )


def _client(registry_url: str | None, repository_url: str | None, timeout: float) -> XdsClient:
    return XdsClient(registry_url or default_registry_url(), repository_url or default_repository_url(), timeout)


def _call_failed(exc: Exception) -> click.ClickException:
    return click.ClickException(f"{type(exc).__name__}: {exc}")


_CODE_HELP = "code^codingScheme^displayName"


@click.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--patient",
    "patient_id",
    help="Patient INS, as CX (NIR^^^&OID&ISO) or a bare NIR. Read from recordTarget for a CDA document.",
)
@click.option("--mime-type", help="Default: text/xml for a CDA, else guessed from the file name.")
@click.option("--title", help="Default: the CDA title, else the file name.")
@click.option(
    "--class-code",
    callback=_code_option,
    help=f"{_CODE_HELP} (default: the one the ANS table ASS_X04 "
    f"gives the typeCode, else {DEFAULT_CLASS_CODE.code}^{DEFAULT_CLASS_CODE.scheme}).",
)
@click.option("--type-code", callback=_code_option, help=f"{_CODE_HELP}; default: the CDA code.")
@click.option("--format-code", callback=_code_option, help=_CODE_HELP)
@click.option(
    "--confidentiality",
    "confidentiality_code",
    multiple=True,
    callback=_code_option,
    help=f"{_CODE_HELP}, repeatable (default N^2.16.840.1.113883.5.25).",
)
@click.option(
    "--healthcare-facility-type",
    "healthcare_facility_type_code",
    callback=_code_option,
    help=f"{_CODE_HELP}; default: the CDA healthCareFacility code.",
)
@click.option(
    "--practice-setting",
    "practice_setting_code",
    callback=_code_option,
    help=f"{_CODE_HELP}; default: the CDA performer's standardIndustryClassCode.",
)
@click.option("--author-person", help="XCN; default: the first CDA author.")
@click.option("--author-institution", help="XON; default: the first CDA author's organization.")
@click.option("--author-specialty", help="code^display^codeSystem; default: the CDA author's code.")
@click.option("--comments", help="DocumentEntry comments.")
@click.option(
    "--source-id",
    default=DEFAULT_SOURCE_ID,
    show_default=True,
    envvar="DMP_XDS_SOURCE_ID",
    help="OID of the sending system (SubmissionSet.sourceId).",
)
@click.option("--repository", "repository_url", help="Repository endpoint (default $DMP_XDS_URL/xds/repository).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds.")
def submit(file: Path, repository_url: str | None, timeout: float, **options: Any) -> None:
    """Send FILE to the repository (ITI-41 Provide and Register Document Set-b).

    For a CDA document the metadata comes from its header; options override it.
    """
    if options["patient_id"] is not None:
        options["patient_id"] = patient_cx(options["patient_id"])
    data = file.read_bytes()
    submission = _submission(data, file, options)
    from dmp_xds.xds.ebrim.encode import encode_submit_objects_request  # the ebRIM side, only when sending

    request = encode_submit_objects_request(submission)
    try:
        response = _client(None, repository_url, timeout).provide_and_register(request, {DOCUMENT_ID: data})
    except (ZeepError, XdsClientError, requests.RequestException) as exc:
        raise _call_failed(exc) from exc
    ok = print_response(response)
    click.echo(f"documentUniqueId: {submission.documents[0].unique_id}")
    if not ok:
        sys.exit(1)


def get_documents_request(unique_id: str) -> etree._Element:
    """An ITI-18 GetDocuments (LeafClass) by uniqueId: how a consumer learns the repository."""
    request = etree.Element(f"{{{NS_QUERY}}}AdhocQueryRequest", nsmap={"query": NS_QUERY, "rim": NS_RIM})
    etree.SubElement(request, f"{{{NS_QUERY}}}ResponseOption", returnType="LeafClass", returnComposedObjects="true")
    query = etree.SubElement(request, f"{{{NS_RIM}}}AdhocQuery", id=GET_DOCUMENTS_QUERY_ID)
    slot = etree.SubElement(query, TAG_SLOT, name="$XDSDocumentEntryUniqueId")
    etree.SubElement(etree.SubElement(slot, f"{{{NS_RIM}}}ValueList"), TAG_VALUE).text = f"('{unique_id}')"
    return request


def repository_id_from(query_response: etree._Element) -> str | None:
    for entry in query_response.iter(TAG_EXTRINSIC_OBJECT):
        for slot in entry.iter(TAG_SLOT):
            if slot.get("name") == SLOT_REPOSITORY_UNIQUE_ID:
                value = slot.findtext(f".//{TAG_VALUE}")
                if value:
                    return value.strip()
    return None


@click.command("retrieve")
@click.argument("unique_id")
@click.option(
    "--repository-id",
    envvar="DMP_XDS_REPOSITORY_UNIQUE_ID",
    help="repositoryUniqueId; default: asked of the registry (ITI-18 GetDocuments).",
)
@click.option("--repository", "repository_url", help="Repository endpoint (default $DMP_XDS_URL/xds/repository).")
@click.option("--registry", "registry_url", help="Registry endpoint (default $DMP_XDS_URL/xds/registry).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the document there (default: standard output).",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds.")
def retrieve(
    unique_id: str,
    repository_id: str | None,
    repository_url: str | None,
    registry_url: str | None,
    output: Path | None,
    timeout: float,
) -> None:
    """Fetch the document UNIQUE_ID (ITI-43 Retrieve Document Set)."""
    client = _client(registry_url, repository_url, timeout)
    try:
        if repository_id is None:
            query_response = client.stored_query(get_documents_request(unique_id))
            repository_id = repository_id_from(query_response)
            if repository_id is None:
                print_response(query_response)
                raise click.ClickException(f"the registry knows no document {unique_id}")
        response, documents = client.retrieve([(repository_id, unique_id)])
    except (ZeepError, XdsClientError, requests.RequestException) as exc:
        raise _call_failed(exc) from exc
    registry_response = response.find(TAG_REGISTRY_RESPONSE)
    if unique_id not in documents:
        if registry_response is not None:
            print_response(registry_response)
        sys.exit(1)
    if output is None:
        sys.stdout.buffer.write(documents[unique_id])
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(documents[unique_id])
        status = (
            registry_response.get("status", RESPONSE_SUCCESS) if registry_response is not None else RESPONSE_SUCCESS
        )
        click.echo(f"status: {_short_status(status)}", err=True)
        click.echo(f"{len(documents[unique_id])} bytes written to {output}", err=True)


__all__ = ["submit", "retrieve"]
