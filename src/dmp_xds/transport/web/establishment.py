"""The establishment dashboard's sign-in: the structure's organisation certificate, or a
dashboard account the operator created (password and TOTP code); and its first page."""

from __future__ import annotations

from dmp_xds.services import web_signin as signin
from dmp_xds.services.web_signin import SignInRefused
from dmp_xds.storage import web as w
from dmp_xds.transport.web.http import Request, Response, redirect
from dmp_xds.transport.web.site import Web

SIGN_IN = "/etablissement/connexion"
CERTIFICATE = "/etablissement/connexion/certificat"
HOME = "/etablissement/"


def register(web: Web) -> None:
    router = web.router

    @router.get(SIGN_IN)
    def sign_in_form(request: Request) -> Response:
        return web.render(request, "establishment/signin.html", message="", structure="", login="")

    @router.post(SIGN_IN)
    def sign_in(request: Request) -> Response:
        auth = web.require_auth()
        structure, login = request.field("structure"), request.field("login")
        try:
            token, _ = signin.establishment_password(
                auth, structure, login, request.field("password"), request.field("code"), request.client, web.now()
            )
        except SignInRefused as refused:
            return web.render(
                request,
                "establishment/signin.html",
                refused.status,
                message=refused.message,
                structure=structure,
                login=login,
            )
        response = redirect(HOME)
        web.sign_in(request, response, token, request.session)
        return response

    @router.post(CERTIFICATE)
    def with_certificate(request: Request) -> Response:
        auth = web.require_auth()
        holder = signin.certificate_holder(auth, request.chain, w.ESTABLISHMENT, "establishment dashboard")
        token, _ = signin.certificate_session(auth, holder, w.ESTABLISHMENT, web.now())
        response = redirect(HOME)
        web.sign_in(request, response, token, request.session)
        return response

    @router.get(HOME)
    def home(request: Request) -> Response:
        session = web.establishment(request)
        return web.render(request, "establishment/home.html", structure=session.structure_id)
