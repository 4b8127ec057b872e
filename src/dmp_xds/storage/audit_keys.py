"""The secret key of the access trace's chain, kept outside the database.

Each trace row's MAC is an HMAC-SHA-256 under this key, so that someone who can write to the
database but does not hold the key cannot re-chain rows they changed, and checkpoints exported
off the machine are signed with it. The key file holds at least 32 random bytes as hex (what
`openssl rand -hex 32` writes). When DMP_XDS_AUDIT_KEY_FILE is not set, one is generated once
as `<data_dir>/audit-key` (mode 0600), like the repository id; a configured file that is missing
is an error, never replaced: a new key would leave every row written before unverifiable.

Sub-keys are derived for each use (row MACs, checkpoint signatures, the key id) so that a value
computed for one can never pass for another.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dmp_xds.config import ConfigError, Settings

log = logging.getLogger(__name__)

KEY_BYTES = 32
KEY_ID_HEX = 16  # 64 bits of the key's fingerprint: enough to tell keys apart, nothing to learn from


def _derive(secret: bytes, purpose: str) -> bytes:
    return hmac.digest(secret, f"dmp-xds audit {purpose}".encode(), "sha256")


@dataclass(frozen=True)
class AuditKey:
    secret: bytes = field(repr=False)
    source: str = ""  # where it was read from, for messages

    @cached_property
    def id(self) -> str:
        """The key's public fingerprint, stored in each row it MACs (so a rotation can tell keys apart)."""
        return _derive(self.secret, "key id").hex()[:KEY_ID_HEX]

    @cached_property
    def _row_key(self) -> bytes:
        return _derive(self.secret, "row")

    @cached_property
    def _checkpoint_key(self) -> bytes:
        return _derive(self.secret, "checkpoint")

    def row_mac(self, canonical: bytes) -> str:
        return hmac.digest(self._row_key, canonical, "sha256").hex()

    def checkpoint_signature(self, text: str) -> str:
        return hmac.digest(self._checkpoint_key, text.encode("ascii"), "sha256").hex()


def parse_key(text: str, source: str) -> AuditKey:
    value = text.strip()
    try:
        secret = bytes.fromhex(value)
    except ValueError:
        secret = b""
    if len(secret) < KEY_BYTES:
        raise ConfigError(
            f"audit key file {source}: expected at least {2 * KEY_BYTES} hex digits "
            f"({KEY_BYTES} random bytes, e.g. `openssl rand -hex {KEY_BYTES}`)"
        )
    return AuditKey(secret, source)


def load_key(path: Path, generate: bool) -> AuditKey | None:
    """The key in `path`. Missing: generated there when `generate` (the default location only),
    else None (the caller decides whether that is an error)."""
    if not path.exists():
        if not generate:
            return None
        _generate(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "the audit key file %s can be read by other users (mode %o): chmod 600 it", path, stat.S_IMODE(mode)
        )
    return parse_key(path.read_text(encoding="ascii", errors="replace"), str(path))


def _generate(path: Path) -> None:
    """Write a new key to `path` unless another process does it first (then keep theirs): the
    file appears complete or not at all, and is never replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if it exists: two processes never use two keys
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    log.warning(
        "generated the access trace's key in %s: keep a copy in a safe place, and keep it away "
        "from the database in production (DMP_XDS_AUDIT_KEY_FILE)",
        path,
    )


def key_for(settings: Settings, generate: bool) -> AuditKey | None:
    """The configured key (DMP_XDS_AUDIT_KEY_FILE, which must exist), or the one in the data
    directory (generated there when `generate`; None when it is missing and not generated)."""
    path = settings.audit_key_path
    if settings.audit_key_file and not path.exists():
        raise ConfigError(
            f"DMP_XDS_AUDIT_KEY_FILE {path} does not exist; create it with "
            f"`openssl rand -hex {KEY_BYTES} > {path}; chmod 600 {path}` (only for a new "
            "trace: the key of an existing trace must be restored, not replaced)"
        )
    return load_key(path, generate and not settings.audit_key_file)
