"""`dmp-xds dmp exists|read|modify|open|reactivate|terminate|authorize|authorizations|patients|
search|web-account`: an LPS's calls to the DMP's patient and habilitation services (TD0.x, TD1.x).

The `dmp` group's other commands (create, close, reopen, grant, block, show...) are the operator's,
on this server's database. These speak to a DMP (`--url`, default this machine's `make serve`)
as a DMP-compatible LPS does: TLS with the card's (or establishment's) certificate and a VIHF,
from a test PKI (`--pki`, required). Where the operator's verb exists, the LPS's takes the DMP's
word for its transaction: `open` (TD1.1, the patient's consent to open their DMP), `reactivate`
(TD1.2), `terminate` (TD1.4, the DMP's status `terminated`).

Exit codes: 0 accepted, 1 refused (HL7 AE, a status other than DMPOk, a SOAP Fault, no answer:
the reason on one line), 2 a usage error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import click

from dmp_xds.cli.client import lps_options, patient_cx, pop_target
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.cxf_messages import Output
from dmp_xds.dmp.hl7v3 import request as rq
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.ins import INS_ROOTS, nir_problem
from dmp_xds.dmp.model import Address, Demographics, Telecom
from dmp_xds.tools.client.dmpi import DmpiCallError, DmpiClient
from dmp_xds.tools.client.lps import LOCAL_DMP_URL, CredentialsError, MissingPatient

TIMEOUT = click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds.")
PATIENT = click.argument("patient")  # an INS as CX, or a bare NIR


def _client(options: dict[str, Any], timeout: float) -> DmpiClient:
    target = pop_target(options)
    if target.caller is None:
        raise click.UsageError("the DMP's services are called as an LPS: give --pki (make serve writes var/pki)")
    return DmpiClient(target.base or LOCAL_DMP_URL, target.caller, timeout)


def _call(function: Any, *arguments: Any) -> Any:
    """One call; no answer to read is one line and exit code 1, a missing patient a usage error."""
    try:
        return function(*arguments)
    except MissingPatient as exc:
        raise click.UsageError(str(exc)) from exc
    except (DmpiCallError, CredentialsError) as exc:
        raise click.ClickException(str(exc)) from exc


def _patient(value: str, hint: str = "PATIENT") -> str:
    """An INS as CX (a bare NIR taken as an INS-NIR), checked before anything is sent."""
    root, extension = rq.ii(patient_cx(value))
    problem = nir_problem(extension) if extension else "no INS"
    if problem or root not in INS_ROOTS:
        why = problem or f"{root or '(no root)'} is not an INS root ({', '.join(sorted(INS_ROOTS))})"
        raise click.BadParameter(f"{value!r} is not an INS (NIR^^^&OID&ISO, or a bare NIR): {why}", param_hint=hint)
    return patient_cx(value)


# --- printing ------------------------------------------------------------------------------------


def _names(data: Demographics) -> str:
    family = data.usage_name or data.birth_name
    born = f" (birth name {data.birth_name})" if data.birth_name and data.birth_name != family else ""
    return " ".join(p for p in (data.prefix, " ".join(data.given_names), family) if p) + born


def _print_patient(patient: rq.Patient) -> None:
    data = patient.demographics
    click.echo(f"patient: {patient.patient_id}")
    click.echo(f"status: {patient.status}")
    if not data.empty:
        click.echo(f"name: {_names(data)}")
    for label, value in (("sex", data.gender), ("birth date", data.birth_date)):
        if value:
            click.echo(f"{label}: {value}")
    for address in data.addresses:
        parts = [*address.lines, " ".join(p for p in (address.postal_code, address.city) if p), address.country]
        click.echo("address: " + ", ".join(p for p in parts if p))
    for telecom in data.telecoms:
        click.echo(f"telecom: {telecom.value}" + (f" ({telecom.use})" if telecom.use else ""))
    for code, flag in patient.observations.items():
        click.echo(f"{hv.OBSERVATIONS.get(code, code)}: {'yes' if flag else 'no'}")


def _judge(answer: rq.Answer) -> None:
    """Print an HL7 answer; exit 1 with its reason on one line when the DMP refused."""
    click.echo(f"acknowledgement: {answer.ack}")
    if answer.query_code:
        click.echo(f"queryResponseCode: {answer.query_code}")
    if not answer.accepted:
        reason = " ".join(answer.text.split()) or "no reason given"
        raise click.ClickException(f"refused ({answer.ack} {answer.detail}): {reason}")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _status(output: Output) -> None:
    click.echo(f"status: {output.status}")
    if not output.ok:
        reason = " ".join(output.context.split()) or "no reason given"
        raise click.ClickException(f"refused ({output.status}): {reason}")
    if output.context:
        click.echo(f"context: {output.context}")


def _first(item: dict[str, tuple[str, ...]], name: str) -> str:
    return item.get(name, ("",))[0]


# --- TD0.2, TD1.3a, TD1.3b ------------------------------------------------------------------------


@click.command("exists")
@PATIENT
@TIMEOUT
@lps_options
def exists(patient: str, timeout: float, **options: Any) -> None:
    """TD0.2: does PATIENT have a DMP, and may I (--identity) reach it? (test d'existence)"""
    client = _client(options, timeout)
    patient = _patient(patient)
    answer = _call(client.patients, rq.get_demographics(patient, hv.TEST_EXST), patient)
    _judge(answer)
    if answer.query_code == hv.QUERY_NOT_FOUND:
        click.echo(f"no DMP for {patient}")
    for found in answer.patients:
        _print_patient(found)
    labels = {hv.AUTHORIZATION_KEY[0]: "authorization", hv.ATTENDING_KEY[0]: "attending doctor"}
    for key, value in answer.attention.items():
        click.echo(f"{labels.get(key, key)}: {value}")


def _read(client: DmpiClient, patient: str) -> rq.Patient | None:
    answer = _call(client.patients, rq.get_demographics(patient, hv.CNSLT_DATA), patient)
    _judge(answer)
    return answer.patients[0] if answer.patients else None


@click.command("read")
@PATIENT
@TIMEOUT
@lps_options
def read(patient: str, timeout: float, **options: Any) -> None:
    """TD1.3a: the administrative data of PATIENT's DMP (identity, addresses, oppositions)."""
    client = _client(options, timeout)
    patient = _patient(patient)
    found = _read(client, patient)
    if found is None:
        raise click.ClickException(f"no DMP for {patient}")
    _print_patient(found)


def _opposition(flag: str) -> Any:
    return click.option(
        f"--oppose-{flag}/--allow-{flag}",
        default=None,
        help={
            "break-glass": "The patient opposes (or no longer opposes) break-glass access (bris de glace).",
            "regulation": "The patient opposes (or no longer opposes) the regulation centre's access (centre 15).",
        }[flag],
    )


def _identity_options(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--usage-name", help="Nom d'usage."),
            click.option("--birth-name", help="Nom de naissance."),
            click.option("--given", multiple=True, help="Given name(s), repeatable (all replace the known ones)."),
            click.option("--prefix", help="Civility (M, MME...)."),
            click.option("--sex", type=click.Choice(["M", "F", "U"]), help="Administrative sex."),
            click.option("--birth-date", help="YYYYMMDD."),
            click.option(
                "--address",
                help="LINE|POSTAL CODE|CITY|COUNTRY (replaces the known addresses; lines separated by ';').",
            ),
            click.option("--phone", multiple=True, help="A phone number (tel:), repeatable; replaces the known ones."),
            click.option("--email", multiple=True, help="An e-mail address (mailto:), repeatable."),
            _opposition("break-glass"),
            _opposition("regulation"),
        ]
    ):
        function = option(function)
    return function


def _changed(data: Demographics, options: dict[str, Any]) -> Demographics:
    """`data` with the identity options given applied."""
    changes: dict[str, Any] = {}
    for name, key in (("usage_name", "usage_name"), ("birth_name", "birth_name"), ("prefix", "prefix")):
        if options.get(name):
            changes[key] = options[name].strip().upper() if key != "prefix" else options[name].strip()
    if options.get("given"):
        changes["given_names"] = tuple(g.strip().upper() for g in options["given"])
    if options.get("sex"):
        changes["gender"] = options["sex"]
    if options.get("birth_date"):
        value = options["birth_date"].strip()
        try:
            dt.datetime.strptime(value, "%Y%m%d")
        except ValueError as exc:
            raise click.BadParameter(f"{value!r} is not a date YYYYMMDD", param_hint="--birth-date") from exc
        changes["birth_date"] = value
    if options.get("address"):
        parts = (options["address"].split("|") + ["", "", "", ""])[:4]
        lines = tuple(line.strip() for line in parts[0].split(";") if line.strip())
        changes["addresses"] = (Address(lines, parts[1].strip(), parts[2].strip(), parts[3].strip()),)
    if options.get("phone") or options.get("email"):
        phones = tuple(Telecom(p if p.startswith("tel:") else f"tel:{p}") for p in options.get("phone") or ())
        emails = tuple(Telecom(e if e.startswith("mailto:") else f"mailto:{e}") for e in options.get("email") or ())
        changes["telecoms"] = phones + emails
    return replace(data, **changes)


IDENTITY_NAMES = (
    "usage_name",
    "birth_name",
    "given",
    "prefix",
    "sex",
    "birth_date",
    "address",
    "phone",
    "email",
    "oppose_break_glass",
    "oppose_regulation",
)


def _pop_identity(options: dict[str, Any]) -> dict[str, Any]:
    return {name: options.pop(name) for name in IDENTITY_NAMES}


def _author(client: DmpiClient) -> rq.Author | None:
    """The professional who acts, as the revisions and the creation name them (none for a patient)."""
    pki = client.caller.identities.pki
    name = client.caller.identity.name
    if name == "patient" or name not in pki.identities:
        return None
    person = pki.identity(name)
    if not person.national_id:
        return None
    return rq.Author(
        person.national_id, person.family_name, person.given_name, person.structure_id, person.organization
    )


def _accepted(answer: rq.Answer, what: str) -> None:
    _judge(answer)
    for found in answer.patients:
        click.echo(f"patient: {found.patient_id}")
        click.echo(f"status: {found.status}")
        if not found.demographics.empty:
            click.echo(f"name: {_names(found.demographics)}")
    click.echo(what)


@click.command("modify")
@PATIENT
@_identity_options
@TIMEOUT
@lps_options
def modify(patient: str, timeout: float, **options: Any) -> None:
    """TD1.3b: change PATIENT's administrative data: reads them (TD1.3a), applies the options
    given, sends the whole (the DMP replaces what it keeps)."""
    identity = _pop_identity(options)
    client = _client(options, timeout)
    patient = _patient(patient)
    if not any(identity.values()) and identity["oppose_break_glass"] is None and identity["oppose_regulation"] is None:
        raise click.UsageError("nothing to modify: give at least one of --usage-name, --given, --sex, --address...")
    _changed(Demographics(), identity)  # a bad value is a usage error before anything is sent
    current = _read(client, patient)
    if current is None:
        raise click.ClickException(f"no DMP for {patient}")
    data = _changed(current.demographics, identity)
    flags = rq.oppositions(identity["oppose_break_glass"], identity["oppose_regulation"])
    message = rq.revise(patient, hv.MODIF_DATA, data, flags, _author(client))
    _accepted(_call(client.patients, message, patient), "modified")


# --- TD1.1, TD1.2, TD1.4 --------------------------------------------------------------------------


@click.command("open")
@PATIENT
@_identity_options
@click.option(
    "--consent",
    is_flag=True,
    help="The patient consents to the opening of their DMP (required: the DMP refuses without it).",
)
@TIMEOUT
@lps_options
def open_dmp(patient: str, consent: bool, timeout: float, **options: Any) -> None:
    """TD1.1: create PATIENT's DMP, with their consent and identity (--usage-name, --given, --sex,
    --birth-date at least)."""
    identity = _pop_identity(options)
    client = _client(options, timeout)
    patient = _patient(patient)
    data = _changed(Demographics(), identity)
    missing = [
        option
        for option, value in (
            ("--usage-name or --birth-name", data.usage_name or data.birth_name),
            ("--given", data.given_names),
            ("--sex", data.gender),
            ("--birth-date", data.birth_date),
        )
        if not value
    ]
    if missing:
        raise click.UsageError(f"a DMP is opened with the patient's identity: give {', '.join(missing)}")
    consent_at = dt.datetime.now(dt.UTC) if consent else None
    flags = rq.oppositions(identity["oppose_break_glass"], identity["oppose_regulation"])
    message = rq.patient_add(patient, data, consent_at, flags, _author(client))
    _accepted(_call(client.patients, message, patient), "created")


@click.command("reactivate")
@PATIENT
@click.option("--consent", is_flag=True, help="The patient consents to the reactivation (required by the DMP).")
@TIMEOUT
@lps_options
def reactivate(patient: str, consent: bool, timeout: float, **options: Any) -> None:
    """TD1.2: reopen PATIENT's closed DMP, with their consent."""
    client = _client(options, timeout)
    patient = _patient(patient)
    flags = {hv.CONSENT_REACTIVATION: True} if consent else {}
    message = rq.revise(patient, hv.REAC, None, flags, _author(client))
    _accepted(_call(client.patients, message, patient), "reactivated")


@click.command("terminate")
@PATIENT
@click.option(
    "--closure-reason",
    default=hv.CLOSURE_PATIENT_REQUEST,
    show_default=True,
    help=f"The closure's reason code (code system {hv.CLOSURE_REASON_SYSTEM}).",
)
@click.option("--text", "closure_text", default="", help="The closure's reason in words.")
@TIMEOUT
@lps_options
def terminate(patient: str, closure_reason: str, closure_text: str, timeout: float, **options: Any) -> None:
    """TD1.4: close PATIENT's DMP (its status becomes terminated)."""
    client = _client(options, timeout)
    patient = _patient(patient)
    if not closure_reason.strip():
        raise click.BadParameter("a closure needs its reason", param_hint="--closure-reason")
    message = rq.revise(patient, hv.FERM, None, {}, _author(client), closure_reason.strip(), closure_text)
    _accepted(_call(client.patients, message, patient), "closed")


# --- TD0.5 ----------------------------------------------------------------------------------------


@click.command("search")
@click.argument("family")
@click.option("--given", default="", help="Given name.")
@click.option("--birth-date", default="", help="YYYYMMDD.")
@click.option("--sex", type=click.Choice(["M", "F", "U"]), default=None)
@click.option(
    "--patient",
    "vihf_patient",
    required=True,
    help="The patient the VIHF names (the DMP requires one in every VIHF).",
)
@TIMEOUT
@lps_options
def search(
    family: str, given: str, birth_date: str, sex: str | None, vihf_patient: str, timeout: float, **options: Any
) -> None:
    """TD0.5: search patients by name (birth date, sex) without their INS; the DMP answers only in
    regulation mode (--access-mode centre_15)."""
    client = _client(options, timeout)
    message = rq.find_candidates(family.strip(), given.strip(), birth_date.strip(), sex or "")
    answer = _call(client.find_candidates, message, _patient(vihf_patient, "--patient"))
    _judge(answer)
    rows = [
        (
            p.patient_id,
            _names(p.demographics),
            p.demographics.gender,
            p.demographics.birth_date,
            " ".join(a.city for a in p.demographics.addresses if a.city),
            p.status,
        )
        for p in answer.patients
    ]
    click.echo(f"{len(rows)} patient(s)")
    if rows:
        _table(("INS", "NAME", "SEX", "BIRTH", "CITY", "STATUS"), rows)


# --- TD0.3, TD1.6, TD0.4 --------------------------------------------------------------------------


@click.command("authorize")
@PATIENT
@click.option("--remove", is_flag=True, help="Remove my authorization (SUPPRESSION) instead of adding it.")
@click.option("--attending", is_flag=True, help="As the patient's attending doctor (MEDECIN_TRAITANT).")
@TIMEOUT
@lps_options
def authorize(patient: str, remove: bool, attending: bool, timeout: float, **options: Any) -> None:
    """TD0.3: record that PATIENT authorizes me (--identity) on their DMP, or remove it."""
    client = _client(options, timeout)
    patient = _patient(patient)
    values = [("action", cv.ACTION_REMOVE if remove else cv.ACTION_ADD)]
    if attending:
        values.append(("role", cv.ROLE_ATTENDING))
    output = _call(client.cxf, cv.SET_AUTHORIZATION, values, patient)
    _status(output)


@click.command("authorizations")
@PATIENT
@click.option(
    "--state",
    type=click.Choice(list(cv.MODES)),
    default=cv.MODE_ALL,
    show_default=True,
    help="ACTIVE (authorized), INTERDITE (blocked) or TOUTE (both): the DMP's mode.",
)
@TIMEOUT
@lps_options
def authorizations(patient: str, state: str, timeout: float, **options: Any) -> None:
    """TD1.6: the professionals PATIENT authorized (ACTIVE), blocked (INTERDITE), or both (TOUTE)."""
    client = _client(options, timeout)
    patient = _patient(patient)
    output = _call(client.cxf, cv.LIST_AUTHORIZATION_BY_PATIENT, [("mode", state)], patient)
    _status(output)
    rows = [
        (
            _first(item, "nationalId"),
            " ".join(p for p in (_first(item, "firstName"), _first(item, "lastName")) if p),
            ", ".join(item.get("libSpeciality", ())),
            _first(item, "mode"),
            " ".join(item.get("specificRight", ())),
            _first(item, "startOfAuthorization"),
        )
        for item in output.items
    ]
    click.echo(f"{len(rows)} professional(s)")
    if rows:
        _table(("NATIONAL ID", "NAME", "SPECIALITY", "MODE", "RIGHT", "SINCE"), rows)


@click.command("patients")
@click.option(
    "--patient",
    "vihf_patient",
    required=True,
    help="The patient the VIHF names (the DMP requires one in every VIHF).",
)
@click.option("--since", default="", help="Only the DMPs changed since this date (YYYYMMDD[hhmmss]).")
@click.option("--date-type", type=click.Choice(list(cv.DATE_TYPES)), default=None, help="Which date --since compares.")
@TIMEOUT
@lps_options
def patients(vihf_patient: str, since: str, date_type: str | None, timeout: float, **options: Any) -> None:
    """TD0.4: the DMPs I (--identity) am authorized on."""
    client = _client(options, timeout)
    values = []
    if since:
        values.append(("startDate", since.strip() + "000000" if len(since.strip()) == 8 else since.strip()))
    if date_type:
        values.append(("dateType", date_type))
    output = _call(client.cxf, cv.PATIENT_LIST, values, _patient(vihf_patient, "--patient"))
    _status(output)
    rows = [
        (
            _first(item, "nationalId"),
            " ".join(p for p in (_first(item, "firstName"), _first(item, "lastName")) if p),
            _first(item, "dateOfBirth"),
            "yes" if _first(item, "MT") == "true" else "no",
            _first(item, "lastAccessDate"),
            _first(item, "lastAddDate"),
        )
        for item in output.items
    ]
    click.echo(f"{len(rows)} DMP(s)")
    if rows:
        _table(("INS", "NAME", "BIRTH", "ATTENDING", "LAST ACCESS", "LAST DOCUMENT"), rows)


# --- TD1.5a/b/d -----------------------------------------------------------------------------------


@click.group("web-account")
def web_account() -> None:
    """TD1.5: the patient's web account (create it, its one-time-password channels, new credentials)."""


def _channel(sms: str | None, email: str | None) -> list[tuple[str, str]]:
    if bool(sms) == bool(email):
        raise click.UsageError("give one channel: --sms NUMBER or --email ADDRESS")
    return (
        [("type", cv.CHANNEL_SMS), ("canal", sms or "")]
        if sms
        else [("type", cv.CHANNEL_EMAIL), ("canal", email or "")]
    )


CHANNEL_OPTIONS = (
    click.option("--sms", help="A mobile phone number, for the one-time passwords."),
    click.option("--email", help="An e-mail address, for the one-time passwords."),
)


def _credentials(output: Output) -> None:
    _status(output)
    for name in ("login", "password"):
        if name in output.fields:
            click.echo(f"{name}: {output.fields[name]}")


@web_account.command("create")
@PATIENT
@CHANNEL_OPTIONS[0]
@CHANNEL_OPTIONS[1]
@TIMEOUT
@lps_options
def web_account_create(patient: str, sms: str | None, email: str | None, timeout: float, **options: Any) -> None:
    """TD1.5a: open PATIENT's web account; prints its login and first password (once)."""
    client = _client(options, timeout)
    patient = _patient(patient)
    _credentials(_call(client.cxf, cv.CREATE_PATIENT_ACCESS, _channel(sms, email), patient))


@web_account.command("otp")
@PATIENT
@CHANNEL_OPTIONS[0]
@CHANNEL_OPTIONS[1]
@click.option(
    "--action",
    "otp_action",
    type=click.Choice(["add", "change", "remove"]),
    default="add",
    show_default=True,
)
@TIMEOUT
@lps_options
def web_account_otp(
    patient: str, sms: str | None, email: str | None, otp_action: str, timeout: float, **options: Any
) -> None:
    """TD1.5b: add, change or remove a channel of PATIENT's one-time passwords."""
    client = _client(options, timeout)
    patient = _patient(patient)
    action = {"add": cv.ACTION_ADD, "change": cv.ACTION_CHANGE, "remove": cv.ACTION_REMOVE}[otp_action]
    _status(_call(client.cxf, cv.PATIENT_OTP_UPDATE, [*_channel(sms, email), ("action", action)], patient))


@web_account.command("renew")
@PATIENT
@TIMEOUT
@lps_options
def web_account_renew(patient: str, timeout: float, **options: Any) -> None:
    """TD1.5d: new credentials for PATIENT's web account (same login, a new password, printed once)."""
    client = _client(options, timeout)
    patient = _patient(patient)
    _credentials(_call(client.cxf, cv.UPDATE_PATIENT_ACCESS, [], patient))


COMMANDS = (
    exists,
    read,
    modify,
    open_dmp,
    reactivate,
    terminate,
    search,
    authorize,
    authorizations,
    patients,
    web_account,
)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)


__all__ = ["register", "COMMANDS"]
