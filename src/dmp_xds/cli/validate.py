"""`dmp-xds validate FILE`: the server's checks, offline, on a submission message or a CDA document.

FILE is a CDA document (a ClinicalDocument, or a self-presenting stylesheet carrying one), or a
submission: a SOAP envelope or a bare xdsb:ProvideAndRegisterDocumentSetRequest (ITI-41, its
inline documents go through the CDA layer with their DocumentEntry) or lcm:SubmitObjectsRequest
(ITI-42). The settings are the server's (profile, value sets, CDA schema, CDA policy). Exit
code 0 when valid, 1 when not.
"""

from __future__ import annotations

import base64
import binascii
import sys
from dataclasses import replace
from pathlib import Path

import click
from lxml import etree

from dmp_xds.cli.report import format_report
from dmp_xds.config import ConfigError, Settings, load_settings
from dmp_xds.dmp.validation.cda import CdaPolicy
from dmp_xds.dmp.validation.validators import Validators, load_validators
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.decode import EbrimDecodeError, decode_submit_objects_request
from dmp_xds.xds.errors import XdsError, error
from dmp_xds.xds.validation.xds import Transaction, metadata_error_code
from dmp_xds.xds.xml import UnsafeXmlError, parse_bytes


def validate_submission_file(root: etree._Element, validators: Validators) -> tuple[str, list[XdsError]]:
    """(what the message is, its findings) for a PnR or SubmitObjectsRequest element."""
    pnr = root if root.tag == v.TAG_PNR_REQUEST else next(root.iter(v.TAG_PNR_REQUEST), None)
    transaction = Transaction.ITI41 if pnr is not None else Transaction.ITI42
    sor = pnr if pnr is not None else root
    sor = sor if sor.tag == v.TAG_SUBMIT_OBJECTS_REQUEST else next(sor.iter(v.TAG_SUBMIT_OBJECTS_REQUEST), None)
    if sor is None:
        raise click.ClickException("no lcm:SubmitObjectsRequest in the file")
    try:
        submission = decode_submit_objects_request(sor)
    except EbrimDecodeError as exc:
        return transaction.value, [error(metadata_error_code(transaction), str(exc))]
    findings = validators.metadata_errors(submission, transaction)
    if pnr is not None:
        entries = {de.entry_uuid: de for de in submission.documents}
        for element in pnr.iterchildren(v.TAG_DOCUMENT):
            entry = entries.get(element.get("id", ""))
            if entry is None or element.find(v.TAG_XOP_INCLUDE) is not None:
                continue  # no metadata (reported by the server), or content in an MTOM part
            try:
                data = base64.b64decode((element.text or "").encode("ascii"))
            except (binascii.Error, UnicodeEncodeError):
                continue
            findings += validators.document_errors(entry, data)
    return transaction.value, findings


@click.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--profile",
    type=click.Choice(["cisis", "ihe"]),
    default=None,
    help="Metadata profile (default: the configured one, cisis).",
)
@click.option("--value-sets", default=None, help="Directory of the ANS value set files (DMP_XDS_VALUE_SETS).")
@click.option("--cda-schema", default=None, help="CDA_extended.xsd (DMP_XDS_CDA_SCHEMA).")
@click.option("--schematrons", default=None, help="The ANS TestContenuCDA schematrons folder (DMP_XDS_SCHEMATRONS).")
@click.pass_context
def validate(
    ctx: click.Context,
    file: Path,
    profile: str | None,
    value_sets: str | None,
    cda_schema: str | None,
    schematrons: str | None,
) -> None:
    """Validate FILE (submission message or CDA document) as the server would; print a report."""
    try:
        settings: Settings = load_settings(
            (ctx.obj or {}).get("config"),
            overrides={
                "profile": profile,
                "value_sets": value_sets,
                "cda_schema": cda_schema,
                "schematrons": schematrons,
            },
        )
        if settings.cda_policy == CdaPolicy.OFF.value:
            # Asked to validate a document, the command runs the CDA layer whatever the server does.
            settings = replace(settings, cda_policy=CdaPolicy.REJECT.value)
        validators = load_validators(settings, cda_under_ihe=True)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    data = file.read_bytes()
    try:
        root = parse_bytes(data)
    except UnsafeXmlError as exc:
        click.echo(f"{file}: NOT VALID\n  {exc}")
        sys.exit(1)
    checks = ["XDS metadata (ITI TF-3)"] + (["CI-SIS profile"] if validators.value_sets else [])
    if root.tag in (v.TAG_PNR_REQUEST, v.TAG_SUBMIT_OBJECTS_REQUEST) or root.tag.endswith("}Envelope"):
        kind, findings = validate_submission_file(root, validators)
        subject = f"{file} ({kind} submission)"
        checks += ["CDA layer on inline text/xml documents"] if kind == Transaction.ITI41.value else []
        if kind == Transaction.ITI41.value and validators.cda is not None and validators.cda.schematrons is not None:
            checks.append("ANS schematrons on those documents")
    else:
        assert validators.cda is not None  # the policy is never off here
        findings = validators.cda.validate(data)
        subject = f"{file} (CDA document)"
        checks = [
            "CDA schema" if validators.cda.schema is not None else "CDA schema (not configured: skipped)",
            "CDA header rules" + (" (CI-SIS)" if validators.value_sets else ""),
        ]
        if validators.cda.schematrons is not None:
            checks.append(
                "ANS schematrons (structuration minimale, IHE and CI-SIS body profiles, and the document's "
                "volet when known)"
            )
    click.echo(format_report(subject, findings, checks))
    sys.exit(1 if any(f.is_error for f in findings) else 0)
