"""What every page of the web front works with (`Web`): the services, the sign-ins, the
templates, the router; who is signed in, as the Principal the policy judges; rendering and
error pages. A page is one route, one template and one service call:

    @web.router.get("/patient/documents")
    def documents(request: Request) -> Response:
        principal = web.patient(request)
        return web.render(request, "patient/documents.html", view=patient_space.documents(web.services, principal))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services
from dmp_xds.services.gate import card_principal, citizen_principal
from dmp_xds.services.web_signin import WebAuth, certificate_holder, certificate_session
from dmp_xds.storage import trail as t
from dmp_xds.storage import web as w
from dmp_xds.storage.web import WebSession
from dmp_xds.transport.web.http import HttpError, Request, Response, Router
from dmp_xds.transport.web.protect import CSRF_FIELD

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static/"
# `__Host-`: the browser keeps it only if Secure, Path=/ and no Domain (no sub-domain can set
# or read it). Over plain HTTP (development) a browser refuses that prefix: a plain name then.
SESSION_COOKIE = "dmpxds_session"
PENDING_COOKIE = "dmpxds_pending"
SECURE_PREFIX = "__Host-"

ERROR_TITLES = {
    400: "Demande incorrecte",
    401: "Connexion nécessaire",
    403: "Accès refusé",
    404: "Page introuvable",
    405: "Méthode non permise",
    408: "Délai dépassé",
    409: "Action impossible",
    413: "Envoi trop volumineux",
    415: "Type d'envoi non accepté",
    429: "Trop de tentatives",
    500: "Erreur du serveur",
    503: "Service indisponible",
}


def templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass
class Web:
    """What every page works with: the services (as SOAP's), the sign-ins, the templates and the
    router the pages register on (see patient.py for the shape of a page)."""

    services: Services
    auth: WebAuth | None
    templates: Environment
    router: Router = field(default_factory=Router)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    # -- rendering ---------------------------------------------------------------------------
    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        session = request.session
        html = self.templates.get_template(template).render(
            session=session,
            csrf=session.csrf_token if session else "",
            csrf_field=CSRF_FIELD,
            **context,
        )
        return Response(status, html.encode("utf-8"))

    def error_page(self, request: Request, status: int, reason: str) -> Response:
        response = self.render(
            request, "error.html", status, code=status, title=ERROR_TITLES.get(status, "Erreur"), reason=reason
        )
        if status == 401 and request.path.startswith("/AccesDirect"):
            response.headers.append(("www-authenticate", 'Certificate realm="carte CPS"'))
        return response

    # -- cookies and sessions ----------------------------------------------------------------
    @staticmethod
    def cookie_name(request: Request, base: str) -> str:
        return SECURE_PREFIX + base if request.tls else base

    def sign_in(self, request: Request, response: Response, token: str, previous: WebSession | None) -> None:
        """Give the browser the new session's cookie, and end the session it came with
        (`previous`): a new token at each sign-in, none reused."""
        if previous is not None:
            self.require_auth().store.revoke(previous.token_hash)
        response.set_cookie(self.cookie_name(request, SESSION_COOKIE), token, secure=request.tls)
        response.delete_cookie(self.cookie_name(request, PENDING_COOKIE), secure=request.tls)

    def forget(self, request: Request, response: Response) -> None:
        response.delete_cookie(self.cookie_name(request, SESSION_COOKIE), secure=request.tls)

    def require_auth(self) -> WebAuth:
        if self.auth is None:
            raise HttpError(503, "Les espaces personnels demandent un serveur avec authentification (DMP_XDS_AUTH).")
        return self.auth

    # -- who is signed in --------------------------------------------------------------------
    def session_of(self, request: Request, *kinds: str) -> WebSession:
        session = request.session
        if session is None or session.subject_kind not in kinds:
            raise HttpError(401, "Connectez-vous pour voir cette page.")
        return session

    def patient(self, request: Request) -> Principal:
        """The signed-in patient (or legal representative) as a Principal acting on their record:
        the same policy as SOAP's applies to it. Pages other than the account's wait until a
        temporary password is changed."""
        session = self.session_of(request, w.PATIENT, w.REPRESENTATIVE)
        if session.must_change_password:
            raise Redirect("/patient/compte")
        if not session.acting_for:  # a representative of several minors has not chosen yet
            raise Redirect("/patient/representation")
        return citizen_principal(session.subject_kind, session.subject_id, session.acting_for, session.display_name)

    def professional(self, request: Request) -> Principal:
        """The professional of the card presented now. The first page opens a session bound to
        that card (its cookie goes with the page's answer: the forms need its CSRF token);
        another card on the same cookie is refused."""
        auth = self.require_auth()
        holder = certificate_holder(auth, request.chain, w.PROFESSIONAL, "professional site")
        session = request.session
        if session is not None and session.subject_kind == w.PROFESSIONAL and session.fingerprint != holder.fingerprint:
            auth.trace(
                t.DENIED,
                "professional site: another card than the session's",
                actor_id=holder.national_id,
                actor_name=holder.display_name,
            )
            raise HttpError(
                403, "Cette session a été ouverte avec une autre carte. Fermez le navigateur et reconnectez-vous."
            )
        if session is None or session.subject_kind != w.PROFESSIONAL:
            request.issued_token, request.session = certificate_session(auth, holder, w.PROFESSIONAL, self.now())
        return card_principal(holder)

    def establishment(self, request: Request) -> WebSession:
        return self.session_of(request, w.ESTABLISHMENT)


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location
