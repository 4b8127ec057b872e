"""X.509 certificates of professionals' cards (CPS) and of establishments' servers.

`TrustStore.check(chain)` answers with a value, never an exception: either the holder's
identity, or the reason the certificate is refused (untrusted, expired, revoked, wrong key
usage...). Chain building is done here on purpose, in a few explicit steps, rather than with a
web-PKI verifier: the health PKI's profile (no SAN on card certificates, CRL files) is not the
web's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from dmp_xds.security import vocabulary as sv

_RPPS_ID = re.compile(re.escape(sv.RPPS_PREFIX) + r"\d{11}")
_ADELI_ID = re.compile(re.escape(sv.NATIONAL_ID_ADELI_PREFIX) + r"[0-9A-Z]{9}")
_STAFF_ID = re.compile(f"[{sv.NATIONAL_ID_STAFF_TYPES}][0-9A-Za-z]+/[^/\\s]+")
MAX_CHAIN_LENGTH = 6  # leaf + intermediates + anchor; the ANS PKI has 3 levels
CACHE_SIZE = 4096
CACHE_SECONDS = 300.0  # default: a verified certificate is re-checked (CRL, dates) at least this often
_DER = Encoding.DER
log = logging.getLogger(__name__)


class CertificateError(Exception):
    """A trust configuration that cannot be loaded (start-up error, names the file)."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who a certificate names. `kind` is "professional" (a card), "establishment" (an
    organisation certificate) or "unknown" (neither: refused)."""

    kind: str
    national_id: str
    family_name: str
    given_name: str
    profession: str
    organization: str
    structure_id: str
    subject: str
    fingerprint: str  # SHA-256 of the DER, hex
    card_type: str = ""  # a card's type (vocabulary.CARD_TYPES), "" when the certificate does not say

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.given_name, self.family_name) if p) or self.organization or self.subject


@dataclass(frozen=True, slots=True)
class CertificateCheck:
    holder: Holder | None
    reason: str  # why it was refused; "" when accepted

    @property
    def ok(self) -> bool:
        return self.holder is not None


def load_pem_certificates(data: bytes, source: str = "") -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"{source or 'data'}: no PEM certificate could be read ({exc})") from exc


def _read_certificates(paths: Iterable[Path]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for path in paths:
        try:
            out += load_pem_certificates(path.read_bytes(), str(path))
        except OSError as exc:
            raise CertificateError(f"cannot read {path}: {exc}") from exc
    return out


def _read_crls(paths: Iterable[Path]) -> list[x509.CertificateRevocationList]:
    crls = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CertificateError(f"cannot read CRL {path}: {exc}") from exc
        try:
            crls.append(x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data))
        except ValueError as exc:
            raise CertificateError(f"{path} is not a CRL ({exc})") from exc
    return crls


def _by_issuer(crls: Iterable[x509.CertificateRevocationList]) -> dict[bytes, x509.CertificateRevocationList]:
    return {crl.issuer.public_bytes(): crl for crl in crls}


def _stamps(paths: Sequence[Path]) -> tuple[tuple[int, int], ...]:
    """What tells that a file changed: modification time (ns) and size; (-1, -1) if missing."""
    stamps = []
    for path in paths:
        try:
            status = path.stat()
        except OSError:
            stamps.append((-1, -1))
            continue
        stamps.append((status.st_mtime_ns, status.st_size))
    return tuple(stamps)


# The short names RFC 4514 leaves out but IGC-Santé subjects use, so that messages read as ANS writes them.
_SHORT_NAMES = {NameOID.SURNAME: "SN", NameOID.GIVEN_NAME: "GN", NameOID.TITLE: "title", NameOID.PSEUDONYM: "pseudonym"}


def dn(name: x509.Name) -> str:
    """A distinguished name as text (RFC 4514, with SN, GN, title and pseudonym spelled out)."""
    return name.rfc4514_string(_SHORT_NAMES)


def _name_value(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def professional_id(common_name: str) -> str:
    """The professional's national id a card's CN holds (the whole CN), or "" when the CN is
    not one: "8" + RPPS (11 digits), "0" + ADELI (9 characters), or a structure's staff id,
    type + structure id + "/" + internal id (see vocabulary: the ANS idNat_PS)."""
    if _RPPS_ID.fullmatch(common_name) or _ADELI_ID.fullmatch(common_name) or _STAFF_ID.fullmatch(common_name):
        return common_name
    return ""


def card_type_of(cert: x509.Certificate) -> str:
    """The type of card a certificate belongs to (CPS, CPF, CPE, CPA), from its IGC-Santé card
    type extension; "" without it or with a value this server does not know."""
    extension = _extension(cert, x509.ObjectIdentifier(sv.CARD_TYPE_EXTENSION))
    if not isinstance(extension, x509.UnrecognizedExtension) or not extension.value:
        return ""
    return sv.CARD_TYPES.get(extension.value[-1], "")


def holder_of(cert: x509.Certificate) -> Holder:
    """The identity in a certificate subject (see vocabulary: where IGC-Santé puts each field).

    A card names a person (surname, given name or pseudonym) by their national id in CN; an
    organisation certificate names a structure by its national id in OU and no person. Anything
    else is of kind "unknown", which `TrustStore` refuses: a certificate that says neither who
    acts nor for which structure cannot sign for anyone.
    """
    subject = cert.subject
    family = _name_value(subject, sv.SUBJECT_FAMILY_NAME)
    given = _name_value(subject, sv.SUBJECT_GIVEN_NAME)
    person = bool(family or given or _name_value(subject, sv.SUBJECT_PSEUDONYM))
    national_id = professional_id(_name_value(subject, sv.SUBJECT_NATIONAL_ID)) if person else ""
    structure_id = _name_value(subject, sv.SUBJECT_STRUCTURE_ID)
    if national_id:
        kind = "professional"
    else:
        kind = "establishment" if structure_id and not person else "unknown"
    return Holder(
        kind=kind,
        national_id=national_id,
        family_name=family,
        given_name=given,
        profession=_name_value(subject, sv.SUBJECT_PROFESSION),
        organization=_name_value(subject, sv.SUBJECT_ORGANIZATION),
        structure_id=structure_id,
        subject=dn(subject),
        fingerprint=hashlib.sha256(cert.public_bytes(_DER)).hexdigest(),
        card_type=card_type_of(cert) if kind == "professional" else "",
    )


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def _dates_problem(cert: x509.Certificate, now: dt.datetime, what: str) -> str:
    if now < cert.not_valid_before_utc:
        return f"the {what} certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z"
    if now >= cert.not_valid_after_utc:
        return f"the {what} certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z"
    return ""


def _leaf_usage_problem(cert: x509.Certificate) -> str:
    usage = _extension(cert, ExtensionOID.KEY_USAGE)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        return "the certificate's key usage does not allow digital signature (authentication)"
    constraints = _extension(cert, ExtensionOID.BASIC_CONSTRAINTS)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        return "a CA certificate cannot authenticate a user"
    extended = _extension(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    if isinstance(extended, x509.ExtendedKeyUsage) and ExtendedKeyUsageOID.CLIENT_AUTH not in extended:
        return "the certificate's extended key usage does not include client authentication"
    return ""


def _issuer_problem(issuer: x509.Certificate, depth: int) -> str:
    constraints = _extension(issuer, ExtensionOID.BASIC_CONSTRAINTS)
    if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
        return f"issuer {dn(issuer.subject)} is not a CA"
    if constraints.path_length is not None and depth - 1 > constraints.path_length:
        return f"issuer {dn(issuer.subject)} exceeds its path length"
    usage = _extension(issuer, ExtensionOID.KEY_USAGE)
    if isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign:
        return f"issuer {dn(issuer.subject)} may not sign certificates"
    return ""


class TrustStore:
    """Trust anchors, known intermediates and CRLs; checks certificates against them.

    Thread-safe: the verdict cache and the CRLs are the mutable state, under one lock.

    Revocation freshness: a verdict is reused for `cache_seconds` at most; and when the CRL files
    it was built from change (their modification time or size, looked at on every check: a few
    stat calls), the CRLs are read again and every cached verdict is dropped, so that a card
    revoked by a new CRL is refused from the next request on.
    """

    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate] = (),
        crls: Sequence[x509.CertificateRevocationList] = (),
        require_crl: bool = True,
        cache_seconds: float = CACHE_SECONDS,
        crl_paths: Sequence[Path] = (),
    ) -> None:
        if not anchors:
            raise CertificateError("no trust anchor configured")
        self.anchors = list(anchors)
        self._anchor_der = {a.public_bytes(_DER) for a in anchors}
        self.intermediates = list(intermediates)
        self.require_crl = require_crl
        self.cache_seconds = cache_seconds
        self._crls = _by_issuer(crls)
        self._crl_paths = list(crl_paths)
        self._crl_stamps = _stamps(self._crl_paths)
        self._cache: OrderedDict[bytes, tuple[float, CertificateCheck]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_files(
        cls,
        anchors: Iterable[Path],
        intermediates: Iterable[Path] = (),
        crls: Iterable[Path] = (),
        require_crl: bool = True,
        cache_seconds: float = CACHE_SECONDS,
    ) -> TrustStore:
        crl_paths = list(crls)
        return cls(
            _read_certificates(anchors),
            _read_certificates(intermediates),
            _read_crls(crl_paths),
            require_crl,
            cache_seconds,
            crl_paths,
        )

    def _reload_crls_if_changed(self) -> None:
        """Read the CRL files again if one changed; then no cached verdict stands. A file that
        cannot be read (being replaced) leaves the previous CRLs in force until the next check."""
        if not self._crl_paths:
            return
        stamps = _stamps(self._crl_paths)
        if stamps == self._crl_stamps:
            return
        try:
            crls = _by_issuer(_read_crls(self._crl_paths))
        except CertificateError as exc:
            log.error("CRL files changed but cannot be read, keeping the previous CRLs: %s", exc)
            return
        with self._lock:
            self._crls, self._crl_stamps = crls, stamps
            self._cache.clear()
        log.info("CRL files reloaded; certificate verdicts will be checked again")

    def _issuers(self, cert: x509.Certificate, offered: Sequence[x509.Certificate]) -> list[x509.Certificate]:
        wanted = cert.issuer
        return [c for c in (*self.anchors, *offered, *self.intermediates) if c.subject == wanted]

    def _revocation_problem(self, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime) -> str:
        crl = self._crls.get(issuer.subject.public_bytes())
        if crl is None:
            return f"no CRL is configured for {dn(issuer.subject)}" if self.require_crl else ""
        # A certificate's key may be of a kind that cannot sign (X25519...), but an issuer's is not;
        # mypy cannot narrow to cryptography's union alias of the signing kinds.
        if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            return f"the CRL of {dn(issuer.subject)} is not signed by it"
        if crl.next_update_utc is not None and now > crl.next_update_utc:
            return f"the CRL of {dn(issuer.subject)} is out of date (next update {crl.next_update_utc:%Y-%m-%d})"
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            return f"the certificate {dn(cert.subject)} (serial {cert.serial_number:x}) is revoked"
        return ""

    def check(self, chain: Sequence[x509.Certificate], now: dt.datetime | None = None) -> CertificateCheck:
        """Validate `chain[0]` (the leaf), with `chain[1:]` offered as intermediates."""
        if not chain:
            return CertificateCheck(None, "no certificate was presented")
        leaf = chain[0]
        now = now or dt.datetime.now(dt.UTC)
        self._reload_crls_if_changed()
        key = leaf.public_bytes(_DER)
        stamp = now.timestamp()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > stamp:
                self._cache.move_to_end(key)
                return cached[1]
        verdict = self._check(leaf, list(chain[1:]), now)
        valid_until = min(stamp + self.cache_seconds, leaf.not_valid_after_utc.timestamp())
        with self._lock:
            self._cache[key] = (valid_until, verdict)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return verdict

    def _check(self, leaf: x509.Certificate, offered: list[x509.Certificate], now: dt.datetime) -> CertificateCheck:
        problem = _dates_problem(leaf, now, "user") or _leaf_usage_problem(leaf)
        if problem:
            return CertificateCheck(None, problem)
        path = self._path_to_anchor(leaf, offered)
        if isinstance(path, str):
            return CertificateCheck(None, path)
        # path = [leaf, issuer, ..., anchor]: check each link once the whole path is known, so
        # that an untrusted chain is reported as such and not as a side effect (a foreign CRL).
        for depth in range(1, len(path)):
            cert, issuer = path[depth - 1], path[depth]
            problem = (
                _dates_problem(issuer, now, "issuer's")
                or _issuer_problem(issuer, depth)
                or self._revocation_problem(cert, issuer, now)
            )
            if problem:
                return CertificateCheck(None, problem)
        holder = holder_of(leaf)
        if holder.kind == "unknown":
            return CertificateCheck(
                None,
                f"the certificate {holder.subject} names neither a health professional (their "
                "national id in CN) nor a structure (its national id in OU)",
            )
        return CertificateCheck(holder, "")

    def _path_to_anchor(self, leaf: x509.Certificate, offered: list[x509.Certificate]) -> list[x509.Certificate] | str:
        path = [leaf]
        current = leaf
        for _ in range(MAX_CHAIN_LENGTH):
            if current.public_bytes(_DER) in self._anchor_der:
                return path
            issuer = next((c for c in self._issuers(current, offered) if _signed_by(current, c)), None)
            if issuer is None or issuer in path:
                return f"the certificate {dn(current.subject)} was not issued by a trusted certification authority"
            path.append(issuer)
            current = issuer
        return f"the certificate chain is longer than {MAX_CHAIN_LENGTH}"


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
