"""The HTTP front: an ASGI application served by uvicorn.

It reads request bodies as a stream (MTOM parts go straight to temporary files), refuses what is
too large or of the wrong type before parsing it, runs the SOAP dispatch in a thread pool (the
core is synchronous), and streams MTOM responses from the document files.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmp_xds.config import ConfigError, Settings, load_settings, resolve, resource_dir
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.validation.validators import load_validators
from dmp_xds.services.context import Services
from dmp_xds.storage.blobstore import BlobStoreError
from dmp_xds.storage.database import open_database
from dmp_xds.storage.document_store import open_blob_store
from dmp_xds.storage.store import RegistryStore
from dmp_xds.transport import health
from dmp_xds.transport.http_protocol import GuardedHttpToolsProtocol
from dmp_xds.transport.security import build_security, client_chain
from dmp_xds.transport.soap.envelope import SoapRequest, read_request, response_envelope
from dmp_xds.transport.soap.faults import SoapFault, receiver, render_fault, sender
from dmp_xds.transport.soap.mtom import (
    SOAP12_CONTENT_TYPE,
    XOP_CONTENT_TYPE,
    ContentType,
    MtomReceiver,
    OutgoingPart,
    encode_mtom,
)
from dmp_xds.transport.soap.patients import GDP_ENDPOINT, PDQ_ENDPOINT
from dmp_xds.transport.soap.service import SoapDispatcher, build_dispatchers
from dmp_xds.transport.web.app import WebApplication
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.xml import UnsafeXmlError, parse_bytes, to_bytes
from dmp_xds.xds.xop import Attachment

log = logging.getLogger("dmp_xds.transport.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# The national DMP's own base path: a DMP-compatible software changes only its host to use us.
DMPI_SERVICES = "/si-dmp-server/v2/services/"
ENDPOINTS = {
    "/xds/repository": "repository",
    "/xds/registry": "registry",
    DMPI_SERVICES + "repository": "repository",
    DMPI_SERVICES + "registry": "registry",
    DMPI_SERVICES + "patients": GDP_ENDPOINT,
    DMPI_SERVICES + "patientsPDQ": PDQ_ENDPOINT,
    DMPI_SERVICES + cv.HABILITATIONS_ENDPOINT: cv.HABILITATIONS_ENDPOINT,
    DMPI_SERVICES + cv.PATIENTS_SPECIFIC_ENDPOINT: cv.PATIENTS_SPECIFIC_ENDPOINT,
    DMPI_SERVICES + cv.PATIENT_CERTIF_ENDPOINT: cv.PATIENT_CERTIF_ENDPOINT,
}
# The reply actions the DMP's WSDLs give where IHE's rule (request action + "Response") does not.
DMPI_RESPONSE_ACTIONS = {v.ACTION_ITI57: v.ACTION_ITI57_DMP_RESPONSE}
WSDL_FILES = {
    "repository": "XDS.b_DocumentRepository.wsdl",
    "registry": "XDS.b_DocumentRegistry.wsdl",
    GDP_ENDPOINT: "DMP_GestionDossierPatientPartage.wsdl",
    PDQ_ENDPOINT: "DMP_PDQSupplier.wsdl",
    cv.HABILITATIONS_ENDPOINT: "Habilitations.wsdl",
    cv.PATIENTS_SPECIFIC_ENDPOINT: "PatientsSpecific.wsdl",
    cv.PATIENT_CERTIF_ENDPOINT: "patientCertif.wsdl",
}
# The DMP's CXF services are called without WS-Addressing by the DMP's own kit (the action in the
# HTTP Content-Type, or none): there, a missing Action header is no fault. Under either profile:
# these endpoints exist for DMP software only, no IHE transaction is concerned.
CXF_ENDPOINTS = frozenset(cv.ENDPOINT_OPERATIONS)
# Where the WSDL and XSD files are served: an endpoint's `?wsdl` imports `schemas/...` relative
# to its own URL, so each endpoint prefix serves them.
STATIC_PREFIXES = ("/xds/", DMPI_SERVICES)
SOAP11_CONTENT_TYPE = "text/xml"
# The soap12:address of our WSDL files, replaced by the URL the endpoint's `?wsdl` was asked at
# (one WSDL serves both /xds/registry and the DMP's path).
WSDL_ADDRESS = re.compile(r'(<soap12:address\s+location=)"https?://[^"]+"')


@dataclass
class Received:
    """A request body once read: the SOAP envelope bytes and the MTOM attachments, if any."""

    envelope: bytes
    attachments: dict[str, Attachment]
    mtom: bool
    # The action the transport names (Content-Type `action`, of the MTOM root part or the
    # message, else the SOAPAction header): used only when the envelope has no wsa:Action.
    action_hint: str = ""


def open_services(settings: Settings, migrate: bool) -> Services:
    """Connect to the database (migrating it if asked) and the document store; load the value
    sets and compile the CDA schema (once: every request then uses them)."""
    settings = resolve(settings)
    engine = open_database(settings.database_url, migrate)
    try:
        validators = load_validators(settings)
    except ConfigError as exc:
        # A start-up error, not a traceback: the message names the setting to fix.
        raise SystemExit(f"dmp-xds: {exc}") from None
    try:
        security = build_security(settings, engine)
    except ConfigError as exc:
        raise SystemExit(f"dmp-xds: {exc}") from None
    try:
        blobs = open_blob_store(settings)
        blobs.check()
    except (ConfigError, BlobStoreError) as exc:
        raise SystemExit(f"dmp-xds: documents: {exc}") from None
    blobs.clean_temporary()
    return Services(settings, RegistryStore(engine), blobs, validators, security)


class XdsApplication:
    def __init__(self, services: Services, workers: int = 8) -> None:
        self.services = services
        self.settings = services.settings
        # The DMP's own TD2.1 (ITI-41) request is a SOAP 1.1 envelope: the CI-SIS profile reads it
        # and answers SOAP 1.2, as the DMP does; plain IHE keeps XDS.b's SOAP 1.2 only.
        self._accept_soap11 = services.settings.profile == "cisis"
        self.dispatchers: dict[str, SoapDispatcher] = build_dispatchers()
        self.wsdl_dir = resource_dir("wsdl")
        self.schemas_dir = resource_dir("schemas")
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xds")
        # The web front: every path the SOAP side does not own (its pages run in the same pool).
        self.web = WebApplication(services, self.executor, self._client_chain)
        self.readiness = health.Readiness(services.registry.engine, services.blobs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        if path in ENDPOINTS and method == "POST":
            await self._soap(ENDPOINTS[path], scope, receive, send)
        elif path in ENDPOINTS and method == "GET" and query.lower() == "wsdl":
            await _respond(send, 200, "text/xml; charset=UTF-8", self._endpoint_wsdl(path, scope))
        elif path.startswith(tuple(p + "wsdl/" for p in STATIC_PREFIXES)) and method == "GET":
            await self._static(self.wsdl_dir / path.split("/wsdl/", 1)[1], self.wsdl_dir, send)
        elif path.startswith(tuple(p + "schemas/" for p in STATIC_PREFIXES)) and method == "GET":
            await self._static(self.schemas_dir / path.split("/schemas/", 1)[1], self.schemas_dir, send)
        elif path in health.PATHS:
            await self._health(path, method, send)
        elif path in ENDPOINTS:
            await _respond(
                send, 405, "text/plain", b"POST a SOAP 1.2 request, or GET ?wsdl\n", [(b"allow", b"GET, POST")]
            )
        else:
            await self.web(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=True)
                self.readiness.close()
                if self.services.security is not None:
                    self.services.security.audit.close()  # the last rows checkpointed and exported
                    self.services.security.notifier.close()  # e-mails not sent stay owed in the database
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _health(self, path: str, method: str, send: Send) -> None:
        """Liveness and readiness for a load balancer (transport/health.py): before the web
        front, so no session, no client certificate and no trace is involved."""
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, "text/plain", b"GET or HEAD\n", [(b"allow", b"GET, HEAD")])
            return
        if path == health.READY_PATH:
            status, body = await self.readiness.check()
        else:
            status, body = 200, health.body("ok")
        await _respond(send, status, "application/json", body, [(b"cache-control", b"no-store")], method == "HEAD")

    def _endpoint_wsdl(self, path: str, scope: Scope) -> bytes:
        """The WSDL of an endpoint as served at `<endpoint>?wsdl`: its schema imports made
        relative to that URL (`/xds/schemas/...`) and its address the URL the client used."""
        text = (self.wsdl_dir / WSDL_FILES[ENDPOINTS[path]]).read_text(encoding="utf-8")
        text = text.replace('schemaLocation="../schemas/', 'schemaLocation="schemas/')
        host = next(
            (v_.decode("latin-1") for k, v_ in scope["headers"] if k == b"host"),
            f"{self.settings.host}:{self.settings.port}",
        )
        scheme = scope.get("scheme", "http")
        text = WSDL_ADDRESS.sub(lambda m: f'{m.group(1)}"{scheme}://{host}{path}"', text)
        return text.encode("utf-8")

    async def _static(self, file: Path, root: Path, send: Send) -> None:
        resolved = file.resolve()
        if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
            await _respond(send, 404, "text/plain", b"not found\n")
            return
        content_type = (
            "text/xml"
            if resolved.suffix in (".wsdl", ".xsd")
            else (mimetypes.guess_type(resolved.name)[0] or "application/octet-stream")
        )
        await _respond(send, 200, content_type, resolved.read_bytes())

    # -- SOAP ------------------------------------------------------------------------------
    async def _soap(self, endpoint: str, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        received: Received | None = None
        receiver_state: MtomReceiver | None = None
        request: SoapRequest | None = None
        try:
            headers = {k.decode("latin-1").lower(): v_.decode("latin-1") for k, v_ in scope["headers"]}
            content_type = ContentType.parse(headers.get("content-type"))
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.settings.max_request_bytes:
                raise sender(
                    f"the request body ({length} bytes) is over the limit of {self.settings.max_request_bytes} bytes",
                    http_status=413,
                )
            if content_type.media_type == "multipart/related":
                receiver_state = self._mtom_receiver(content_type)
            try:
                # asyncio.timeout, not wait_for: no task of its own per request.
                async with asyncio.timeout(self.settings.request_timeout_seconds):
                    received = await self._read_body(receive, content_type, receiver_state)
            except TimeoutError:
                raise sender("the request body was not received in time", http_status=408) from None
            received.action_hint = received.action_hint or headers.get("soapaction", "")
            chain = self._client_chain(scope, headers)
            # At the DMP's own paths, under the CI-SIS profile, replies are named as the DMP names them.
            dmpi = self._accept_soap11 and scope["path"].startswith(DMPI_SERVICES)
            request, status, content_type_out, body = await loop.run_in_executor(
                self.executor, self._process, endpoint, received, chain, dmpi
            )
            await self._send_response(send, status, content_type_out, body)
        except SoapFault as fault:
            await _respond(
                send,
                fault.http_status,
                SOAP12_CONTENT_TYPE + "; charset=UTF-8",
                render_fault(fault, request.message_id if request else None),
            )
        finally:
            if receiver_state is not None:
                receiver_state.discard(self.services.blobs)

    def _mtom_receiver(self, content_type: ContentType) -> MtomReceiver:
        declared = content_type.params.get("type", "").lower()
        if declared != XOP_CONTENT_TYPE:
            raise sender(
                f'multipart/related requests must be MTOM (type="{XOP_CONTENT_TYPE}"), not type={declared or "(none)"}',
                http_status=415,
            )
        return MtomReceiver(content_type, self.services.blobs, self.settings.max_xml_bytes)

    async def _read_body(self, receive: Receive, content_type: ContentType, mtom: MtomReceiver | None) -> Received:
        limit = self.settings.max_request_bytes
        if mtom is None and content_type.media_type not in (SOAP12_CONTENT_TYPE, SOAP11_CONTENT_TYPE):
            raise sender(
                f"content type {content_type.media_type or '(none)'} is not accepted: send "
                f"{SOAP12_CONTENT_TYPE} or MTOM multipart/related",
                http_status=415,
            )
        xml_limit = self.settings.max_xml_bytes
        buffer = bytearray()
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise sender("the client closed the connection before the body was complete")
            chunk: bytes = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise sender(f"the request body is over the limit of {limit} bytes", http_status=413)
            if mtom is not None:
                mtom.feed(chunk)
            else:
                if total > xml_limit:
                    raise sender(
                        f"the SOAP envelope is over the limit of {xml_limit} bytes (send large documents with MTOM)",
                        http_status=413,
                    )
                buffer += chunk
            if not message.get("more_body", False):
                break
        if mtom is not None:
            message_ = mtom.finish()
            hint = message_.root_content_type.params.get("action") or content_type.params.get("action", "")
            return Received(message_.root, dict(message_.attachments), mtom=True, action_hint=hint)
        if content_type.media_type == SOAP11_CONTENT_TYPE and not self._accept_soap11:
            raise SoapFault(
                "VersionMismatch",
                f"SOAP 1.1 (text/xml) is not accepted: XDS.b requires SOAP 1.2 ({SOAP12_CONTENT_TYPE})",
            )
        return Received(bytes(buffer), {}, mtom=False, action_hint=content_type.params.get("action", ""))

    def _client_chain(self, scope: Scope, headers: dict[str, str]) -> list[Any] | None:
        """The client certificate chain: from the TLS hook (`tls` scope extension, see
        TlsHttpToolsProtocol) or from a trusted reverse proxy's header; None if there is none."""
        security = self.services.security
        if security is None:
            return None
        tls = scope.get("extensions", {}).get("tls", {})
        peer = scope.get("client")
        try:
            return client_chain(security, tls.get("client_cert_chain"), headers, peer[0] if peer else None)
        except Exception:  # an unreadable certificate is no certificate; the gate says so
            return []

    def _process(
        self, endpoint: str, received: Received, chain: list[Any] | None = None, dmpi: bool = False
    ) -> tuple[SoapRequest | None, int, str, Any]:
        """Parse, dispatch and encode; runs in the thread pool."""
        try:
            envelope = parse_bytes(received.envelope)
        except UnsafeXmlError as exc:
            raise sender(f"the request is not acceptable XML: {exc}") from None
        # The CI-SIS profile takes requests as the DMP's own clients send them: SOAP 1.1 (TD2.1),
        # and no WS-Addressing at all (the official kit); plain IHE keeps the letter of XDS.b.
        without_addressing = self._accept_soap11 or endpoint in CXF_ENDPOINTS
        dispatcher = self.dispatchers[endpoint]
        request = read_request(
            envelope, self._accept_soap11, without_addressing, received.action_hint, dispatcher.roots
        )
        try:
            result = dispatcher.dispatch(self.services, request, received.attachments, chain)
        except SoapFault as fault:
            return (
                request,
                fault.http_status,
                SOAP12_CONTENT_TYPE + "; charset=UTF-8",
                render_fault(fault, request.message_id),
            )
        except Exception:
            log.exception("unexpected error while dispatching")
            internal = receiver("internal server error")
            return request, 500, SOAP12_CONTENT_TYPE + "; charset=UTF-8", render_fault(internal, request.message_id)
        action = (
            result.response_action
            or (DMPI_RESPONSE_ACTIONS.get(request.action, "") if dmpi else "")
            or v.response_action(request.action)
        )
        out = to_bytes(response_envelope(result.payload, action, request.message_id))
        if not received.mtom and not result.documents:
            return request, 200, f'{SOAP12_CONTENT_TYPE}; charset=UTF-8; action="{action}"', out
        parts = [OutgoingPart(d.content_id, d.content_type, d.size, d.chunks) for d in result.documents]
        mtom = encode_mtom(out, parts)
        whole = mtom.in_memory()
        return request, 200, mtom.content_type, whole if whole is not None else mtom

    async def _send_response(self, send: Send, status: int, content_type: str, body: Any) -> None:
        if isinstance(body, bytes):
            await _respond(send, status, content_type, body)
            return
        loop = asyncio.get_running_loop()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode("latin-1")),
                    (b"content-length", str(body.content_length).encode()),
                    (b"mime-version", b"1.0"),
                ],
            }
        )
        chunks: Iterator[bytes] = body.chunks()
        while True:
            chunk = await loop.run_in_executor(self.executor, next, chunks, None)
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _respond(
    send: Send,
    status: int,
    content_type: str,
    body: bytes,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    head: bool = False,
) -> None:
    """The whole response; to a HEAD request, its headers only (the length of the GET's body)."""
    headers = [(b"content-type", content_type.encode("latin-1")), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})


def create_app(settings: Settings | None = None, migrate: bool = False) -> XdsApplication:
    settings = settings or load_settings()
    return XdsApplication(open_services(settings, migrate))


def app_from_environment() -> XdsApplication:
    """The factory each uvicorn worker process calls: settings from `DMP_XDS_*` (already
    resolved and the database already migrated by the parent process); the connection limits of
    the worker's protocol come from the same settings."""
    settings = load_settings()
    GuardedHttpToolsProtocol.configure(settings)
    return create_app(settings, migrate=False)


def endpoint_urls(settings: Settings) -> dict[str, str]:
    scheme = "https" if settings.tls_certificate else "http"
    base = f"{scheme}://{settings.host}:{settings.port}"
    return {name: base + path for path, name in ENDPOINTS.items() if not path.startswith(DMPI_SERVICES)}


def web_urls(settings: Settings) -> dict[str, str]:
    """The web front's spaces, as `serve` prints them."""
    scheme = "https" if settings.tls_certificate else "http"
    base = f"{scheme}://{settings.host}:{settings.port}"
    return {
        "home": base + "/",
        "patient": base + "/patient/connexion",
        "professional": base + "/AccesDirect/TableauDeBord",
        "establishment": base + "/etablissement/connexion",
    }


def health_urls(settings: Settings) -> dict[str, str]:
    """Where a load balancer checks this process (transport/health.py)."""
    scheme = "https" if settings.tls_certificate else "http"
    base = f"{scheme}://{settings.host}:{settings.port}"
    return {"liveness": base + health.LIVE_PATH, "readiness": base + health.READY_PATH}


def dmpi_urls(settings: Settings) -> dict[str, str]:
    """The DMP's services as an LPS configures them: its base URL plus the service's sub-path."""
    scheme = "https" if settings.tls_certificate else "http"
    base = f"{scheme}://{settings.host}:{settings.port}"
    return {path.removeprefix(DMPI_SERVICES): base + path for path in ENDPOINTS if path.startswith(DMPI_SERVICES)}
