"""The web front's ASGI application, mounted by transport/serve.py for every path the SOAP side
does not own: static assets, then the pages of the router, each run in the server's thread pool
(the core is synchronous) with the session of its cookie, the CSRF and origin checks of unsafe
requests, the security headers, and a French error page for every refusal (never a stack trace).
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor
from typing import Any

from dmp_xds.services.context import Services
from dmp_xds.services.web_signin import SignInRefused, WebAuth, current_session
from dmp_xds.storage import trail as t
from dmp_xds.storage.blobstore import BlobStoreError
from dmp_xds.storage.patient_accounts import PatientAccountStore, RepresentativeAccountStore
from dmp_xds.storage.trail import AuditEvent
from dmp_xds.storage.web import WebStore
from dmp_xds.transport.web import establishment, home, patient, patient_pages, professional
from dmp_xds.transport.web.body import discard_files, read_body
from dmp_xds.transport.web.http import (
    HttpError,
    Request,
    Response,
    headers_of,
    parse_cookies,
    parse_query,
    redirect,
)
from dmp_xds.transport.web.protect import CSRF_FIELD, csrf_ok, same_origin, security_headers
from dmp_xds.transport.web.senders import code_senders
from dmp_xds.transport.web.site import SESSION_COOKIE, STATIC_DIR, STATIC_PREFIX, Redirect, Web, templates

log = logging.getLogger("dmp_xds.transport.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ChainReader = Callable[[Scope, dict[str, str]], list[Any] | None]


class WebApplication:
    def __init__(self, services: Services, executor: Executor, chain_of: ChainReader) -> None:
        auth = None
        if services.security is not None:
            engine = services.registry.engine
            auth = WebAuth(
                services.settings,
                WebStore(engine),
                PatientAccountStore(engine),
                RepresentativeAccountStore(engine),
                services.security,
                code_senders(services.settings),
            )
        self.web = Web(services, auth, templates())
        self.settings = services.settings
        self.executor = executor
        self.chain_of = chain_of
        for module in (home, patient, patient_pages, professional, establishment):
            module.register(self.web)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        peer = scope.get("client")
        tls = scope.get("scheme") == "https" or self._proxied_tls(scope, peer[0] if peer else None)
        if path.startswith(STATIC_PREFIX) and method in ("GET", "HEAD"):
            await self._static(path.removeprefix(STATIC_PREFIX), tls, method == "HEAD", send)
            return
        headers = headers_of(scope["headers"])
        request = Request(
            method,
            path,
            parse_query(scope.get("query_string", b"").decode("latin-1")),
            headers,
            parse_cookies(headers.get("cookie", "")),
            peer[0] if peer else "",
            tls,
        )
        response: Response
        try:
            # An unknown path or method is answered before any body is read.
            self.web.router.match(method, path)
            if not request.safe:
                try:
                    async with asyncio.timeout(self.settings.request_timeout_seconds):
                        request.form, request.files = await read_body(
                            receive,
                            headers,
                            self.settings.web_max_form_bytes,
                            self.settings.web_max_upload_bytes,
                            self.settings.data_dir / "web-uploads",
                        )
                except TimeoutError:
                    raise HttpError(408, "L'envoi n'a pas été reçu à temps.") from None
            request.chain = self.chain_of(scope, headers)
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self.executor, self.handle, request)
        except HttpError as exc:
            response = self.web.error_page(request, exc.status, exc.reason)
            if exc.allow:
                response.headers.append(("allow", exc.allow))
        finally:
            discard_files(request.files)
        await self._send(send, request, response)

    def _proxied_tls(self, scope: Scope, peer: str | None) -> bool:
        """Behind a trusted reverse proxy that ends TLS (DMP_XDS_TRUSTED_PROXIES), its
        X-Forwarded-Proto says whether the browser's connection is HTTPS: the cookie is then
        Secure, HSTS is sent and the origin check expects https."""
        security = self.web.services.security
        if security is None or peer is None or peer not in security.trusted_proxies:
            return False
        forwarded = next((v for k, v in scope["headers"] if k == b"x-forwarded-proto"), b"")
        return forwarded.decode("latin-1").strip().lower() == "https"

    def handle(self, request: Request) -> Response:
        """Session, checks, route, page; in the thread pool."""
        web = self.web
        try:
            if web.auth is not None:
                token = request.cookies.get(web.cookie_name(request, SESSION_COOKIE), "")
                request.session = current_session(web.auth, token, web.now())
            handler, request.params = web.router.match(request.method, request.path)
            if not request.safe:
                self._check_forgery(request)
            previous = request.session
            response = handler(request)
            if request.issued_token:
                web.sign_in(request, response, request.issued_token, previous)
            return response
        except Redirect as move:
            return redirect(move.location)
        except HttpError as exc:
            response = web.error_page(request, exc.status, exc.reason)
            if exc.allow:
                response.headers.append(("allow", exc.allow))
            return response
        except SignInRefused as refused:
            return web.error_page(request, refused.status, refused.message)
        except BlobStoreError as exc:
            log.error("web page %s %s: %s", request.method, request.path, exc)
            return web.error_page(
                request,
                503,
                "Le document ne peut pas être lu pour le moment : le stockage des documents ne répond pas. "
                "Réessayez dans quelques minutes.",
            )
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("web page %s %s failed (reference %s)", request.method, request.path, reference)
            return web.error_page(
                request, 500, f"Une erreur inattendue s'est produite. Référence à donner au support : {reference}."
            )

    def _check_forgery(self, request: Request) -> None:
        """An unsafe request must come from our own page (Origin or Referer) and, once signed in,
        carry the session's CSRF token; otherwise nothing is done, and the attempt is traced."""
        scheme = "https" if request.tls else "http"
        session = request.session
        problem = ""
        if not same_origin(request.headers, scheme):
            problem = f"the request does not come from this site (Origin {request.headers.get('origin', '-')!r})"
        elif session is not None and not csrf_ok(session.csrf_token, request.field(CSRF_FIELD)):
            problem = "missing or foreign CSRF token"
        if not problem:
            return
        if self.web.auth is not None:
            self.web.auth.security.audit.append(
                AuditEvent(
                    t.WEB_FORGED_REQUEST,
                    t.DENIED,
                    session.acting_for if session else "",
                    actor_id=session.subject_id if session else "",
                    actor_name=session.display_name if session else "",
                    structure_id=session.structure_id if session else "",
                    detail=f"{request.method} {request.path} from {request.client}: {problem}",
                )
            )
        raise HttpError(403, "Cette demande n'a pas été faite depuis une page de ce site : rien n'a été modifié.")

    async def _send(self, send: Send, request: Request, response: Response) -> None:
        try:
            if response.file is not None:
                size = response.file.stat().st_size
            elif response.stream is not None:
                size = response.stream_size
            else:
                size = len(response.body)
            # A response with a policy of its own (a document served inline, sandboxed) keeps it
            # alone: the pages' one, written for HTML pages, is not the one that document needs.
            own_policy = any(k == "content-security-policy" for k, _ in response.headers)
            protections = security_headers(
                request.tls, request.session is not None or request.path.startswith(PRIVATE_PREFIXES)
            )
            headers = [
                ("content-type", response.content_type),
                ("content-length", str(size)),
                *response.headers,
                *(h for h in protections if not (own_policy and h[0] == "content-security-policy")),
            ]
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
                }
            )
            loop = asyncio.get_running_loop()
            if response.stream is not None and request.method != "HEAD":
                # A store failing now cannot change the answer begun: the connection is cut short.
                while (chunk := await loop.run_in_executor(self.executor, next, response.stream, b"")) != b"":
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if request.method == "HEAD" or response.file is None:
                body = b"" if request.method == "HEAD" else response.body
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            with open(response.file, "rb") as handle:
                while True:
                    chunk = await loop.run_in_executor(self.executor, handle.read, FILE_CHUNK)
                    if not chunk:
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if response.file is not None and response.remove_file:
                response.file.unlink(missing_ok=True)

    async def _static(self, name: str, tls: bool, head: bool, send: Send) -> None:
        file = (STATIC_DIR / name).resolve()
        if not file.is_relative_to(STATIC_DIR) or not file.is_file():
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found\n"
            cache = "no-store"
        else:
            status, body = 200, file.read_bytes()
            content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if content_type.startswith("text/"):
                content_type += "; charset=utf-8"
            cache = "public, max-age=3600"
        headers = [("content-type", content_type), ("content-length", str(len(body))), ("cache-control", cache)]
        headers += security_headers(tls, signed_in=False)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})


FILE_CHUNK = 64 * 1024
# The spaces whose every page is personal: never cached, even when the request is refused.
PRIVATE_PREFIXES = ("/patient/", "/AccesDirect/", "/etablissement/")
