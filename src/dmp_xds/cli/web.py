"""`dmp-xds web account add | disable | enable | list` (the establishment dashboard's accounts),
`dmp-xds web patient add` (a patient's web account, as TD1.5a makes it from software) and
`dmp-xds web representative add` (a minor's legal representative's)."""

from __future__ import annotations

import datetime as dt
import secrets

import click

from dmp_xds.cli.common import open_engine
from dmp_xds.dmp.ins import canonical_patient_id
from dmp_xds.dmp.model import DmpError
from dmp_xds.security import totp
from dmp_xds.security.passwords import hash_password, new_login, new_password
from dmp_xds.services.web_signin import ISSUER, account_subject
from dmp_xds.storage import web as w
from dmp_xds.storage.patient_accounts import Channel, LoginTaken, PatientAccountStore, RepresentativeAccountStore
from dmp_xds.storage.web import AccountExists, WebStore

ACCOUNT_PASSWORD_BYTES = 12  # 16 URL-safe characters


@click.group()
def web() -> None:
    """The web front's accounts."""


@web.group()
def account() -> None:
    """Establishment dashboard accounts: a login per person, password and TOTP (mandatory)."""


@account.command("add")
@click.option("--structure", required=True, help="The structure's national id (FINESS, SIRET...).")
@click.option("--login", required=True, help="The account's login, chosen by the operator.")
@click.pass_context
def account_add(ctx: click.Context, structure: str, login: str) -> None:
    """Create the account; its password and TOTP key are printed once, to hand over."""
    store = WebStore(open_engine(ctx))
    password = secrets.token_urlsafe(ACCOUNT_PASSWORD_BYTES)
    secret = totp.new_secret()
    now = dt.datetime.now(dt.UTC)
    try:
        store.add_account(structure, login, hash_password(password), now)
    except AccountExists as exc:
        raise click.ClickException(str(exc)) from exc
    store.enroll_totp(w.ESTABLISHMENT, account_subject(structure, login), secret, now)
    click.echo(f"structure:  {structure}")
    click.echo(f"login:      {login}")
    click.echo(f"password:   {password}")
    click.echo(f"TOTP key:   {secret}")
    click.echo(f"TOTP URI:   {totp.otpauth_uri(secret, account_subject(structure, login), ISSUER)}")


def _set(ctx: click.Context, structure: str, login: str, **values: object) -> None:
    if not WebStore(open_engine(ctx)).set_account(structure, login, **values):
        raise click.ClickException(f"structure {structure} has no account {login!r}")


@account.command("disable")
@click.option("--structure", required=True)
@click.option("--login", required=True)
@click.pass_context
def account_disable(ctx: click.Context, structure: str, login: str) -> None:
    """Disable the account (its sessions end at their next request)."""
    _set(ctx, structure, login, disabled=True)
    WebStore(open_engine(ctx)).revoke_subject(w.ESTABLISHMENT, account_subject(structure, login))
    click.echo(f"account {login} of structure {structure} disabled")


@account.command("enable")
@click.option("--structure", required=True)
@click.option("--login", required=True)
@click.pass_context
def account_enable(ctx: click.Context, structure: str, login: str) -> None:
    """Enable the account again, and unlock it."""
    _set(ctx, structure, login, disabled=False, locked=False, failed_logins=0)
    click.echo(f"account {login} of structure {structure} enabled")


@account.command("list")
@click.option("--structure", default="", help="Only this structure's accounts.")
@click.pass_context
def account_list(ctx: click.Context, structure: str) -> None:
    for found in WebStore(open_engine(ctx)).accounts(structure):
        state = "disabled" if found.disabled else "locked" if found.locked else "active"
        click.echo(f"{found.structure_id}\t{found.login}\t{state}\t{found.created_at.isoformat()}")


@web.group()
def patient() -> None:
    """Patients' web accounts."""


@patient.command("add")
@click.argument("patient_id")
@click.option("--email", default="", help="Where the sign-in codes are e-mailed.")
@click.option("--sms", default="", help="Where the sign-in codes are sent by SMS.")
@click.pass_context
def patient_add(ctx: click.Context, patient_id: str, email: str, sms: str) -> None:
    """Create the web account of a patient who has a DMP; the login and the temporary password
    (to change at the first sign-in) are printed once."""
    if bool(email) == bool(sms):
        raise click.UsageError("give one channel: --email or --sms")
    ins, problem = canonical_patient_id(patient_id)
    if problem:
        raise click.ClickException(problem)
    _create_account(PatientAccountStore(open_engine(ctx)), ins, email, sms)


@web.group()
def representative() -> None:
    """Minors' legal representatives' web accounts."""


@representative.command("add")
@click.argument("representative_id")
@click.option("--email", default="", help="Where the sign-in codes are e-mailed.")
@click.option("--sms", default="", help="Where the sign-in codes are sent by SMS.")
@click.pass_context
def representative_add(ctx: click.Context, representative_id: str, email: str, sms: str) -> None:
    """Create the web account of a legal representative, by the id the minors' records declare
    them with (`dmp-xds dmp representative add`); the login and the temporary password are
    printed once. They act on the records that declare them, and only while these do."""
    if bool(email) == bool(sms):
        raise click.UsageError("give one channel: --email or --sms")
    _create_account(RepresentativeAccountStore(open_engine(ctx)), representative_id.strip(), email, sms)


def _create_account(accounts: PatientAccountStore, subject_id: str, email: str, sms: str) -> None:
    channel = Channel("EMAIL", email) if email else Channel("SMS", sms)
    password = new_password()
    for _ in range(5):
        login = new_login()
        try:
            accounts.create(subject_id, login, hash_password(password), channel, "operator")
            break
        except LoginTaken:
            continue
        except DmpError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        raise click.ClickException("no free login found: try again")
    click.echo(f"login:      {login}")
    click.echo(f"password:   {password}   (temporary: changed at the first sign-in)")
