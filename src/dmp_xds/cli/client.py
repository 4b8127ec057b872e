"""`dmp-xds submit` and `dmp-xds retrieve`: the reference Document Source and Consumer.

The main CLI (`dmp_xds.cli.main`) registers the two click commands exported here (and `query`
shares their options). Against a secured server or the DMP (`--pki`), they act as a
DMP-compatible LPS: a TLS client certificate and a VIHF per call (tools/client/lps.py).

Where: `--url` / `DMP_XDS_URL`, a server (`https://host:port`: its `/xds/` endpoints) or a DMP
base URL (`https://host/si-dmp-server/v2/services/`: its `registry` and `repository`), or the
endpoints themselves (`--registry`, `--repository`). Default: this machine's `make serve`, at its
DMP paths over HTTPS with `--pki`, else plain HTTP.
"""

from __future__ import annotations

import mimetypes
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import requests
from lxml import etree
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault as ZeepFault

from dmp_xds.dmp.cda.header import CdaError, read_cda_header
from dmp_xds.dmp.ins import INS_NIR
from dmp_xds.security.vocabulary import ACCESS_MODES, ACCESS_NORMAL
from dmp_xds.tools.client.lps import (
    DEFAULT_ESTABLISHMENT,
    LOCAL_DMP_URL,
    LOCAL_URL,
    MODE_DIRECT,
    MODE_INDIRECT,
    Caller,
    CredentialsError,
    MissingPatient,
    service_urls,
)
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
from dmp_xds.tools.client.publish import provide_and_register_request
from dmp_xds.tools.client.soap import XdsClient, XdsClientError
from dmp_xds.tools.conformance.identity import DEFAULT_IDENTITY
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

GET_DOCUMENTS_QUERY_ID = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
F = TypeVar("F", bound=Callable[..., Any])


def base_url(secured: bool = False) -> str:
    """`DMP_XDS_URL`, else this machine's `make serve`: its DMP paths over HTTPS when secured."""
    return os.environ.get("DMP_XDS_URL", LOCAL_DMP_URL if secured else LOCAL_URL)


_LPS_OPTIONS = [
    click.option(
        "--url",
        "base_url_option",
        envvar="DMP_XDS_URL",
        help="A server (https://host:port) or a DMP base URL (https://host/si-dmp-server/v2/services/). "
        f"Default: {LOCAL_DMP_URL} with --pki, else {LOCAL_URL}.",
    ),
    click.option(
        "--pki",
        "pki_dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="DMP_XDS_PKI",
        help="Act as an LPS with this test PKI (dmp-xds pki init DIR; make serve writes var/pki): "
        "TLS client certificate and a VIHF on every call.",
    ),
    click.option(
        "--identity",
        default=DEFAULT_IDENTITY,
        show_default=True,
        help="With --pki: who acts, an identity of the PKI's identities.json (a card holder), or 'patient'.",
    ),
    click.option(
        "--mode",
        type=click.Choice([MODE_DIRECT, MODE_INDIRECT]),
        default=MODE_DIRECT,
        show_default=True,
        help="With --pki: direct (TLS and VIHF with the card) or indirect (with the establishment's certificate).",
    ),
    click.option(
        "--establishment",
        default=DEFAULT_ESTABLISHMENT,
        show_default=True,
        help="With --mode indirect: the PKI's establishment that vouches for --identity.",
    ),
    click.option(
        "--access-mode",
        type=click.Choice(list(ACCESS_MODES)),
        default=ACCESS_NORMAL,
        show_default=True,
        help="With --pki: the VIHF's access mode.",
    ),
    click.option("--reason", default="", help="With --access-mode bris_de_glace: why (Mode_Acces_Raison)."),
    click.option("--audience", default="", help="With --pki: the VIHF Audience, if the server checks one."),
    click.option(
        "--cacert",
        type=click.Path(dir_okay=False, path_type=Path),
        help="CA bundle the server's certificate must chain to (default: the --pki trust anchors).",
    ),
]


def lps_options(function: F) -> F:
    """The options that say where the server is and, with --pki, who calls it."""
    for option in reversed(_LPS_OPTIONS):
        function = option(function)
    return function


@dataclass(frozen=True)
class Target:
    """Where the calls go and as whom: `lps_options`, read."""

    base: str | None  # --url, else the default
    caller: Caller | None  # with --pki
    verify: str | None  # the CA bundle the server's certificate must chain to (--cacert, else the PKI's)


def pop_target(options: dict[str, Any]) -> Target:
    """Take the `lps_options` out of a command's options."""
    base = options.pop("base_url_option")
    pki_dir: Path | None = options.pop("pki_dir")
    names = ("identity", "mode", "establishment", "access_mode", "reason", "audience", "cacert")
    values = {name: options.pop(name) for name in names}
    cacert: Path | None = values["cacert"]
    if cacert is not None and not cacert.is_file():
        raise click.BadParameter(f"{cacert}: no such file", param_hint="--cacert")
    if pki_dir is None:
        return Target(base, None, str(cacert) if cacert else None)
    if not (pki_dir / "identities.json").is_file():
        raise click.BadParameter(
            f"{pki_dir} holds no test PKI (no identities.json; `make serve` writes var/pki, "
            "`dmp-xds pki init DIR` another)",
            param_hint="--pki",
        )
    try:
        caller = Caller.load(pki_dir, **values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--pki / --identity / --establishment") from exc
    return Target(base, caller, caller.verify)


def make_client(
    target: Target, timeout: float, registry_url: str | None = None, repository_url: str | None = None
) -> XdsClient:
    urls = service_urls(target.base or base_url(secured=target.caller is not None))
    return XdsClient(
        registry_url or urls.registry, repository_url or urls.repository, timeout, target.caller, target.verify
    )


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


def _patient_of(submission: Submission) -> str:
    """The patient a submission's VIHF names: its submission set's (that of its documents)."""
    if submission.submission_set is not None and submission.submission_set.patient_id:
        return submission.submission_set.patient_id
    return (submission.documents[0].patient_id or "") if submission.documents else ""


CALL_ERRORS = (ZeepError, XdsClientError, requests.RequestException, MissingPatient, CredentialsError)


def call_failed(exc: Exception) -> click.ClickException:
    """A clear one-line reason for a call that got no usable answer (the exit code is 1)."""
    if isinstance(exc, MissingPatient):
        return click.UsageError(str(exc))
    if isinstance(exc, requests.exceptions.SSLError):
        return click.ClickException(
            f"TLS refused (the server's certificate against --cacert, or the client certificate): {_short(exc)}"
        )
    if isinstance(exc, requests.ConnectionError):
        return click.ClickException(
            f"cannot reach the server (is it running? a secured one, as make serve starts, needs --pki): {_short(exc)}"
        )
    if isinstance(exc, requests.RequestException):
        return click.ClickException(f"HTTP error: {_short(exc)}")
    if isinstance(exc, ZeepFault):
        return click.ClickException(f"the server refused the request (SOAP Fault): {exc.message}")
    return click.ClickException(f"{type(exc).__name__}: {_short(exc)}")


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 400 else text[:400] + "..."


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
@click.option("--repository", "repository_url", help="Repository endpoint (default: under --url).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds.")
@lps_options
def submit(file: Path, repository_url: str | None, timeout: float, **options: Any) -> None:
    """Send FILE to the repository (ITI-41 Provide and Register Document Set-b; the DMP's TD2.1).

    For a CDA document the metadata comes from its header; options override it.
    """
    target = pop_target(options)
    if options["patient_id"] is not None:
        options["patient_id"] = patient_cx(options["patient_id"])
    data = file.read_bytes()
    submission = _submission(data, file, options)
    try:
        # As an LPS (`--pki`), the submission set carries the DMP's XAdES signature by the caller.
        signer = target.caller.sign_submission if target.caller else None
        request, documents = provide_and_register_request(submission, {DOCUMENT_ID: data}, sign_submission=signer)
        client = make_client(target, timeout, repository_url=repository_url)
        response = client.provide_and_register(request, documents, _patient_of(submission))
    except CALL_ERRORS as exc:
        raise call_failed(exc) from exc
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
@click.option("--repository", "repository_url", help="Repository endpoint (default: under --url).")
@click.option("--registry", "registry_url", help="Registry endpoint (default: under --url).")
@click.option("--patient", "patient_id", help="The document's patient (INS as CX, or a bare NIR); required with --pki.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the document there (default: standard output).",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds.")
@lps_options
def retrieve(
    unique_id: str,
    repository_id: str | None,
    repository_url: str | None,
    registry_url: str | None,
    patient_id: str | None,
    output: Path | None,
    timeout: float,
    **options: Any,
) -> None:
    """Fetch the document UNIQUE_ID (ITI-43 Retrieve Document Set; the DMP's TD3.2)."""
    target = pop_target(options)
    patient = patient_cx(patient_id) if patient_id else ""
    try:
        client = make_client(target, timeout, registry_url, repository_url)
        if repository_id is None:
            query_response = client.stored_query(get_documents_request(unique_id), patient)
            repository_id = repository_id_from(query_response)
            if repository_id is None:
                print_response(query_response)
                raise click.ClickException(f"the registry knows no document {unique_id} (or shows it not to you)")
        response, documents = client.retrieve([(repository_id, unique_id)], patient)
    except CALL_ERRORS as exc:
        raise call_failed(exc) from exc
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


__all__ = ["lps_options", "pop_target", "make_client", "call_failed", "CALL_ERRORS", "submit", "retrieve"]
