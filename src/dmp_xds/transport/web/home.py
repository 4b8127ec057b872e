"""The home page: the three spaces."""

from __future__ import annotations

from dmp_xds.transport.web.http import Request, Response, redirect
from dmp_xds.transport.web.site import Web


def register(web: Web) -> None:
    @web.router.get("/")
    def home(request: Request) -> Response:
        return web.render(request, "home.html")

    @web.router.get("/favicon.ico")
    def favicon(request: Request) -> Response:
        # Browsers ask for it whatever the page says; the icon is an SVG.
        return redirect("/static/favicon.svg", 301)
