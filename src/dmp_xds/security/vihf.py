"""The VIHF: the signed SAML 2.0 identity assertion carried in the WS-Security header.

`VihfVerifier.verify(security)` returns a `VihfResult`: the `Principal` it proves, or the
reason it is refused. The order of the checks matters: the signature and its certificate are
verified first, and every later check reads only the element the signature covers (the copy
signxml hands back), never the request's own tree, so that a wrapped or injected element
(XML signature wrapping) can never be what the server believes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
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
from dmp_xds.security.cps import Holder, TrustStore
from dmp_xds.xds.vocabulary import NS_HL7
from dmp_xds.xds.xml import library_parser

ACCEPTED_SIGNATURES = frozenset(
    {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512, SignatureMethod.ECDSA_SHA256}
)
ACCEPTED_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
DEFAULT_CLOCK_SKEW_SECONDS = 120.0
REPLAY_CACHE_SIZE = 100_000
_SPECIALTY = re.compile(r"[A-Z]+[0-9]+")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting, as the VIHF (checked against its certificate) says.

    kind: "professional", "patient", or "representative" (a minor's legal representative).
    `patient_id` is the INS the VIHF is about (CX); the request's patient must be that one.
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
    def profession(self) -> str:
        """The professional's profession code (ANS TRE_G15, e.g. "10" médecin): the VIHF role that
        is a number, where specialties (ANS TRE_R38, e.g. "SM26") are letters then digits."""
        return next((role for role in self.roles if role.isdigit()), "")

    @property
    def specialties(self) -> tuple[str, ...]:
        """The professional's specialty codes (ANS TRE_R38: letters then digits, "SM25")."""
        return tuple(role for role in self.roles if _SPECIALTY.fullmatch(role))

    @property
    def card_type(self) -> str:
        """The type of the card that signed the VIHF (CPS, CPE...; vocabulary.CARD_TYPES), ""
        when no card did (an establishment, a patient portal) or the card does not say."""
        return self.signer.card_type if self.signer.kind == "professional" else ""

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


def _codes(values: Sequence[etree._Element], tag: str) -> list[str]:
    """Codes of HL7 CE attribute values (`<hl7:Role code=.../>`), or their plain text."""
    codes = []
    for value in values:
        coded = value.find(tag)
        code = coded.get("code", "") if coded is not None else (value.text or "").strip()
        if code:
            codes.append(code)
    return codes


class VihfVerifier:
    def __init__(
        self,
        trust: TrustStore,
        audience: str = "",
        clock_skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        replay_cache: ReplayStore | None = None,
        vouching: VouchingRules | None = None,
    ) -> None:
        self.trust = trust
        self.vouching = vouching or VouchingRules()
        self.audience = audience
        self.skew = dt.timedelta(seconds=clock_skew_seconds)
        self.replays: ReplayStore = replay_cache or ReplayCache()
        self._config = SignatureConfiguration(
            require_x509=True,
            location="./",
            expect_references=1,
            signature_methods=ACCEPTED_SIGNATURES,
            digest_algorithms=ACCEPTED_DIGESTS,
        )

    def verify(self, security: etree._Element | None, now: dt.datetime | None = None) -> VihfResult:
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
            return _refuse("the VIHF is not signed")
        chain = _key_info_chain(signature)
        if isinstance(chain, str):
            return _refuse(chain)
        check = self.trust.check(chain, now)
        if check.holder is None:
            return _refuse(f"the VIHF signing certificate is refused: {check.reason}")
        signed = self._verified_copy(assertion, chain[0])
        if isinstance(signed, str):
            return _refuse(signed)
        return self._principal(signed, check.holder, now)

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
            return f"the VIHF signature cannot be checked: {exc}"
        if isinstance(result, list):  # one result per reference: the configuration expects one
            return "the VIHF signature has several references"
        signed = result.signed_xml
        if signed is None or signed.tag != sv.TAG_ASSERTION or signed.get("ID") != assertion_id:
            return "the VIHF signature covers something other than the Assertion (signature wrapping)"
        return signed

    def _principal(self, assertion: etree._Element, signer: Holder, now: dt.datetime) -> VihfResult:
        attributes = _attributes(assertion)
        name_id = (assertion.findtext(f"{sv.TAG_SUBJECT}/{sv.TAG_NAME_ID}") or "").strip()
        patient_id = _text(attributes.get(sv.ATTR_RESOURCE_ID, []))

        def refuse(reason: str) -> VihfResult:
            # The signature verified: what the VIHF claims is what its signer said, worth tracing.
            return VihfResult(None, reason, name_id, patient_id, vouching_structure(signer))

        problem = self._window_problem(assertion, now)
        if problem:
            return refuse(problem)
        roles = tuple(_codes(attributes.get(sv.ATTR_ROLE, []), sv.TAG_HL7_ROLE))
        modes = _codes(attributes.get(sv.ATTR_PURPOSE_OF_USE, []), sv.TAG_HL7_PURPOSE_OF_USE)
        citizen = next((role for role in roles if role in sv.CITIZEN_ROLES), "")
        patient = bool(citizen)
        required = {
            "Subject/NameID": name_id,
            sv.ATTR_ROLE: roles,
            sv.ATTR_PURPOSE_OF_USE: modes,
            sv.ATTR_RESOURCE_ID: patient_id,
            sv.ATTR_LPS_NAME: _text(attributes.get(sv.ATTR_LPS_NAME, [])),
            sv.ATTR_LPS_VERSION: _text(attributes.get(sv.ATTR_LPS_VERSION, [])),
        }
        if not patient:
            required[sv.ATTR_STRUCTURE_ID] = _text(attributes.get(sv.ATTR_STRUCTURE_ID, []))
            required[sv.ATTR_SECTOR] = _text(attributes.get(sv.ATTR_SECTOR, []))
        missing = [name for name, value in required.items() if not value]
        if missing:
            return refuse(f"the VIHF lacks required attribute(s): {', '.join(missing)}")
        mode = modes[0]
        if mode not in sv.ACCESS_MODES:
            return refuse(f"unknown access mode {mode!r} (expected one of {', '.join(sv.ACCESS_MODES)})")
        reason = _text(attributes.get(sv.ATTR_ACCESS_REASON, []))
        if mode == sv.ACCESS_EMERGENCY and not reason:
            return refuse(f"emergency access ({sv.ACCESS_EMERGENCY}) requires a reason ({sv.ATTR_ACCESS_REASON})")
        structure = _text(attributes.get(sv.ATTR_STRUCTURE_ID, []))
        problem = signer_problem(name_id, citizen, patient_id, structure, signer, self.vouching)
        if problem:
            return refuse(problem)
        auth_mode = next((_text(attributes[n]) for n in sv.ATTR_AUTHENTICATION_MODE_ALIASES if n in attributes), "")
        principal = Principal(
            kind={sv.PATIENT_ROLE: "patient", sv.REPRESENTATIVE_ROLE: "representative"}.get(citizen, "professional"),
            user_id=name_id,
            name=_text(attributes.get(sv.ATTR_SUBJECT_ID, [])) or signer.display_name,
            roles=roles,
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
        )
        expires = _parse_time(assertion.find(sv.TAG_CONDITIONS).get("NotOnOrAfter"))
        assert expires is not None  # checked by _window_problem
        if not self.replays.first_use(principal.assertion_id, (expires + self.skew).timestamp(), now.timestamp()):
            return refuse(f"the VIHF {principal.assertion_id} was already used (replay): send a fresh assertion")
        return VihfResult(principal)

    def _window_problem(self, assertion: etree._Element, now: dt.datetime) -> str:
        conditions = assertion.find(sv.TAG_CONDITIONS)
        if conditions is None:
            return "the VIHF has no Conditions (validity window)"
        not_before = _parse_time(conditions.get("NotBefore"))
        not_after = _parse_time(conditions.get("NotOnOrAfter"))
        if not_before is None or not_after is None:
            return "the VIHF Conditions need NotBefore and NotOnOrAfter"
        if now + self.skew < not_before:
            return f"the VIHF is not valid yet (NotBefore {conditions.get('NotBefore')})"
        if now - self.skew >= not_after:
            return f"the VIHF has expired (NotOnOrAfter {conditions.get('NotOnOrAfter')})"
        issued = _parse_time(assertion.get("IssueInstant"))
        if issued is not None and issued > now + self.skew:
            return f"the VIHF was issued in the future (IssueInstant {assertion.get('IssueInstant')})"
        if self.audience:
            audiences = [
                (a.text or "").strip() for a in conditions.iterfind(f"{sv.TAG_AUDIENCE_RESTRICTION}/{sv.TAG_AUDIENCE}")
            ]
            if self.audience not in audiences:
                return f"the VIHF is not meant for this server (audience {self.audience!r} not in {audiences})"
        return ""


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
    authentication_mode: str = sv.AUTHENTICATION_DIRECT
    specialty: str = ""  # a second role: the professional's specialty (ANS TRE_R38, e.g. SM26)


def build_assertion(
    claims: VihfClaims,
    now: dt.datetime | None = None,
    lifetime_seconds: float = 300.0,
    assertion_id: str | None = None,
    issuer: str = "",
) -> etree._Element:
    """An unsigned VIHF (see `sign_assertion`)."""
    now = now or dt.datetime.now(dt.UTC)

    def stamp(t: dt.datetime) -> str:
        return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    nsmap = {"saml2": sv.NS_SAML, "hl7": NS_HL7, "xsi": sv.NS_XSI}
    assertion = etree.Element(
        sv.TAG_ASSERTION, nsmap=nsmap, ID=assertion_id or f"_{uuid.uuid4()}", IssueInstant=stamp(now), Version="2.0"
    )
    etree.SubElement(assertion, sv.TAG_ISSUER, Format=sv.ISSUER_FORMAT_X509).text = issuer or "dmp-xds test"
    etree.SubElement(assertion, sv.TAG_SIGNATURE, nsmap={"ds": sv.NS_DS}, Id="placeholder")
    subject = etree.SubElement(assertion, sv.TAG_SUBJECT)
    etree.SubElement(subject, sv.TAG_NAME_ID).text = claims.user_id
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
    etree.SubElement(context, sv.TAG_AUTHN_CONTEXT_CLASS_REF).text = sv.AUTHN_CONTEXT_SMARTCARD
    statement = etree.SubElement(assertion, sv.TAG_ATTRIBUTE_STATEMENT)

    def attribute(name: str, value: str | etree._Element) -> None:
        if value == "":
            return
        element = etree.SubElement(etree.SubElement(statement, sv.TAG_ATTRIBUTE, Name=name), sv.TAG_ATTRIBUTE_VALUE)
        if isinstance(value, str):
            element.text = value
        else:
            element.append(value)

    patient = claims.role in sv.CITIZEN_ROLES
    role_system = sv.PATIENT_ROLE_SYSTEM if patient else sv.PROFESSION_SYSTEM
    role = etree.Element(
        sv.TAG_HL7_ROLE,
        code=claims.role,
        codeSystem=role_system,
        displayName=sv.PROFESSIONS.get(claims.role, claims.role),
    )
    role.set(f"{{{sv.NS_XSI}}}type", "CE")
    purpose = etree.Element(
        sv.TAG_HL7_PURPOSE_OF_USE,
        code=claims.access_mode,
        codeSystem=sv.ACCESS_MODE_SYSTEM,
        codeSystemName=sv.ACCESS_MODE_SYSTEM_NAME,
        displayName=sv.ACCESS_MODES.get(claims.access_mode, claims.access_mode),
    )
    purpose.set(f"{{{sv.NS_XSI}}}type", "CE")
    attribute(sv.ATTR_VIHF_VERSION, sv.VIHF_VERSION)
    attribute(sv.ATTR_AUTHENTICATION_MODE, claims.authentication_mode)
    attribute(sv.ATTR_SUBJECT_ID, claims.name)
    attribute(sv.ATTR_ROLE, role)
    if claims.specialty:
        specialty = etree.Element(sv.TAG_HL7_ROLE, code=claims.specialty, codeSystem=sv.SPECIALTY_SYSTEM)
        specialty.set(f"{{{sv.NS_XSI}}}type", "CE")
        statement[-1].append(etree.Element(sv.TAG_ATTRIBUTE_VALUE))
        statement[-1][-1].append(specialty)
    if claims.structure_id:
        attribute(sv.ATTR_STRUCTURE_ID, claims.structure_id)
    if claims.sector and not patient:
        attribute(sv.ATTR_SECTOR, f"{claims.sector}^{sv.SECTOR_SYSTEM}")
    attribute(sv.ATTR_RESOURCE_ID, claims.patient_id)
    attribute(sv.ATTR_RESOURCE_URN, sv.RESOURCE_URN_DMP)
    attribute(sv.ATTR_PURPOSE_OF_USE, purpose)
    attribute(sv.ATTR_ACCESS_REASON, claims.access_reason)
    attribute(sv.ATTR_LPS_NAME, claims.lps_name)
    attribute(sv.ATTR_LPS_VERSION, claims.lps_version)
    return assertion


def sign_assertion(
    assertion: etree._Element, key: PrivateKeyTypes, chain: Sequence[x509.Certificate]
) -> etree._Element:
    """Enveloped XML-DSig (RSA-SHA256, exclusive c14n) of the Assertion by its ID."""
    if not isinstance(key, RSAPrivateKey):
        raise TypeError(f"a VIHF is signed with RSA-SHA256: the key must be an RSA key, not {type(key).__name__}")
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
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
