"""The professionals' site at the DMP's own paths (/AccesDirect/...), signed in with the card's
client certificate over TLS: the first page opens a session bound to the card."""

from __future__ import annotations

from dmp_xds.services import web_signin as signin
from dmp_xds.storage import web as w
from dmp_xds.transport.web.http import Request, Response, redirect
from dmp_xds.transport.web.site import Web

DASHBOARD = "/AccesDirect/TableauDeBord"


def register(web: Web) -> None:
    router = web.router

    @router.get("/AccesDirect/")
    def entry(request: Request) -> Response:
        return redirect(DASHBOARD, 302)

    @router.get(DASHBOARD)
    def dashboard(request: Request) -> Response:
        principal = web.professional(request)
        response = web.render(request, "professional/dashboard.html", principal=principal)
        _bind_session(web, request, response)
        return response


def _bind_session(web: Web, request: Request, response: Response) -> None:
    """Open the card's session when the browser has none (for the CSRF token of the forms)."""
    session = request.session
    if session is not None and session.subject_kind == w.PROFESSIONAL:
        return
    auth = web.require_auth()
    holder = signin.certificate_holder(auth, request.chain, w.PROFESSIONAL, "professional site")
    token, opened = signin.certificate_session(auth, holder, w.PROFESSIONAL, web.now())
    request.session = opened  # the page rendered next has its CSRF token
    web.sign_in(request, response, token)
