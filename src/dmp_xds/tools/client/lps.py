"""The client as a DMP-compatible LPS: where the DMP's services are, and who calls them.

An LPS reaches the DMP at one base URL, `https://<host>/si-dmp-server/v2/services/`, each service
at a sub-path of it (`registry`, `repository`); our own paths (`/xds/registry`...) serve the same
transactions. Every call goes over TLS with a client certificate (the professional's card in
direct mode, the establishment's certificate in indirect mode) and carries a VIHF about the
patient of the call. Who calls is an identity of a test PKI (`dmp-xds pki init DIR`), acted
exactly as the conformance runner acts its steps' `<Identity>` (tools/conformance/identity.py):
one place builds the credentials of both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from dmp_xds.dmp.submission_signature import sign_submission_objects
from dmp_xds.security import vocabulary as sv
from dmp_xds.tools.conformance.identity import DEFAULT_IDENTITY, Credentials, Identities, StepIdentity

DMPI_SERVICES_PATH = "/si-dmp-server/v2/services"  # the DMP's base path; its services are sub-paths
DMPI_REGISTRY = "registry"
DMPI_REPOSITORY = "repository"
LOCAL_URL = "http://127.0.0.1:8080"  # `make serve` with DMP_XDS_AUTH=none
LOCAL_DMP_URL = "https://127.0.0.1:8080" + DMPI_SERVICES_PATH + "/"  # `make serve`, secured (the default)
DEFAULT_ESTABLISHMENT = "hospital"  # the test PKI's establishment, which vouches for its staff
MODE_DIRECT = "direct"
MODE_INDIRECT = "indirect"


@dataclass(frozen=True)
class ServiceUrls:
    registry: str
    repository: str


def service_urls(base_url: str) -> ServiceUrls:
    """The registry and repository endpoints under `base_url`: the DMP's sub-paths when it is a
    DMP base (`…/services/`), else this server's `/xds/` paths (`https://host:port`)."""
    base = base_url.rstrip("/")
    if base.endswith("/services"):
        return ServiceUrls(f"{base}/{DMPI_REGISTRY}", f"{base}/{DMPI_REPOSITORY}")
    return ServiceUrls(base + "/xds/registry", base + "/xds/repository")


class MissingPatient(ValueError):
    """A secured call without a patient: the DMP needs one in every VIHF."""


class CredentialsError(ValueError):
    """The identity's certificate or key cannot be used (missing, unreadable, password-protected)."""


@dataclass(frozen=True)
class Caller:
    """Who the client is: an identity of a test PKI, its mode and access mode, and the CA bundle
    the server's certificate must chain to."""

    identities: Identities
    identity: StepIdentity
    verify: str

    @classmethod
    def load(
        cls,
        pki_dir: Path,
        identity: str = DEFAULT_IDENTITY,
        mode: str = MODE_DIRECT,
        establishment: str = DEFAULT_ESTABLISHMENT,
        access_mode: str = sv.ACCESS_NORMAL,
        reason: str = "",
        audience: str = "",
        cacert: Path | None = None,
    ) -> Caller:
        """Raises ValueError, saying why, for a folder that is no test PKI, an identity or an
        establishment it does not hold, or an unknown access mode."""
        if mode not in (MODE_DIRECT, MODE_INDIRECT):
            raise ValueError(f"mode {mode!r}: expected {MODE_DIRECT} or {MODE_INDIRECT}")
        if access_mode not in sv.ACCESS_MODES:
            raise ValueError(f"access mode {access_mode!r}: expected one of {', '.join(sv.ACCESS_MODES)}")
        if access_mode == sv.ACCESS_EMERGENCY and not reason.strip():
            raise ValueError("break-glass access (bris_de_glace) needs its reason: give --reason")
        identities = Identities.load(pki_dir, identity, audience)
        signer = establishment if mode == MODE_INDIRECT else ""
        step = StepIdentity(identity, signer, access_mode, reason)
        identities.check(step)
        if mode == MODE_INDIRECT and identities.pki.identity(establishment).kind != "establishment":
            raise ValueError(f"{establishment!r} is not an establishment of {pki_dir} (see identities.json)")
        if mode == MODE_DIRECT and identity != "patient" and identities.pki.identity(identity).kind != "card":
            raise ValueError(f"{identity!r} holds no card: direct mode needs a card (or use --mode indirect)")
        return cls(identities, step, str(cacert) if cacert else str(identities.pki.anchors))

    def credentials(self, patient_id: str) -> Credentials:
        """A fresh VIHF about `patient_id` and the TLS client certificate that goes with it."""
        if not patient_id.strip():
            raise MissingPatient("the DMP needs the patient in every VIHF: give --patient")
        with self.card_errors():
            return self.identities.credentials(self.identity, patient_id.strip())

    def sign_submission(self, request: etree._Element, documents: dict[str, bytes]) -> dict[str, bytes]:
        """The DMP's XAdES signature of the submission set (TD2.1), made with the signing key of
        the caller's card (direct mode) or establishment (indirect mode), added to `request`;
        the documents to send, the signature's included."""
        with self.card_errors():
            key, chain = self.identities.signing_key(self.identity)
        signature_id, data = sign_submission_objects(request, documents, key, chain)
        return {**documents, signature_id: data}

    @contextmanager
    def card_errors(self) -> Iterator[None]:
        """Reading the identity's certificate or key (its card's): a failure as a CredentialsError."""
        try:
            yield
        except TypeError as exc:  # what cryptography raises for an encrypted key read without a password
            raise CredentialsError(
                f"the private key of {self.identity.signer or self.identity.name} is password-protected: "
                f"this client reads the test PKI's keys, which are not ({exc})"
            ) from exc
        except (OSError, ValueError) as exc:
            raise CredentialsError(f"cannot act as {self.identity}: {exc}") from exc

    def __str__(self) -> str:
        return str(self.identity)
