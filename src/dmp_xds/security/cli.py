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
    (one expired, one revoked), an establishment, this server's TLS certificate and CRLs."""
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
        notes = " (expired)" if identity.expired else " (revoked)" if identity.revoked else ""
        who = f"{identity.given_name} {identity.family_name}".strip() or identity.organization
        click.echo(f"  {identity.kind:<14} {identity.name:<15} {label:<13} {who}{notes}")
