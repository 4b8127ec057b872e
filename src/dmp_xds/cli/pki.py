"""`dmp-xds pki init DIR`: a test PKI on the ANS model."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def pki() -> None:
    """Test certificates (never for production)."""


@pki.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing PKI in DIRECTORY.")
def pki_init(directory: Path, force: bool) -> None:
    """Create a test PKI in DIRECTORY: root, card and server CAs, professionals' cards
    (one expired, one revoked), a hospital and a patient portal, this server's TLS certificate and CRLs."""
    from dmp_xds.security.pki import create_test_pki

    if (directory / "identities.json").exists() and not force:
        raise click.ClickException(f"{directory} already holds a PKI (use --force to replace it)")
    generated = create_test_pki(directory)
    click.echo(f"test PKI written to {directory}")
    click.echo(f"  trust anchors:   {generated.anchors}")
    click.echo(f"  intermediates:   {generated.intermediates}")
    click.echo(f"  CRLs:            {', '.join(str(p) for p in generated.crls)}")
    click.echo(f"  server TLS:      {generated.server_certificate} / {generated.server_key}")
    for identity in generated.identities.values():
        if identity.kind == "server":
            continue
        label = identity.national_id or identity.structure_id
        notes = (
            " (expired)"
            if identity.expired
            else " (revoked)"
            if identity.revoked
            else " (patient portal: list it in DMP_XDS_PATIENT_PORTALS)"
            if identity.patient_portal
            else ""
        )
        who = f"{identity.given_name} {identity.family_name}".strip() or identity.organization
        click.echo(f"  {identity.kind:<14} {identity.name:<15} {label:<13} {who}{notes}")


@pki.command("vihf")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("who")
@click.argument("patient_id")
@click.option("--signer", default=None, help="Identity that signs (default WHO; e.g. hospital for its staff).")
@click.option("--access-mode", type=click.Choice(["normal", "bris_de_glace", "centre_15"]), default="normal")
@click.option("--reason", default="", help="Mode_Acces_Raison (required for bris_de_glace).")
@click.option("--audience", default="", help="Audience, if the server checks one (DMP_XDS_VIHF_AUDIENCE).")
@click.option("--lifetime", type=float, default=300.0, show_default=True, help="Seconds.")
@click.option(
    "--dmp",
    "dmp_mode",
    type=click.Choice(["DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE"]),
    default=None,
    help="A token shaped as the DMP's examples in this mode (no Conditions, RSA-SHA1; "
    "--audience and --lifetime do not apply; --signer: the establishment in indirect modes).",
)
@click.option("--unsigned", is_flag=True, help="With --dmp DIRECTE: unsigned, as the DMP's example requests carry it.")
def pki_vihf(
    directory: Path,
    who: str,
    patient_id: str,
    signer: str | None,
    access_mode: str,
    reason: str,
    audience: str,
    lifetime: float,
    dmp_mode: str | None,
    unsigned: bool,
) -> None:
    """Print a signed VIHF (a wsse:Security header) for WHO of the test PKI in DIRECTORY about
    PATIENT_ID, to paste into a SOAP request's Header; WHO `patient` is the patient, signed by the
    patient portal. Each VIHF is good for one request."""
    from lxml import etree

    from dmp_xds.security.pki import dmp_vihf, load_test_pki, signed_vihf
    from dmp_xds.security.vihf import security_header

    generated = load_test_pki(directory)
    if unsigned and dmp_mode != "DIRECTE":
        raise click.ClickException("--unsigned goes with --dmp DIRECTE: only a direct-mode VIHF may be unsigned")
    try:
        if dmp_mode:
            assertion = dmp_vihf(
                generated, who, patient_id, dmp_mode, not unsigned, signer, access_mode=access_mode, reason=reason
            )
        else:
            assertion = signed_vihf(generated, who, patient_id, signer, access_mode, reason, audience, lifetime)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(etree.tostring(security_header(assertion), pretty_print=False).decode())
