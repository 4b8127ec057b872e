"""Where a patient's one-time sign-in code goes: e-mail through the SMTP relay of the
notifications (DMP_XDS_NOTIFY_SMTP), SMS through a command (DMP_XDS_WEB_SMS=command) or, in
development, a file under the data directory (DMP_XDS_WEB_SMS=file). Each is a
services.web_signin.CodeSender."""

from __future__ import annotations

import datetime as dt
import logging
import shlex
import smtplib
import subprocess
import threading
from pathlib import Path

from dmp_xds.config import Settings
from dmp_xds.services.web_signin import CodeSender, SignInRefused
from dmp_xds.storage.patient_accounts import Channel
from dmp_xds.transport.smtp import SmtpSender

log = logging.getLogger(__name__)

SUBJECT = "Votre code de connexion à votre DMP"
SMS_COMMAND_TIMEOUT_SECONDS = 20.0
SMS_OUTBOX = "sms-outbox.txt"
NOT_SENT = "Le code n'a pas pu être envoyé. Réessayez dans quelques minutes."


class EmailCodeSender:
    def __init__(self, smtp: SmtpSender) -> None:
        self.smtp = smtp

    def send(self, channel: Channel, text: str) -> None:
        # Sent at once, not queued: the patient waits for this very message.
        try:
            self.smtp.send(channel.canal, SUBJECT, text)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("sign-in code not e-mailed: %s", exc)
            raise SignInRefused(409, NOT_SENT) from None


class CommandSmsSender:
    """Runs the configured command (no shell) with two more arguments: the number, the text."""

    def __init__(self, command: str) -> None:
        self.argv = shlex.split(command)

    def send(self, channel: Channel, text: str) -> None:
        try:
            subprocess.run(
                [*self.argv, channel.canal, text],
                check=True,
                capture_output=True,
                timeout=SMS_COMMAND_TIMEOUT_SECONDS,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("sign-in code not sent by SMS: %s", exc)
            raise SignInRefused(409, NOT_SENT) from None


class FileSmsSender:
    """Development only: each SMS a line of <data_dir>/sms-outbox.txt (time, number, text)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, channel: Channel, text: str) -> None:
        line = f"{dt.datetime.now(dt.UTC).isoformat()}\t{channel.canal}\t{text}\n"
        with self._lock, self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(line)


def code_senders(settings: Settings) -> dict[str, CodeSender]:
    """The senders by channel type, from the settings (no e-mail without an SMTP relay)."""
    senders: dict[str, CodeSender] = {}
    if settings.notify_smtp:
        senders["EMAIL"] = EmailCodeSender(
            SmtpSender(settings.notify_smtp, settings.notify_from, settings.notify_smtp_ca)
        )
    if settings.web_sms == "command":
        senders["SMS"] = CommandSmsSender(settings.web_sms_command)
    else:
        senders["SMS"] = FileSmsSender(settings.data_dir / SMS_OUTBOX)
    return senders
