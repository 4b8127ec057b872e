"""The VIHF: the SAML 2.0 identity assertion (VIHF 3.0) carried in the WS-Security header.

`VihfVerifier.verify(security, connection=...)` returns a `VihfResult`: the `Principal` it
proves, or the reason it is refused. The order of the checks matters: the signature and its
certificate are verified first, and every later check reads only the element the signature covers
(the copy signxml hands back), never the request's own tree, so that a wrapped or injected element
(XML signature wrapping) can never be what the server believes.

As the DMP does, a VIHF in direct mode may be unsigned: it is then the word of the professional
whose card made the TLS connection (`connection`), and binds to that card only (its holder's
national id, profession and specialties). The DMP's tokens carry no Conditions: their freshness is
their IssueInstant, within `max_age_seconds`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree
from signxml import InvalidInput, InvalidSignature, SignatureConfiguration, XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import SIGNATURE, Holder, TrustStore, dn
from dmp_xds.xds.vocabulary import NS_HL7
from dmp_xds.xds.xml import library_parser

ACCEPTED_SIGNATURES = frozenset(
    {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512, SignatureMethod.ECDSA_SHA256}
)
ACCEPTED_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
# The DMP's own example tokens, and DRIMbox, sign with RSA-SHA1: refusing it would refuse them.
# DMP_XDS_VIHF_SHA1=refuse does (docs/security.md says what that costs).
SHA1_SIGNATURES = frozenset({SignatureMethod.RSA_SHA1})
SHA1_DIGESTS = frozenset({DigestAlgorithm.SHA1})
DEFAULT_CLOCK_SKEW_SECONDS = 120.0
DEFAULT_MAX_AGE_SECONDS = 300.0
REPLAY_CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting, as the VIHF (checked against its certificate) says.

    kind: "professional", "patient", or "representative" (a minor's legal representative).
    `patient_id` is the INS the VIHF is about (CX); the request's patient must be that one.
    `roles` are all the VIHF's role codes (profession, then specialty); `profession` and
    `specialty` the two apart. `authentication_mode` is the DMP's (DIRECTE, INDIRECTE,
    INDIRECTE_RENFORCEE; for a professional always set, from the connection when the VIHF does not
    say). `card_type` is what the card certificate says (CPS, CPF, CPE, CPA), "" in indirect mode
    or when the certificate does not say. `signed`: False for an unsigned direct-mode VIHF.
    """

    kind: str
    user_id: str  # professional: national id ("8" + RPPS); patient: their INS
    name: str
    roles: tuple[str, ...]
    structure_id: str
    sector: str
    access_mode: str
    access_reason: str
    patient_id: str
    software: str
    authentication_mode: str
    assertion_id: str
    signer: Holder
    profession: str = ""
    specialty: str = ""
    card_type: str = ""
    lps_id: str = ""
    lps_approval: str = ""
    confidentiality_code: str = ""
    signed: bool = True

    @property
    def profession_code(self) -> str:
        """The profession code (TRE_G15); for a Principal built without `profession`, its first role."""
        if self.profession:
            return self.profession
        return self.roles[0] if self.is_professional and self.roles else ""

    @property
    def is_doctor(self) -> bool:
        """A doctor (profession 10) acting with their own card or through their establishment;
        never a CPE holder, whatever role their software states."""
        return self.is_professional and not self.is_cpe and self.profession_code == sv.PROFESSION_DOCTOR

    @property
    def is_occupational_doctor(self) -> bool:
        """A doctor whose specialty is occupational medicine (médecin du travail, SM25)."""
        return self.is_doctor and sv.SPECIALTY_OCCUPATIONAL_MEDICINE in (self.specialty, *self.roles)

    @property
    def is_cpe(self) -> bool:
        """Acting with an establishment staff card (CPE: a secretary, not a health professional)."""
        return self.card_type == sv.CARD_CPE

    @property
    def is_cpf(self) -> bool:
        """Acting with a card of a professional in training (CPF)."""
        return self.card_type == sv.CARD_CPF

    @property
    def is_direct(self) -> bool:
        """DIRECTE: the professional's own card made the connection."""
        return self.authentication_mode == sv.AUTHENTICATION_DIRECT

    @property
    def is_indirect(self) -> bool:
        """INDIRECTE or INDIRECTE_RENFORCEE: an establishment's certificate made the connection."""
        return self.authentication_mode in sv.INDIRECT_MODES

    @property
    def is_reinforced_indirect(self) -> bool:
        """INDIRECTE_RENFORCEE (AIR): the establishment authenticated its user strongly."""
        return self.authentication_mode == sv.AUTHENTICATION_INDIRECT_REINFORCED

    @property
    def is_emergency(self) -> bool:
        """Break-glass access (bris_de_glace)."""
        return self.access_mode == sv.ACCESS_EMERGENCY

    @property
    def is_regulation(self) -> bool:
        """Access by an emergency regulation centre (centre_15)."""
        return self.access_mode == sv.ACCESS_REGULATION

    @property
    def is_patient(self) -> bool:
        return self.kind == "patient"

    @property
    def is_representative(self) -> bool:
        return self.kind == "representative"

    @property
    def is_professional(self) -> bool:
        return self.kind == "professional"

    @property
    def vouched_by(self) -> str:
        """The structure on whose word the server takes this identity ("" for a card's holder):
        the patient portal for a patient or a legal representative, the establishment for its
        professional in indirect mode. Every trace row of the request names it."""
        return vouching_structure(self.signer)


def vouching_structure(signer: Holder) -> str:
    """The structure that vouches for a VIHF's subject: its signer's, when an organisation
    certificate signed it; "" when a card did (its holder speaks for themself)."""
    return signer.structure_id if signer.kind == "establishment" else ""


@dataclass(frozen=True, slots=True)
class VihfResult:
    """A Principal, or the reason the VIHF is refused. A refusal of a VIHF whose signature
    verified also says what it claimed (who, about which patient, vouched for by which
    structure), so that the refusal is traced on the patient's history and names the structure."""

    principal: Principal | None
    reason: str = ""
    user_id: str = ""
    patient_id: str = ""
    vouched_by: str = ""

    @property
    def ok(self) -> bool:
        return self.principal is not None


def _refuse(reason: str) -> VihfResult:
    return VihfResult(None, reason)


ANY_ESTABLISHMENT = "any"
NO_ESTABLISHMENT = "none"


@dataclass(frozen=True, slots=True)
class VouchingRules:
    """Which structures' organisation certificates the server takes at their word.

    `patient_portals`: the only structures that may sign the VIHF of a patient or of a legal
    representative (who have no card): the portals through which citizens log in. None by
    default, since any establishment certificate could otherwise act as any patient.
    `establishments`: the structures that may sign a professional's VIHF (DMP indirect mode:
    the establishment authenticated its staff member and answers for it); None means any
    structure of the trusted PKI, the DMP's rule.
    """

    patient_portals: frozenset[str] = frozenset()
    establishments: frozenset[str] | None = None

    @classmethod
    def parse(cls, patient_portals: str, establishment_vouching: str) -> VouchingRules:
        """From the settings DMP_XDS_PATIENT_PORTALS (comma-separated structure ids) and
        DMP_XDS_ESTABLISHMENT_VOUCHING ("any", "none", or comma-separated structure ids)."""
        portals = frozenset(_ids(patient_portals))
        vouching = establishment_vouching.strip()
        if vouching == ANY_ESTABLISHMENT:
            return cls(portals, None)
        if vouching == NO_ESTABLISHMENT:
            return cls(portals, frozenset())
        establishments = frozenset(_ids(vouching))
        if not establishments:
            raise ValueError(
                f"DMP_XDS_ESTABLISHMENT_VOUCHING must be {ANY_ESTABLISHMENT!r}, {NO_ESTABLISHMENT!r} or "
                "a comma-separated list of structure ids, not an empty value"
            )
        return cls(portals, establishments)

    def may_vouch_for_professionals(self, structure_id: str) -> bool:
        return self.establishments is None or structure_id in self.establishments


def _ids(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def split_cx(cx: str) -> tuple[str, str]:
    """(id, assigning authority root) of a CX `id^^^&root&ISO[^type]`."""
    parts = cx.strip().split("^")
    root = ""
    if len(parts) > 3:
        authority = parts[3].split("&")
        root = authority[1] if len(authority) > 1 else authority[0]
    return parts[0], root


def same_patient(a: str, b: str) -> bool:
    """Two CX patient ids name the same patient (the identifier type, `^NH`, may differ)."""
    return bool(a) and bool(b) and split_cx(a) == split_cx(b)


class ReplayStore(Protocol):
    """Where used assertion ids are kept: False from `first_use` means the id was seen before."""

    def first_use(self, assertion_id: str, expires: float, now: float) -> bool: ...


class ReplayCache:
    """Assertion ids already used, until they expire: a VIHF is good for one request.

    In memory, for one process (tests, tools). The server uses the database's
    (storage.replay.DatabaseReplayCache), which every worker process shares.
    """

    def __init__(self, size: int = REPLAY_CACHE_SIZE) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_use(self, assertion_id: str, expires: float, now: float) -> bool:
        with self._lock:
            # Drop expired entries from the old end (bounded: stops at the first live one).
            while self._seen:
                oldest_id, oldest_expiry = next(iter(self._seen.items()))
                if oldest_expiry > now and len(self._seen) < self._size:
                    break
                self._seen.pop(oldest_id)
            if assertion_id in self._seen:
                return False
            self._seen[assertion_id] = expires
            return True


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _attributes(assertion: etree._Element) -> dict[str, list[etree._Element]]:
    out: dict[str, list[etree._Element]] = {}
    for statement in assertion.iterfind(sv.TAG_ATTRIBUTE_STATEMENT):
        for attribute in statement.iterfind(sv.TAG_ATTRIBUTE):
            out.setdefault(attribute.get("Name", ""), []).extend(attribute.iterfind(sv.TAG_ATTRIBUTE_VALUE))
    return out


def _text(values: Sequence[etree._Element]) -> str:
    return (values[0].text or "").strip() if values else ""


def _coded(values: Sequence[etree._Element], tag: str) -> list[tuple[str, str]]:
    """(code, code system) of HL7 CE attribute values (`<hl7:Role code=... codeSystem=.../>`), or
    (plain text, ""). The displayName is not read: the DMP's examples mis-encode it."""
    codes = []
    for value in values:
        coded = value.find(tag)
        if coded is not None:
            code, system = coded.get("code", "").strip(), coded.get("codeSystem", "").strip()
        else:
            code, system = (value.text or "").strip(), ""
        if code:
            codes.append((code, system))
    return codes


def _codes(values: Sequence[etree._Element], tag: str) -> list[str]:
    return [code for code, _ in _coded(values, tag)]


@dataclass(frozen=True, slots=True)
class _Roles:
    codes: tuple[str, ...]
    profession: str
    specialty: str
    citizen: str


def _roles(values: Sequence[etree._Element]) -> _Roles:
    """The VIHF's roles: the profession (TRE_G15) and the specialty (TRE_R38), told apart by their
    code system; else, as the ANS mapping orders them, the first occurrence is the profession (a
    CPF's is of another system) and the second the specialty (a savoir-faire)."""
    coded = _coded(values, sv.TAG_HL7_ROLE)
    profession = next((c for c, system in coded if system == sv.PROFESSION_SYSTEM), "")
    specialty = next((c for c, system in coded if system == sv.SPECIALTY_SYSTEM), "")
    profession = profession or (coded[0][0] if coded else "")
    specialty = specialty or (coded[1][0] if len(coded) > 1 and coded[1][0] != profession else "")
    codes = tuple(code for code, _ in coded)
    citizen = next((code for code in codes if code in sv.CITIZEN_ROLES), "")
    return _Roles(codes, "" if citizen else profession, specialty, citizen)


# Attribute types of an X509SubjectName as the kit and Java write them, by their RFC 4514 name:
# the kit rewrites G= as GN= and S= as ST=; Java writes unknown types as dotted OIDs.
_DN_TYPES = {"2.5.4.3": "CN", "2.5.4.11": "OU", "COMMONNAME": "CN", "ORGANIZATIONALUNITNAME": "OU"}


def _dn_value(raw: str) -> str:
    """A DN value without escapes; a `#hex` value (a DER string) decoded."""
    value = raw.strip()
    if value.startswith("#"):
        try:
            data = bytes.fromhex(value[1:])
        except ValueError:
            return value
        return data[2:].decode("utf-8", "replace") if len(data) >= 2 else ""
    out, escaped = [], False
    for char in value:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out).strip('"')


def _dn_split(text: str, separators: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _loose(value: str) -> str:
    """Letters and digits only, case-folded: the examples write "M?decin" for "Médecin"."""
    return "".join(c for c in value.casefold() if c.isascii() and c.isalnum())


def dn_identity(text: str) -> dict[str, set[str]]:
    """The CN and OU values of an X509SubjectName (they name the national id of a card's holder,
    the structure of an organisation), loosely normalized: the parts of a DN that identify, which
    survive the kit's renaming of other attribute types and the encoding of accented names."""
    out: dict[str, set[str]] = {}
    for rdn in _dn_split(text, ",;"):
        for pair in _dn_split(rdn, "+"):
            name, sep, value = pair.partition("=")
            kind = name.strip().upper()
            kind = _DN_TYPES.get(kind, kind)
            if sep and kind in ("CN", "OU"):
                out.setdefault(kind, set()).add(_loose(_dn_value(value)))
    return out


@functools.lru_cache(maxsize=1024)
def issuer_problem(issuer: str, certificate: x509.Certificate) -> str:
    """Why the VIHF's Issuer does not name its signing certificate ("" if it does): every CN and
    OU the Issuer states must be the certificate subject's. A pure function of the two, kept for
    the cards and establishments seen last (every request of a card states the same Issuer)."""
    stated = dn_identity(issuer)
    actual = dn_identity(dn(certificate.subject))
    for kind, values in stated.items():
        if values != actual.get(kind, set()):
            return f"the VIHF Issuer {issuer!r} is not its signing certificate ({dn(certificate.subject)})"
    return ""


def staff_structure(national_id: str) -> str:
    """The structure of a staff member's national id (type + structure id + "/" + internal id,
    see vocabulary), "" for any other id."""
    head, slash, _ = national_id.partition("/")
    return head if slash else ""


def card_problem(card: Holder, roles: _Roles, structure: str) -> str:
    """Why a direct-mode VIHF's roles or structure are not its card's ("" if they agree, or the
    card does not say): the profession and specialties a GIP-CPS certificate carries, and the
    structure a staff card's national id names (an inference: the DMP's documents show no CPE)."""
    if card.profession_code and roles.profession and roles.profession != card.profession_code:
        return f"the VIHF profession {roles.profession} is not the card's ({card.profession_code})"
    if card.specialties and roles.specialty and roles.specialty not in card.specialties:
        return f"the VIHF specialty {roles.specialty} is not one of the card's ({', '.join(card.specialties)})"
    own = staff_structure(card.national_id)
    if own and structure and structure != own:
        return f"the VIHF structure {structure} is not the one of the staff card {card.national_id}"
    return ""


class VihfVerifier:
    def __init__(
        self,
        trust: TrustStore,
        audience: str = "",
        clock_skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        replay_cache: ReplayStore | None = None,
        vouching: VouchingRules | None = None,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        allow_sha1: bool = True,
    ) -> None:
        self.trust = trust
        self.vouching = vouching or VouchingRules()
        self.audience = audience
        self.skew = dt.timedelta(seconds=clock_skew_seconds)
        self.max_age = dt.timedelta(seconds=max_age_seconds)
        self.replays: ReplayStore = replay_cache or ReplayCache()
        self.allow_sha1 = allow_sha1
        self._config = SignatureConfiguration(
            require_x509=True,
            location="./",
            expect_references=1,
            signature_methods=ACCEPTED_SIGNATURES | (SHA1_SIGNATURES if allow_sha1 else frozenset()),
            digest_algorithms=ACCEPTED_DIGESTS | (SHA1_DIGESTS if allow_sha1 else frozenset()),
        )

    def verify(
        self, security: etree._Element | None, now: dt.datetime | None = None, connection: Holder | None = None
    ) -> VihfResult:
        """The VIHF of `security`, sent over the TLS connection of `connection` (the client
        certificate's holder, already checked; None: not known, then an unsigned VIHF is refused)."""
        now = now or dt.datetime.now(dt.UTC)
        if security is None:
            return _refuse("the request has no wsse:Security header: a VIHF assertion is required")
        assertions = security.findall(sv.TAG_ASSERTION)
        if not assertions:
            return _refuse("wsse:Security holds no SAML 2.0 Assertion (VIHF)")
        if len(assertions) > 1:
            return _refuse("wsse:Security holds more than one SAML Assertion")
        assertion = assertions[0]
        assertion_id = assertion.get("ID", "")
        if not assertion_id:
            return _refuse("the VIHF has no ID")
        signature = assertion.find(sv.TAG_SIGNATURE)
        if signature is None:
            if connection is None or connection.kind != "professional":
                over = " (this connection is made with an organisation certificate)" if connection else ""
                return _refuse(
                    "the VIHF is not signed: only a direct-mode VIHF sent over its professional's own "
                    f"card connection may be unsigned{over}"
                )
            # The TLS handshake authenticated the card: an unsigned VIHF is its holder's word, and
            # what it says is read from the request itself (there is no signature to wrap).
            return self._principal(assertion, connection, now, None)
        chain = _key_info_chain(signature)
        if isinstance(chain, str):
            return _refuse(chain)
        check = self.trust.check(chain, now, SIGNATURE)
        if check.holder is None:
            return _refuse(f"the VIHF signing certificate is refused: {check.reason}")
        signed = self._verified_copy(assertion, chain[0])
        if isinstance(signed, str):
            return _refuse(signed)
        return self._principal(signed, check.holder, now, chain[0])

    def _verified_copy(self, assertion: etree._Element, certificate: x509.Certificate) -> etree._Element | str:
        assertion_id = assertion.get("ID", "")
        # One element only may carry the signed ID: a second one is how wrapping attacks make
        # the reference resolve to a different element from the one the server reads.
        if len(assertion.xpath("//*[@ID=$id]", id=assertion_id)) != 1:
            return "the VIHF ID is not unique in the message (signature wrapping)"
        references = assertion.xpath("ds:Signature/ds:SignedInfo/ds:Reference/@URI", namespaces={"ds": sv.NS_DS})
        if references != [f"#{assertion_id}"]:
            return "the VIHF signature does not cover the Assertion itself (signature wrapping)"
        try:
            result = XMLVerifier().verify(
                etree.tostring(assertion),
                x509_cert=certificate,
                id_attribute="ID",
                expect_config=self._config,
                parser=library_parser(),
            )
        except (InvalidSignature, InvalidDigest, InvalidCertificate) as exc:
            return f"the VIHF signature does not verify (the assertion was altered or signed by another key): {exc}"
        except InvalidInput as exc:
            sha1 = "" if self.allow_sha1 else " (SHA-1 is refused here: DMP_XDS_VIHF_SHA1=refuse)"
            return f"the VIHF signature cannot be checked: {exc}{sha1}"
        if isinstance(result, list):  # one result per reference: the configuration expects one
            return "the VIHF signature has several references"
        signed = result.signed_xml
        if signed is None or signed.tag != sv.TAG_ASSERTION or signed.get("ID") != assertion_id:
            return "the VIHF signature covers something other than the Assertion (signature wrapping)"
        return signed

    def _principal(
        self, assertion: etree._Element, signer: Holder, now: dt.datetime, certificate: x509.Certificate | None
    ) -> VihfResult:
        """`certificate`: the signing certificate; None for an unsigned VIHF (`signer` is then the
        card of the connection)."""
        attributes = _attributes(assertion)
        name_id = (assertion.findtext(f"{sv.TAG_SUBJECT}/{sv.TAG_NAME_ID}") or "").strip()
        patient_id = _text(attributes.get(sv.ATTR_RESOURCE_ID, []))

        def refuse(reason: str) -> VihfResult:
            # Signed or bound to the card: what the VIHF claims is what its author said, worth tracing.
            return VihfResult(None, reason, name_id, patient_id, vouching_structure(signer))

        freshness = self._freshness(assertion, now)
        if isinstance(freshness, str):
            return refuse(freshness)
        roles = _roles(attributes.get(sv.ATTR_ROLE, []))
        modes = _codes(attributes.get(sv.ATTR_PURPOSE_OF_USE, []), sv.TAG_HL7_PURPOSE_OF_USE)
        citizen = roles.citizen
        required = {
            "Subject/NameID": name_id,
            sv.ATTR_ROLE: roles.codes,
            sv.ATTR_PURPOSE_OF_USE: modes,
            sv.ATTR_RESOURCE_ID: patient_id,
            sv.ATTR_LPS_NAME: _text(attributes.get(sv.ATTR_LPS_NAME, [])),
            sv.ATTR_LPS_VERSION: _text(attributes.get(sv.ATTR_LPS_VERSION, [])),
        }
        if not citizen:
            required[sv.ATTR_STRUCTURE_ID] = _text(attributes.get(sv.ATTR_STRUCTURE_ID, []))
            required[sv.ATTR_SECTOR] = _text(attributes.get(sv.ATTR_SECTOR, []))
        missing = [name for name, value in required.items() if not value]
        if missing:
            return refuse(f"the VIHF lacks required attribute(s): {', '.join(missing)}")
        version = _text(attributes.get(sv.ATTR_VIHF_VERSION, []))
        if version and version not in sv.VIHF_VERSIONS:
            return refuse(f"VIHF_Version {version!r} is not supported (expected {' or '.join(sv.VIHF_VERSIONS)})")
        mode = modes[0]
        if mode not in sv.ACCESS_MODES:
            return refuse(f"unknown access mode {mode!r} (expected one of {', '.join(sv.ACCESS_MODES)})")
        reason = _text(attributes.get(sv.ATTR_ACCESS_REASON, []))
        if mode == sv.ACCESS_EMERGENCY and not reason:
            return refuse(f"emergency access ({sv.ACCESS_EMERGENCY}) requires a reason ({sv.ATTR_ACCESS_REASON})")
        structure = _text(attributes.get(sv.ATTR_STRUCTURE_ID, []))
        auth_mode, problem = _authentication_mode(attributes, signer, citizen)
        if problem:
            return refuse(problem)
        if certificate is None and name_id != signer.national_id:
            return refuse(
                f"the unsigned VIHF names {name_id} but the connection is made with the card of "
                f"{signer.national_id}: an unsigned VIHF speaks for the card's holder only"
            )
        problem = signer_problem(name_id, citizen, patient_id, structure, signer, self.vouching)
        if not problem and signer.kind == "professional" and not citizen:
            problem = card_problem(signer, roles, structure)
        if not problem and certificate is not None:
            issuer = (assertion.findtext(sv.TAG_ISSUER) or "").strip()
            problem = issuer_problem(issuer, certificate)
        if problem:
            return refuse(problem)
        principal = Principal(
            kind={sv.PATIENT_ROLE: "patient", sv.REPRESENTATIVE_ROLE: "representative"}.get(citizen, "professional"),
            user_id=name_id,
            name=_text(attributes.get(sv.ATTR_SUBJECT_ID, [])) or signer.display_name,
            roles=roles.codes,
            # A citizen's VIHF need not name a structure: theirs is the portal that vouches for them.
            structure_id=signer.structure_id if citizen else structure,
            sector=_text(attributes.get(sv.ATTR_SECTOR, [])),
            access_mode=mode,
            access_reason=reason,
            patient_id=patient_id,
            software=f"{_text(attributes[sv.ATTR_LPS_NAME])} {_text(attributes[sv.ATTR_LPS_VERSION])}",
            authentication_mode=auth_mode,
            assertion_id=assertion.get("ID", ""),
            signer=signer,
            profession=roles.profession,
            specialty=roles.specialty,
            card_type=signer.card_type if signer.kind == "professional" else "",
            lps_id=_text(attributes.get(sv.ATTR_LPS_ID, [])),
            lps_approval=_text(attributes.get(sv.ATTR_LPS_DMP_APPROVAL, [])),
            confidentiality_code=_text(attributes.get(sv.ATTR_CONFIDENTIALITY, [])),
            signed=certificate is not None,
        )
        if not self.replays.first_use(principal.assertion_id, (freshness + self.skew).timestamp(), now.timestamp()):
            return refuse(f"the VIHF {principal.assertion_id} was already used (replay): send a fresh assertion")
        return VihfResult(principal)

    def _freshness(self, assertion: etree._Element, now: dt.datetime) -> dt.datetime | str:
        """Until when the VIHF is good (its id is kept that long against replay), or why it is not.

        The DMP's tokens have no Conditions: they are good for `max_age` from their IssueInstant.
        A VIHF with Conditions is good within them (NotOnOrAfter, else the same max age), and for
        this server only when an audience is configured."""
        issued = _parse_time(assertion.get("IssueInstant"))
        if issued is None:
            return "the VIHF has no valid IssueInstant"
        future = f"the VIHF was issued in the future (IssueInstant {assertion.get('IssueInstant')})"
        conditions = assertion.find(sv.TAG_CONDITIONS)
        if conditions is None:
            if issued > now + self.skew:
                return future
            if now - self.skew > issued + self.max_age:
                return (
                    f"the VIHF is stale: issued at {assertion.get('IssueInstant')}, more than "
                    f"{self.max_age.total_seconds():.0f} s ago (DMP_XDS_VIHF_MAX_AGE_SECONDS): send a fresh one"
                )
            return issued + self.max_age
        not_before = _parse_time(conditions.get("NotBefore"))
        not_after = _parse_time(conditions.get("NotOnOrAfter"))
        if conditions.get("NotBefore") and not_before is None or conditions.get("NotOnOrAfter") and not_after is None:
            return "the VIHF Conditions have an unreadable NotBefore or NotOnOrAfter"
        if not_before is not None and now + self.skew < not_before:
            return f"the VIHF is not valid yet (NotBefore {conditions.get('NotBefore')})"
        if not_after is not None and now - self.skew >= not_after:
            return f"the VIHF has expired (NotOnOrAfter {conditions.get('NotOnOrAfter')})"
        if issued > now + self.skew:
            return future
        if not_after is None and now - self.skew > issued + self.max_age:
            return f"the VIHF is stale: issued at {assertion.get('IssueInstant')} and its Conditions set no end"
        if self.audience:
            audiences = [
                (a.text or "").strip() for a in conditions.iterfind(f"{sv.TAG_AUDIENCE_RESTRICTION}/{sv.TAG_AUDIENCE}")
            ]
            if self.audience not in audiences:
                return f"the VIHF is not meant for this server (audience {self.audience!r} not in {audiences})"
        return not_after if not_after is not None else issued + self.max_age


def _authentication_mode(attributes: dict[str, list[etree._Element]], signer: Holder, citizen: str) -> tuple[str, str]:
    """(the DMP authentication mode of a VIHF, why it is refused or ""). The kit states the mode
    only in AIR mode: otherwise the signer (the connection's, see services/gate.py) tells, a card
    DIRECTE, an organisation INDIRECTE. A stated mode must be the signer's."""
    stated = next((_text(attributes[n]) for n in sv.ATTR_AUTHENTICATION_MODE_ALIASES if n in attributes), "")
    if stated and stated not in sv.AUTHENTICATION_MODES:
        return stated, (
            f"unknown authentication mode {stated!r} (Authentification_mode: expected one of "
            f"{', '.join(sv.AUTHENTICATION_MODES)})"
        )
    if citizen:
        return stated, ""
    card = signer.kind == "professional"
    if not stated:
        return (sv.AUTHENTICATION_DIRECT if card else sv.AUTHENTICATION_INDIRECT), ""
    if stated == sv.AUTHENTICATION_DIRECT and not card:
        return stated, f"a {stated} VIHF comes from the professional's card, not from an organisation certificate"
    if stated in sv.INDIRECT_MODES and card:
        return stated, f"an {stated} VIHF comes from an establishment's certificate, not from a professional's card"
    return stated, ""


def _key_info_chain(signature: etree._Element) -> list[x509.Certificate] | str:
    texts = [(e.text or "") for e in signature.iter(sv.TAG_X509_CERTIFICATE)]
    if not texts:
        return "the VIHF signature carries no X509Certificate"
    chain = []
    for text in texts:
        try:
            chain.append(x509.load_der_x509_certificate(base64.b64decode("".join(text.split()), validate=True)))
        except (ValueError, binascii.Error):
            return "the VIHF X509Certificate is not a certificate"
    return chain


def _structure(holder: Holder) -> str:
    return f"{holder.organization} ({holder.structure_id})" if holder.organization else holder.structure_id


def signer_problem(
    name_id: str, citizen: str, patient_id: str, structure: str, signer: Holder, vouching: VouchingRules
) -> str:
    """Why `signer` may not vouch for this VIHF's subject ("" if it may). A card signs for its
    holder only; an organisation certificate for its own structure only, and then for a patient
    or a legal representative only if that structure is a configured patient portal, for a
    professional only if the establishment vouching rule lets it."""
    if citizen:
        # A patient has no card: their VIHF comes from a trusted organisation (a patient portal).
        if signer.kind != "establishment":
            return f"a {citizen} VIHF must be signed by an organisation certificate"
        if signer.structure_id not in vouching.patient_portals:
            return (
                f"a {citizen} VIHF is signed by {_structure(signer)}, which is not a patient portal of this "
                "server (DMP_XDS_PATIENT_PORTALS): only a patient portal may speak for a patient or a legal "
                "representative"
            )
        if structure and structure != signer.structure_id:
            return f"the VIHF structure {structure} is not the signing patient portal's ({signer.structure_id})"
        if citizen == sv.PATIENT_ROLE and not same_patient(name_id, patient_id):
            return "a patient VIHF must be about the patient it names"
        if citizen == sv.REPRESENTATIVE_ROLE and same_patient(name_id, patient_id):
            return "a legal representative's VIHF names the representative, not the patient"
        return ""
    if signer.kind == "professional" and signer.national_id != name_id:
        return (
            f"the VIHF names {name_id} but is signed with the card of {signer.national_id}: "
            "a professional's card signs only for its holder"
        )
    # An organisation certificate always names its structure (cps.holder_of): it signs for its staff only.
    if signer.kind == "establishment" and structure != signer.structure_id:
        return f"the VIHF structure {structure} is not the signing establishment's ({signer.structure_id})"
    if signer.kind == "establishment" and not vouching.may_vouch_for_professionals(signer.structure_id):
        return (
            f"{_structure(signer)} may not vouch for a professional (DMP_XDS_ESTABLISHMENT_VOUCHING): "
            "sign the VIHF with the professional's own card"
        )
    return ""


# --- building (tests, demos, client software) ------------------------------------------------


@dataclass
class VihfClaims:
    """What a VIHF says. The defaults make this project's historical shape (Conditions, a
    subject-id, one role); `dmp_claims` and pki.dmp_vihf make the DMP's (no Conditions, the
    examples' attribute set and spelling)."""

    user_id: str
    name: str
    role: str  # profession code, or PATIENT
    patient_id: str
    structure_id: str = ""
    sector: str = "SA07"
    access_mode: str = sv.ACCESS_NORMAL
    access_reason: str = ""
    lps_name: str = "dmp-xds-client"
    lps_version: str = "1.0"
    audience: str = ""
    authentication_mode: str = ""  # "" states none: the server infers it from the signer
    specialty: str = ""  # a second role, TRE_R38 (e.g. SM26)
    lps_id: str = ""
    lps_approval: str = ""  # LPS_ID_HOMOLOGATION_DMP
    confidentiality_code: str = ""
    conditions: bool = True  # the DMP's tokens have none
    subject_name: bool = True  # the DMP's direct tokens carry no subject-id
    authentication_mode_attribute: str = sv.ATTR_AUTHENTICATION_MODE
    authn_context: str = sv.AUTHN_CONTEXT_SMARTCARD
    authn_declaration: str = ""  # AIR: APP_BROWSER_AUTH


def dmp_claims(
    user_id: str,
    name: str,
    profession: str,
    patient_id: str,
    structure_id: str,
    authentication_mode: str,
    specialty: str = "",
    access_mode: str = sv.ACCESS_NORMAL,
    access_reason: str = "",
) -> VihfClaims:
    """The claims of a VIHF shaped as the DMP's example tokens (dmpi.md section 5): no Conditions,
    the mode spelled `Authentification_mode`, the LPS attributes, no subject-id in direct mode, and
    in AIR mode the kit's AuthnContextDecl."""
    direct = authentication_mode == sv.AUTHENTICATION_DIRECT
    reinforced = authentication_mode == sv.AUTHENTICATION_INDIRECT_REINFORCED
    return VihfClaims(
        user_id,
        name,
        profession,
        patient_id,
        structure_id=structure_id,
        access_mode=access_mode,
        access_reason=access_reason,
        lps_name="dmp-xds LPS",
        lps_version="1",
        authentication_mode=authentication_mode,
        specialty=specialty,
        lps_id="dmp-xds.test",
        lps_approval="dmp-xds-test",
        conditions=False,
        subject_name=not direct,
        authentication_mode_attribute=sv.ATTR_AUTHENTICATION_MODE_DMP,
        authn_declaration=sv.AUTHN_DECL_AIR if reinforced else "",
    )


def _coded_value(tag: str, code: str, system: str, display: str, system_name: str = "") -> etree._Element:
    element = etree.Element(tag, code=code, codeSystem=system)
    if system_name:
        element.set("codeSystemName", system_name)
    element.set("displayName", display)
    element.set(f"{{{sv.NS_XSI}}}type", "CE")
    return element


ISSUER_PLACEHOLDER = "dmp-xds test"  # replaced by the signer's DN when signed


def build_assertion(
    claims: VihfClaims,
    now: dt.datetime | None = None,
    lifetime_seconds: float = 300.0,
    assertion_id: str | None = None,
    issuer: str = "",
    signature_last: bool = False,
) -> etree._Element:
    """An unsigned VIHF (see `sign_assertion`): its signature goes after the Issuer (the DMP's
    examples, the kit), or last with `signature_last` (another client's way)."""
    now = now or dt.datetime.now(dt.UTC)

    def stamp(t: dt.datetime) -> str:
        return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    nsmap = {"saml2": sv.NS_SAML, "hl7": NS_HL7, "xsi": sv.NS_XSI}
    assertion = etree.Element(
        sv.TAG_ASSERTION, nsmap=nsmap, ID=assertion_id or f"_{uuid.uuid4()}", IssueInstant=stamp(now), Version="2.0"
    )
    etree.SubElement(assertion, sv.TAG_ISSUER, Format=sv.ISSUER_FORMAT_X509).text = issuer or ISSUER_PLACEHOLDER
    if not signature_last:
        etree.SubElement(assertion, sv.TAG_SIGNATURE, nsmap={"ds": sv.NS_DS}, Id="placeholder")
    subject = etree.SubElement(assertion, sv.TAG_SUBJECT)
    etree.SubElement(subject, sv.TAG_NAME_ID).text = claims.user_id
    if claims.conditions:
        conditions = etree.SubElement(
            assertion,
            sv.TAG_CONDITIONS,
            NotBefore=stamp(now - dt.timedelta(seconds=1)),
            NotOnOrAfter=stamp(now + dt.timedelta(seconds=lifetime_seconds)),
        )
        if claims.audience:
            restriction = etree.SubElement(conditions, sv.TAG_AUDIENCE_RESTRICTION)
            etree.SubElement(restriction, sv.TAG_AUDIENCE).text = claims.audience
    authn = etree.SubElement(assertion, sv.TAG_AUTHN_STATEMENT, AuthnInstant=stamp(now))
    context = etree.SubElement(authn, sv.TAG_AUTHN_CONTEXT)
    etree.SubElement(context, sv.TAG_AUTHN_CONTEXT_CLASS_REF).text = claims.authn_context
    if claims.authn_declaration:
        etree.SubElement(context, sv.TAG_AUTHN_CONTEXT_DECL).text = claims.authn_declaration
    statement = etree.SubElement(assertion, sv.TAG_ATTRIBUTE_STATEMENT)

    def attribute(name: str, *values: str | etree._Element) -> None:
        if not values or values[0] == "":
            return
        element = etree.SubElement(statement, sv.TAG_ATTRIBUTE, Name=name)
        for value in values:
            holder = etree.SubElement(element, sv.TAG_ATTRIBUTE_VALUE)
            if isinstance(value, str):
                holder.text = value
            else:
                holder.append(value)

    patient = claims.role in sv.CITIZEN_ROLES
    role_system = sv.PATIENT_ROLE_SYSTEM if patient else sv.PROFESSION_SYSTEM
    roles = [_coded_value(sv.TAG_HL7_ROLE, claims.role, role_system, sv.PROFESSIONS.get(claims.role, claims.role))]
    if claims.specialty:
        display = sv.SPECIALTIES.get(claims.specialty, claims.specialty)
        roles.append(_coded_value(sv.TAG_HL7_ROLE, claims.specialty, sv.SPECIALTY_SYSTEM, display))
    purpose = _coded_value(
        sv.TAG_HL7_PURPOSE_OF_USE,
        claims.access_mode,
        sv.ACCESS_MODE_SYSTEM,
        sv.ACCESS_MODES.get(claims.access_mode, claims.access_mode),
        sv.ACCESS_MODE_SYSTEM_NAME,
    )
    if claims.structure_id:
        attribute(sv.ATTR_STRUCTURE_ID, claims.structure_id)
    if claims.sector and not patient:
        attribute(sv.ATTR_SECTOR, f"{claims.sector}^{sv.SECTOR_SYSTEM}")
    if claims.subject_name:
        attribute(sv.ATTR_SUBJECT_ID, claims.name)
    attribute(sv.ATTR_ROLE, *roles)
    attribute(sv.ATTR_VIHF_VERSION, sv.VIHF_VERSION)
    attribute(claims.authentication_mode_attribute, claims.authentication_mode)
    attribute(sv.ATTR_RESOURCE_ID, claims.patient_id)
    attribute(sv.ATTR_RESOURCE_URN, sv.RESOURCE_URN_DMP)
    attribute(sv.ATTR_PURPOSE_OF_USE, purpose)
    attribute(sv.ATTR_ACCESS_REASON, claims.access_reason)
    attribute(sv.ATTR_CONFIDENTIALITY, claims.confidentiality_code)
    attribute(sv.ATTR_LPS_ID, claims.lps_id)
    attribute(sv.ATTR_LPS_NAME, claims.lps_name)
    attribute(sv.ATTR_LPS_VERSION, claims.lps_version)
    attribute(sv.ATTR_LPS_DMP_APPROVAL, claims.lps_approval)
    return assertion


class _Sha1Signer(XMLSigner):
    """signxml refuses to sign with SHA-1 unless told; the DMP's tokens are signed so, and the
    test builder must make them as they are."""

    def check_deprecated_methods(self) -> None:
        return None


SHA256 = "sha256"
SHA1 = "sha1"


def sign_assertion(
    assertion: etree._Element, key: PrivateKeyTypes, chain: Sequence[x509.Certificate], digest: str = SHA256
) -> etree._Element:
    """Enveloped XML-DSig (RSA with `digest`, SHA256 or SHA1; exclusive c14n) of the Assertion by
    its ID. An Issuer still holding the builder's placeholder text is given the signer's DN."""
    if not isinstance(key, RSAPrivateKey):
        raise TypeError(f"a VIHF is signed with RSA: the key must be an RSA key, not {type(key).__name__}")
    issuer = assertion.find(sv.TAG_ISSUER)
    if issuer is not None and issuer.text == ISSUER_PLACEHOLDER and chain:
        issuer.text = dn(chain[0].subject)
    sha1 = digest == SHA1
    signer = (_Sha1Signer if sha1 else XMLSigner)(
        signature_algorithm=SignatureMethod.RSA_SHA1 if sha1 else SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA1 if sha1 else DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    return signer.sign(
        assertion,
        key=key,
        cert=list(chain),
        reference_uri=f"#{assertion.get('ID')}",
        id_attribute="ID",
    )


def security_header(assertion: etree._Element) -> etree._Element:
    from dmp_xds.xds.vocabulary import NS_WSSE

    security = etree.Element(f"{{{NS_WSSE}}}Security", nsmap={"wsse": NS_WSSE})
    security.append(assertion)
    return security
