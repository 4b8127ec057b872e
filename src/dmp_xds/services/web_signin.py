"""The web front's sign-ins, free of HTTP: a patient's password then a one-time code (sent by
e-mail or SMS, or from a TOTP app), a professional's card, an establishment's certificate or
dashboard account (password and TOTP); the server-side sessions they open; sign-out.

Each step, success or failure, is one trace row. Refusals are `SignInRefused`, whose message is
the French sentence the page shows and whose status is the HTTP one.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509

from dmp_xds.config import Settings
from dmp_xds.dmp.model import DmpRecord
from dmp_xds.security import totp
from dmp_xds.security.cps import Holder
from dmp_xds.security.errors import AuthenticationError
from dmp_xds.security.passwords import hash_password, verify_password
from dmp_xds.services.gate import SecurityServices, connection_holder
from dmp_xds.storage import trail as t
from dmp_xds.storage import web as w
from dmp_xds.storage.patient_accounts import Channel, PatientAccount, PatientAccountStore, RepresentativeAccountStore
from dmp_xds.storage.trail import AuditEvent
from dmp_xds.storage.web import Challenge, WebSession, WebStore

TOKEN_BYTES = 32
TOTP = "TOTP"
ISSUER = "dmp-xds"
MIN_PASSWORD_LENGTH = 12
# What a dashboard account's TOTP is stored under (web_totp.subject_id): structure and login.
ACCOUNT_SEPARATOR = ":"


class CodeSender(Protocol):
    """Sends a one-time code's text to a channel (an e-mail address, a phone number)."""

    def send(self, channel: Channel, text: str) -> None: ...


class SignInRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class WebAuth:
    """The long-lived parts of the web's sign-ins."""

    settings: Settings
    store: WebStore
    accounts: PatientAccountStore
    representatives: RepresentativeAccountStore  # minors' legal representatives' accounts
    security: SecurityServices
    senders: dict[str, CodeSender] = field(default_factory=dict)  # channel type (EMAIL, SMS) -> sender

    def accounts_of(self, kind: str) -> PatientAccountStore:
        """The accounts of a citizen's kind: the patients' or the representatives'."""
        return self.representatives if kind == w.REPRESENTATIVE else self.accounts

    @property
    def idle(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.settings.web_session_idle_seconds)

    def trace(
        self,
        outcome: str,
        detail: str,
        patient_id: str = "",
        actor_id: str = "",
        actor_name: str = "",
        structure_id: str = "",
        action: str = t.WEB_SIGN_IN,
    ) -> None:
        self.security.audit.append(
            AuditEvent(
                action,
                outcome,
                patient_id,
                actor_id=actor_id,
                actor_name=actor_name,
                structure_id=structure_id,
                detail=detail,
            )
        )


@dataclass(frozen=True)
class Pending:
    """A password accepted, a second factor awaited: the token of the pending cookie, the method
    (EMAIL, SMS, TOTP) and where the code went, masked."""

    token: str
    method: str
    where: str


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return totp.code_hash(token)


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens (CSRF, codes)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def mask(channel: Channel) -> str:
    canal = channel.canal
    if channel.type == "EMAIL" and "@" in canal:
        name, _, domain = canal.partition("@")
        return f"{name[:1]}…@{domain}"
    return "…" + canal[-2:] if len(canal) > 2 else "…"


# -- rate limiting ----------------------------------------------------------------------------


def _keys(address: str, login: str) -> tuple[str, ...]:
    return (f"address:{address}", f"login:{login.strip().lower()}")


def check_rate(auth: WebAuth, address: str, login: str, now: dt.datetime, patient_id: str = "") -> None:
    window = dt.timedelta(seconds=auth.settings.web_rate_window_seconds)
    if auth.store.failures(_keys(address, login), now - window) >= auth.settings.web_rate_limit:
        auth.trace(t.DENIED, f"too many failed sign-ins from {address} or on login {login!r}: rate limited", patient_id)
        raise SignInRefused(429, "Trop de tentatives de connexion ont échoué. Réessayez dans quelques minutes.")


def _failed(auth: WebAuth, address: str, login: str, now: dt.datetime) -> None:
    window = dt.timedelta(seconds=auth.settings.web_rate_window_seconds)
    auth.store.record_failure(_keys(address, login), now, window)


# -- sessions ---------------------------------------------------------------------------------


def open_session(
    auth: WebAuth,
    kind: str,
    subject_id: str,
    now: dt.datetime,
    *,
    acting_for: str = "",
    structure_id: str = "",
    name: str = "",
    fingerprint: str = "",
    must_change_password: bool = False,
) -> tuple[str, WebSession]:
    """A new session (a new random token: never one the browser brought, so no fixation)."""
    token = new_token()
    session = WebSession(
        token_hash(token),
        kind,
        subject_id,
        acting_for,
        structure_id,
        name,
        fingerprint,
        new_token(),
        must_change_password,
        now,
        now,
        now + dt.timedelta(seconds=auth.settings.web_session_lifetime_seconds),
        False,
    )
    auth.store.open_session(session)
    return token, session


def current_session(auth: WebAuth, token: str, now: dt.datetime) -> WebSession | None:
    if not token:
        return None
    return auth.store.session(token_hash(token), now, auth.idle)


def sign_out(auth: WebAuth, session: WebSession, everywhere: bool) -> None:
    if everywhere:
        count = auth.store.revoke_subject(session.subject_kind, session.subject_id)
        detail = f"signed out everywhere ({count} session(s))"
    else:
        auth.store.revoke(session.token_hash)
        detail = "signed out"
    auth.trace(
        t.SUCCESS,
        detail,
        session.acting_for,
        session.subject_id,
        session.display_name,
        session.structure_id,
        action=t.WEB_SIGN_OUT,
    )


# -- the patient ------------------------------------------------------------------------------


def patient_password(auth: WebAuth, login: str, password: str, address: str, now: dt.datetime) -> Pending:
    """The first step of a patient's sign-in: the password. Right: a pending sign-in whose code
    was sent (or is awaited from the TOTP app)."""
    login = login.strip()
    check_rate(auth, address, login, now)
    kind, account = w.PATIENT, auth.accounts.by_login(login) if login else None
    if account is None and login:
        # One sign-in form: a login is a patient's or a legal representative's (never both).
        kind, account = w.REPRESENTATIVE, auth.representatives.by_login(login)
    if account is None:
        _failed(auth, address, login, now)
        auth.trace(t.DENIED, f"patient sign-in: unknown login {login!r} from {address}")
        raise SignInRefused(401, "Identifiant ou mot de passe incorrect.")
    if account.locked:
        _failed(auth, address, login, now)
        auth.trace(t.DENIED, f"patient sign-in from {address}: the account is locked", account.patient_id, login)
        raise SignInRefused(
            403,
            "Votre compte est verrouillé après trop d'erreurs. Demandez un nouveau mot de passe à un professionnel de santé.",
        )
    if not verify_password(password, account.password_hash):
        _failed(auth, address, login, now)
        changed = auth.accounts_of(kind).record_failed_login(account.patient_id, auth.settings.web_max_failed_logins)
        locked = " - the account is now locked" if changed.locked else ""
        auth.trace(
            t.DENIED,
            f"patient sign-in from {address}: wrong password ({changed.failed_logins} in a row){locked}",
            account.patient_id,
            login,
        )
        if changed.locked:
            raise SignInRefused(403, "Trop d'erreurs : votre compte est maintenant verrouillé.")
        raise SignInRefused(401, "Identifiant ou mot de passe incorrect.")
    auth.accounts_of(kind).record_good_login(account.patient_id)
    return _second_factor(auth, kind, account, now)


def _second_factor(auth: WebAuth, kind: str, account: PatientAccount, now: dt.datetime) -> Pending:
    token = new_token()
    expires = now + dt.timedelta(seconds=auth.settings.web_code_seconds)
    if auth.store.totp(kind, account.patient_id) is not None:
        auth.store.open_challenge(
            Challenge(token_hash(token), kind, account.patient_id, TOTP, "", expires, 0, False), now
        )
        auth.trace(
            t.SUCCESS, "patient sign-in: password accepted, TOTP code awaited", account.patient_id, account.login
        )
        return Pending(token, TOTP, "")
    channel = next((c for c in account.channels if c.type in auth.senders), None)
    if channel is None:
        auth.trace(t.FAILURE, "patient sign-in: no channel to send a code to", account.patient_id, account.login)
        raise SignInRefused(409, "Aucun moyen d'envoyer un code de connexion n'est configuré pour votre compte.")
    code = totp.new_code()
    minutes = max(1, round(auth.settings.web_code_seconds / 60))
    auth.store.open_challenge(
        Challenge(token_hash(token), kind, account.patient_id, channel.type, totp.code_hash(code), expires, 0, False),
        now,
    )
    auth.senders[channel.type].send(
        channel,
        f"Votre code de connexion à votre DMP : {code}. Il est valable {minutes} minutes. Ne le donnez à personne.",
    )
    auth.trace(
        t.SUCCESS, f"patient sign-in: password accepted, code sent by {channel.type}", account.patient_id, account.login
    )
    return Pending(token, channel.type, mask(channel))


def patient_code(
    auth: WebAuth, pending_token: str, code: str, address: str, now: dt.datetime
) -> tuple[str, WebSession]:
    """The second step: the code. Right: the patient's session (the pending sign-in is used)."""
    challenge = auth.store.challenge(token_hash(pending_token)) if pending_token else None
    if challenge is None or challenge.subject_kind not in (w.PATIENT, w.REPRESENTATIVE):
        auth.trace(t.DENIED, f"patient sign-in from {address}: a code without a pending sign-in")
        raise SignInRefused(401, "Votre connexion a expiré ou n'existe pas. Recommencez avec votre mot de passe.")
    patient_id = challenge.subject_id
    account = auth.accounts_of(challenge.subject_kind).get(patient_id)
    login = account.login if account else ""
    check_rate(auth, address, login, now, patient_id)
    if challenge.used:
        _failed(auth, address, login, now)
        auth.trace(t.DENIED, f"patient sign-in from {address}: code replayed (already used)", patient_id, login)
        raise SignInRefused(401, "Ce code a déjà servi. Recommencez avec votre mot de passe.")
    if now >= challenge.expires_at:
        auth.trace(t.DENIED, f"patient sign-in from {address}: code expired", patient_id, login)
        raise SignInRefused(401, "Ce code a expiré. Recommencez avec votre mot de passe pour en recevoir un nouveau.")
    if challenge.attempts >= auth.settings.web_code_attempts:
        auth.trace(t.DENIED, f"patient sign-in from {address}: too many wrong codes", patient_id, login)
        raise SignInRefused(401, "Trop de codes erronés. Recommencez avec votre mot de passe.")
    if not _code_ok(auth, challenge, code, now):
        _failed(auth, address, login, now)
        auth.store.count_wrong_code(challenge.token_hash)
        auth.trace(
            t.DENIED, f"patient sign-in from {address}: wrong or replayed {challenge.method} code", patient_id, login
        )
        raise SignInRefused(401, "Code incorrect.")
    if not auth.store.use_challenge(challenge.token_hash):
        auth.trace(t.DENIED, f"patient sign-in from {address}: code replayed (already used)", patient_id, login)
        raise SignInRefused(401, "Ce code a déjà servi. Recommencez avec votre mot de passe.")
    if challenge.subject_kind == w.REPRESENTATIVE:
        return _representative_session(auth, challenge, account, address, now)
    record = auth.security.records.get(patient_id)
    name = _record_name(record) if record is not None else ""
    opened = open_session(
        auth,
        w.PATIENT,
        patient_id,
        now,
        acting_for=patient_id,
        name=name,
        must_change_password=bool(account and account.password_temporary),
    )
    auth.trace(t.SUCCESS, f"patient signed in from {address} ({challenge.method})", patient_id, login, name)
    return opened


def _representative_session(
    auth: WebAuth, challenge: Challenge, account: PatientAccount | None, address: str, now: dt.datetime
) -> tuple[str, WebSession]:
    """A legal representative's session: acting for the one record that declares them, or for
    none yet when several do (the page then asks which). Declared nowhere: refused. Whether they
    still represent the minor is the policy's question at every request, as on the SOAP side."""
    representative = challenge.subject_id
    login = account.login if account else ""
    represented = auth.security.records.represented_by(representative)
    if not represented:
        auth.trace(
            t.DENIED,
            f"representative sign-in from {address}: declared as legal representative on no DMP",
            actor_id=representative,
        )
        raise SignInRefused(403, "Vous n'êtes déclaré représentant légal d'aucun dossier.")
    acting_for = represented[0] if len(represented) == 1 else ""
    opened = open_session(
        auth,
        w.REPRESENTATIVE,
        representative,
        now,
        acting_for=acting_for,
        name=login,
        must_change_password=bool(account and account.password_temporary),
    )
    for patient_id in represented:
        auth.trace(
            t.SUCCESS,
            f"legal representative signed in from {address} ({challenge.method})",
            patient_id,
            representative,
            login,
        )
    return opened


def represented_records(auth: WebAuth, session: WebSession) -> list[tuple[str, str]]:
    """The records a signed-in representative may choose from: (patient id, the patient's name)."""
    found = []
    for patient_id in auth.security.records.represented_by(session.subject_id):
        record = auth.security.records.get(patient_id)
        found.append((patient_id, _record_name(record) if record is not None else ""))
    return found


def act_for(auth: WebAuth, session: WebSession, patient_id: str) -> None:
    """A representative chooses the record they act on: one that declares them now."""
    if patient_id not in auth.security.records.represented_by(session.subject_id):
        auth.trace(
            t.DENIED,
            "legal representative: chose a record that does not declare them",
            patient_id,
            session.subject_id,
            session.display_name,
        )
        raise SignInRefused(403, "Vous n'êtes pas déclaré représentant légal de ce patient.")
    auth.store.set_acting_for(session.token_hash, patient_id)
    auth.trace(
        t.SUCCESS, "legal representative acts on this record", patient_id, session.subject_id, session.display_name
    )


def _code_ok(auth: WebAuth, challenge: Challenge, code: str, now: dt.datetime) -> bool:
    if challenge.method == TOTP:
        return totp_ok(auth, challenge.subject_kind, challenge.subject_id, code, now)
    return same_secret(totp.code_hash(code), challenge.code_hash)


def totp_ok(auth: WebAuth, kind: str, subject_id: str, code: str, now: dt.datetime) -> bool:
    """A TOTP code of the subject's app, never used before (its step is recorded)."""
    enrolled = auth.store.totp(kind, subject_id)
    if enrolled is None:
        return False
    secret, last = enrolled
    step = totp.matching_step(totp.secret_key(secret), code, now.timestamp(), last)
    return step is not None and auth.store.use_totp_step(kind, subject_id, step)


def _record_name(record: DmpRecord) -> str:
    people = record.demographics
    return " ".join(p for p in (*people.given_names[:1], people.usage_name or people.birth_name) if p)


def change_password(auth: WebAuth, session: WebSession, current: str, new: str, confirm: str) -> None:
    accounts = auth.accounts_of(session.subject_kind)
    account = accounts.get(session.subject_id)
    if account is None:
        raise SignInRefused(404, "Aucun compte internet pour ce dossier.")
    if not verify_password(current, account.password_hash):
        auth.trace(
            t.DENIED,
            "password change: the current password is wrong",
            session.acting_for,
            account.login,
            action=t.WEB_ACCOUNT,
        )
        raise SignInRefused(400, "Le mot de passe actuel est incorrect.")
    if new != confirm:
        raise SignInRefused(400, "Les deux saisies du nouveau mot de passe diffèrent.")
    if len(new) < MIN_PASSWORD_LENGTH or new == current:
        raise SignInRefused(
            400,
            f"Choisissez un nouveau mot de passe d'au moins {MIN_PASSWORD_LENGTH} caractères, différent de l'actuel.",
        )
    accounts.choose_password(session.subject_id, hash_password(new))
    auth.store.clear_password_change(session.token_hash)
    auth.trace(t.SUCCESS, "password changed", session.acting_for, account.login, action=t.WEB_ACCOUNT)


def enroll_totp(auth: WebAuth, session: WebSession, secret: str, code: str, now: dt.datetime) -> None:
    """Enroll the TOTP app that shows `code` for `secret` (the key shown on the page)."""
    try:
        key = totp.secret_key(secret)
    except ValueError:
        raise SignInRefused(400, "La clé n'est pas valide. Rechargez la page.") from None
    if len(key) < totp.SECRET_BYTES or totp.matching_step(key, code, now.timestamp(), 0) is None:
        raise SignInRefused(
            400, "Ce code ne correspond pas à la clé : vérifiez l'heure de votre téléphone et réessayez."
        )
    auth.store.enroll_totp(session.subject_kind, session.subject_id, secret, now)
    auth.trace(t.SUCCESS, "TOTP application enrolled", session.acting_for, session.subject_id, action=t.WEB_ACCOUNT)


def remove_totp(auth: WebAuth, session: WebSession) -> None:
    auth.store.remove_totp(session.subject_kind, session.subject_id)
    auth.trace(t.SUCCESS, "TOTP application removed", session.acting_for, session.subject_id, action=t.WEB_ACCOUNT)


# -- professionals and establishments: the certificate ------------------------------------------


def certificate_holder(auth: WebAuth, chain: list[x509.Certificate] | None, kind: str, space: str) -> Holder:
    """The holder of the connection's certificate, of `kind` (professional: a card;
    establishment: an organisation certificate), or a refusal (traced by the gate or here)."""
    if not chain:
        auth.trace(t.DENIED, f"{space}: no client certificate")
        raise SignInRefused(
            401,
            "Insérez votre carte CPS (ou e-CPS) et rechargez la page."
            if kind == w.PROFESSIONAL
            else "Présentez le certificat de votre structure.",
        )
    try:
        holder = connection_holder(auth.security, chain)
    except AuthenticationError as exc:
        raise SignInRefused(403, f"Votre certificat est refusé : {exc.reason}") from None
    if holder.kind != kind:
        auth.trace(
            t.DENIED,
            f"{space}: a {holder.kind} certificate where a {kind} one is needed",
            actor_id=holder.national_id or holder.structure_id,
            actor_name=holder.display_name,
        )
        raise SignInRefused(
            403,
            "Cet espace demande une carte de professionnel de santé."
            if kind == w.PROFESSIONAL
            else "Cet espace demande le certificat d'organisation de la structure.",
        )
    return holder


def certificate_session(auth: WebAuth, holder: Holder, kind: str, now: dt.datetime) -> tuple[str, WebSession]:
    subject = holder.national_id if kind == w.PROFESSIONAL else holder.structure_id
    opened = open_session(
        auth,
        kind,
        subject,
        now,
        structure_id=holder.structure_id,
        name=holder.display_name,
        fingerprint=holder.fingerprint,
    )
    auth.trace(
        t.SUCCESS,
        f"{kind} signed in with certificate {holder.fingerprint[:16]}",
        actor_id=subject,
        actor_name=holder.display_name,
        structure_id=holder.structure_id,
    )
    return opened


# -- establishments: the dashboard account ------------------------------------------------------


def account_subject(structure_id: str, login: str) -> str:
    return f"{structure_id}{ACCOUNT_SEPARATOR}{login}"


def establishment_password(
    auth: WebAuth, structure_id: str, login: str, password: str, code: str, address: str, now: dt.datetime
) -> tuple[str, WebSession]:
    """A dashboard account's sign-in: password and TOTP code in one step (TOTP is mandatory)."""
    structure_id, login = structure_id.strip(), login.strip()
    rate_login = account_subject(structure_id, login)
    check_rate(auth, address, rate_login, now)
    account = auth.store.account(structure_id, login) if structure_id and login else None
    actor = dict(actor_id=rate_login, structure_id=structure_id)

    def refuse(status: int, reason: str, message: str) -> SignInRefused:
        _failed(auth, address, rate_login, now)
        auth.trace(t.DENIED, f"establishment sign-in from {address}: {reason}", **actor)
        return SignInRefused(status, message)

    if account is None or account.disabled:
        raise refuse(401, "unknown or disabled account", "Structure, identifiant ou mot de passe incorrect.")
    if account.locked:
        raise refuse(403, "the account is locked", "Ce compte est verrouillé. Demandez à l'exploitant de le rouvrir.")
    if not verify_password(password, account.password_hash):
        failed = account.failed_logins + 1
        locked = failed >= auth.settings.web_max_failed_logins
        auth.store.set_account(structure_id, login, failed_logins=failed, locked=locked)
        raise refuse(
            401,
            f"wrong password ({failed} in a row){' - locked' if locked else ''}",
            "Structure, identifiant ou mot de passe incorrect.",
        )
    if not code.strip():
        raise refuse(401, "no TOTP code", "Le code de votre application d'authentification est obligatoire.")
    if not totp_ok(auth, w.ESTABLISHMENT, rate_login, code, now):
        raise refuse(401, "wrong or replayed TOTP code", "Code d'authentification incorrect.")
    auth.store.set_account(structure_id, login, failed_logins=0)
    opened = open_session(auth, w.ESTABLISHMENT, rate_login, now, structure_id=structure_id, name=login)
    auth.trace(t.SUCCESS, f"establishment account signed in from {address}", **actor)
    return opened
