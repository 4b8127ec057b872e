"""The professionals' site at the DMP's own paths (/AccesDirect/...), signed in with the card's
client certificate over TLS: the first page opens a session bound to the card (site.Web.professional)."""

from __future__ import annotations

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
        return web.render(request, "professional/dashboard.html", principal=principal)
