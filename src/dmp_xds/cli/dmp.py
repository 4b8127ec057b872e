"""`dmp-xds dmp ...`: the operator's side of the DMP record service (each change traced)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import click

from dmp_xds.cli.common import cli_settings, open_store
from dmp_xds.dmp.model import KINDS, Consent, DmpError, DmpRecord
from dmp_xds.storage import trail as t
from dmp_xds.storage.trail import AuditTrail

OPERATOR = "operator"
T = TypeVar("T")


def _trace(trail: AuditTrail, action: str, patient_id: str, detail: str, documents: tuple[str, ...] = ()) -> None:
    trail.append(
        t.AuditEvent(
            action, t.SUCCESS, patient_id, actor_id=OPERATOR, actor_name=OPERATOR, documents=documents, detail=detail
        )
    )


def describe(record: DmpRecord, trail: AuditTrail | None = None) -> dict[str, object]:
    """The record as JSON; with `trail`, also when its documents were last read, changed and
    added (ITI-18/43, ITI-57/62, ITI-41/42), as the access trace tells."""
    state, consent = record.state, record.consent
    now = datetime.now(UTC)
    return {
        "patient_id": state.patient_id,
        "status": state.status,
        "status_reason": record.status_reason,
        "created_at": record.created_at.isoformat(),
        "closed_at": record.closed_at.isoformat() if record.closed_at else None,
        "consent": {"collected_by": consent.collected_by, "collected_at": consent.collected_at.isoformat()},
        "emergency_access_allowed": state.emergency_access_allowed,
        "regulation_access_allowed": state.regulation_access_allowed,
        "authorizations": [
            {
                "kind": a.kind,
                "grantee": a.grantee,
                "expires_at": a.expires_at.isoformat(),
                "reference": a.reference,
                "active": a.active(now),
            }
            for a in state.authorizations
            if a.revoked_at is None
        ],
        "legal_representatives": list(state.representatives),
        "notification_email": record.notification_email or None,
        # What the DMP's HL7 V3 services keep (TD1.1, TD1.3b).
        "demographics": None if record.demographics.empty else dataclasses.asdict(record.demographics),
        **({} if trail is None else _document_dates(trail, state.patient_id)),
    }


def _document_dates(trail: AuditTrail, patient_id: str) -> dict[str, str | None]:
    dates = {}
    for name, actions in (
        ("last_access_at", t.DOCUMENT_READS),
        ("last_update_at", t.DOCUMENT_CHANGES),
        ("last_add_at", t.DOCUMENT_ADDITIONS),
    ):
        when = trail.last_accesses(None, [patient_id], actions).get(patient_id)
        dates[name] = when.isoformat() if when else None
    return dates


@click.group()
def dmp() -> None:
    """DMP records: consent, closure, destruction, authorizations.

    Two kinds of commands. The operator's (create, show, update, close, reopen, destroy, grant,
    revoke, block, unblock, notifications, representative) change this server's database. The
    LPS's, whose help starts with the DMP's transaction (TD0.2 exists, TD1.3a read, TD1.3b modify,
    TD1.1 open, TD1.2 reactivate, TD1.4 terminate, TD0.3 authorize, TD1.6 authorizations, TD0.4
    patients, TD0.5 search, TD1.5 web-account), call a DMP over its services as DMP-compatible
    software does: --pki, a card and a VIHF per call.
    """


def _checked(change: Callable[[], T]) -> T:
    """Run a change of the record service; its refusal (no DMP, already closed...) becomes the
    command's error message."""
    try:
        return change()
    except DmpError as exc:
        raise click.ClickException(str(exc)) from exc


@dmp.command("create")
@click.argument("patient_id")
@click.option("--collected-by", required=True, help="Who collected the patient's consent (name or national id).")
@click.option(
    "--emergency-access/--no-emergency-access", default=True, help="Bris de glace allowed (default) or refused."
)
@click.option(
    "--regulation-access/--no-regulation-access", default=True, help="Centre 15 access allowed (default) or refused."
)
@click.pass_context
def dmp_create(
    ctx: click.Context, patient_id: str, collected_by: str, emergency_access: bool, regulation_access: bool
) -> None:
    """Open a DMP for PATIENT_ID with the patient's recorded consent."""
    from dmp_xds.xds.validation.formats import cx_problem

    problem = cx_problem(patient_id)
    if problem:
        raise click.ClickException(f"{patient_id!r} is not a patient id: {problem}")
    store, trail = open_store(ctx)
    consent = Consent(collected_by, datetime.now(UTC), emergency_access, regulation_access)
    record = _checked(lambda: store.create(patient_id, consent))
    _trace(
        trail,
        t.DMP_CREATE,
        patient_id,
        f"consent collected by {collected_by}; emergency access {'allowed' if emergency_access else 'refused'}",
    )
    click.echo(json.dumps(describe(record), indent=2, ensure_ascii=False))


@dmp.command("show")
@click.argument("patient_id")
@click.pass_context
def dmp_show(ctx: click.Context, patient_id: str) -> None:
    """The DMP of PATIENT_ID: status, consent, authorizations (JSON)."""
    store, trail = open_store(ctx)
    record = store.get(patient_id)
    if record is None:
        raise click.ClickException(f"patient {patient_id} has no DMP")
    _trace(trail, t.DMP_READ, patient_id, "status read by the operator")
    click.echo(json.dumps(describe(record, trail), indent=2, ensure_ascii=False))


@dmp.command("update")
@click.argument("patient_id")
@click.option("--emergency-access/--no-emergency-access", default=None)
@click.option("--regulation-access/--no-regulation-access", default=None)
@click.option("--email", default=None, help="Where emergency accesses are e-mailed ('' to stop).")
@click.pass_context
def dmp_update(
    ctx: click.Context,
    patient_id: str,
    emergency_access: bool | None,
    regulation_access: bool | None,
    email: str | None,
) -> None:
    """Change the patient's emergency-access choices, or the address they are notified at."""
    store, trail = open_store(ctx)
    record = _checked(lambda: store.update_consent(patient_id, emergency_access, regulation_access, email))
    _trace(
        trail,
        t.DMP_UPDATE,
        patient_id,
        f"emergency access {record.state.emergency_access_allowed}, "
        f"centre 15 {record.state.regulation_access_allowed}"
        + ("" if email is None else f"; notification e-mail {'set' if email else 'removed'}"),
    )
    click.echo(json.dumps(describe(record), indent=2, ensure_ascii=False))


@dmp.command("close")
@click.argument("patient_id")
@click.option("--reason", default="", help="Why (kept with the record).")
@click.pass_context
def dmp_close(ctx: click.Context, patient_id: str, reason: str) -> None:
    """Close the DMP: no new document, no professional reads it; it can be reopened."""
    store, trail = open_store(ctx)
    _checked(lambda: store.close(patient_id, reason))
    _trace(trail, t.DMP_CLOSE, patient_id, reason)
    click.echo(f"DMP of {patient_id} closed")


@dmp.command("reopen")
@click.argument("patient_id")
@click.option("--reason", default="")
@click.pass_context
def dmp_reopen(ctx: click.Context, patient_id: str, reason: str) -> None:
    """Reopen a closed DMP."""
    store, trail = open_store(ctx)
    _checked(lambda: store.reopen(patient_id, reason))
    _trace(trail, t.DMP_REOPEN, patient_id, reason)
    click.echo(f"DMP of {patient_id} reopened")


@dmp.command("destroy")
@click.argument("patient_id")
@click.option("--yes", is_flag=True, help="Do it (documents and metadata are erased for good).")
@click.option("--request", "request_text", required=True, help="The patient's request (reference, date).")
@click.pass_context
def dmp_destroy(ctx: click.Context, patient_id: str, yes: bool, request_text: str) -> None:
    """Destroy the DMP on the patient's request: documents and metadata erased; the request traced."""
    from dmp_xds.config import resolve
    from dmp_xds.storage.document_store import open_blob_store

    if not yes:
        raise click.ClickException("destruction erases every document of the patient: add --yes to confirm")
    store, trail = open_store(ctx)
    blobs = open_blob_store(resolve(cli_settings(ctx)))
    destruction = _checked(lambda: store.destroy(patient_id, blobs))
    _trace(trail, t.DMP_DESTROY, patient_id, f"destroyed on request: {request_text}", tuple(destruction.documents))
    click.echo(
        f"DMP of {patient_id} destroyed: {len(destruction.documents)} documents, "
        f"{destruction.objects} registry objects erased"
    )


@dmp.command("grant")
@click.argument("patient_id")
@click.argument("grantee")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="professional",
    show_default=True,
    help="professional (national id), attending doctor, or establishment (structure id).",
)
@click.option("--reference", default="", help="For an establishment: the stay.")
@click.pass_context
def dmp_grant(ctx: click.Context, patient_id: str, grantee: str, kind: str, reference: str) -> None:
    """Record the patient's authorization for GRANTEE (one year; granting again renews it)."""
    store, trail = open_store(ctx)
    grant = _checked(lambda: store.grant(patient_id, kind, grantee, OPERATOR, reference))
    _trace(trail, t.AUTHORIZATION_GRANT, patient_id, f"{kind} {grantee} until {grant.expires_at:%Y-%m-%d}")
    click.echo(f"{kind} {grantee} authorized on the DMP of {patient_id} until {grant.expires_at:%Y-%m-%d}")


@dmp.command("revoke")
@click.argument("patient_id")
@click.argument("grantee")
@click.pass_context
def dmp_revoke(ctx: click.Context, patient_id: str, grantee: str) -> None:
    """Revoke every active authorization of GRANTEE on the DMP (a block stays: `dmp unblock`)."""
    store, trail = open_store(ctx)
    count = _checked(lambda: store.revoke(patient_id, grantee))
    _trace(trail, t.AUTHORIZATION_REVOKE, patient_id, f"{grantee}: {count} authorization(s) revoked")
    click.echo(f"{count} authorization(s) of {grantee} revoked")


@dmp.command("block")
@click.argument("patient_id")
@click.argument("national_id")
@click.pass_context
def dmp_block(ctx: click.Context, patient_id: str, national_id: str) -> None:
    """Block the professional NATIONAL_ID on the DMP, on the patient's request: their
    authorizations are revoked, every access is refused, and they cannot authorize themself
    again (TD0.3) until unblocked. The DMP's TD1.6 lists them as INTERDITE."""
    store, trail = open_store(ctx)
    revoked, new = _checked(lambda: store.block(patient_id, national_id, OPERATOR))
    _trace(
        trail,
        t.AUTHORIZATION_BLOCK,
        patient_id,
        f"{national_id} blocked on the patient's request ({revoked} authorization(s) revoked)"
        if new
        else f"{national_id} already blocked: nothing done",
    )
    click.echo(
        f"{national_id} blocked on the DMP of {patient_id} ({revoked} authorization(s) revoked)"
        if new
        else f"{national_id} was already blocked on the DMP of {patient_id}"
    )


@dmp.command("unblock")
@click.argument("patient_id")
@click.argument("national_id")
@click.pass_context
def dmp_unblock(ctx: click.Context, patient_id: str, national_id: str) -> None:
    """Lift the block on NATIONAL_ID: they may be authorized again (by the patient, or by
    declaring the patient's consent, TD0.3); no authorization is given back by itself."""
    store, trail = open_store(ctx)
    lifted = _checked(lambda: store.unblock(patient_id, national_id))
    _trace(
        trail,
        t.AUTHORIZATION_UNBLOCK,
        patient_id,
        f"{national_id} unblocked on the patient's request" if lifted else f"{national_id} was not blocked",
    )
    click.echo(f"{national_id} unblocked on the DMP of {patient_id}" if lifted else f"{national_id} was not blocked")


@dmp.command("notifications")
@click.argument("patient_id")
@click.option("--unread", is_flag=True, help="Only those not acknowledged yet.")
@click.option("--acknowledge", is_flag=True, help="Mark the listed notifications read.")
@click.option("--limit", type=int, default=200, show_default=True)
@click.pass_context
def dmp_notifications(ctx: click.Context, patient_id: str, unread: bool, acknowledge: bool, limit: int) -> None:
    """What PATIENT_ID is told: every emergency access to their record, newest first."""
    from dmp_xds.services.notifications import Notifier

    store, trail = open_store(ctx)
    if store.get(patient_id) is None:
        raise click.ClickException(f"patient {patient_id} has no DMP")
    notifier = Notifier(store.engine)
    notifications = notifier.list(patient_id, limit, unread)
    for n in notifications:
        state = "read" if n.read_at else "UNREAD"
        mail = (
            f", e-mailed {n.emailed_at:%Y-%m-%d %H:%M}"
            if n.emailed_at
            else (f", {n.email_error}" if n.email_error else "")
        )
        click.echo(f"#{n.id} {n.created_at:%Y-%m-%d %H:%M} [{state}{mail}] {n.message}")
    detail = f"{len(notifications)} notifications read by the operator"
    if acknowledge and notifications:
        count = notifier.acknowledge(patient_id, [n.id for n in notifications])
        detail += f", {count} acknowledged"
    _trace(trail, t.NOTIFICATIONS_READ, patient_id, detail)


@dmp.group("representative")
def dmp_representative() -> None:
    """Legal representatives of a minor patient (they do not see INVISIBLE_REPRESENTANTS_LEGAUX documents)."""


@dmp_representative.command("add")
@click.argument("patient_id")
@click.argument("representative_id")
@click.option("--evidence", default="", help="What proves the representation (family record book, court decision).")
@click.pass_context
def representative_add(ctx: click.Context, patient_id: str, representative_id: str, evidence: str) -> None:
    """Declare REPRESENTATIVE_ID (the NameID of their VIHF, e.g. their INS) for PATIENT_ID."""
    store, trail = open_store(ctx)
    declared, added = _checked(lambda: store.add_representative(patient_id, representative_id, OPERATOR))
    detail = (
        f"legal representative {representative_id}"
        + (f", evidence: {evidence}" if evidence else "")
        + ("" if added else f" (already declared by {declared.declared_by})")
    )
    _trace(trail, t.REPRESENTATIVE_ADD, patient_id, detail)
    click.echo(f"{representative_id} is a legal representative of {patient_id}")


@dmp_representative.command("remove")
@click.argument("patient_id")
@click.argument("representative_id")
@click.pass_context
def representative_remove(ctx: click.Context, patient_id: str, representative_id: str) -> None:
    """REPRESENTATIVE_ID no longer represents PATIENT_ID (e.g. the patient came of age)."""
    store, trail = open_store(ctx)
    count = _checked(lambda: store.remove_representative(patient_id, representative_id))
    _trace(trail, t.REPRESENTATIVE_REMOVE, patient_id, f"legal representative {representative_id}: {count} removed")
    click.echo(f"{count} declaration(s) of {representative_id} removed")
