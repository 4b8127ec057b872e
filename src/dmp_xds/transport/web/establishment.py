"""The establishment dashboard: its sign-in (the structure's organisation certificate, or a
dashboard account the operator created: password and TOTP code), the structure's page and the
CSV export of each of its tables.

The structure is the session's, never the URL's: a request naming another structure (a forged
parameter) is refused, shows nothing, and is traced.
"""

from __future__ import annotations

import datetime as dt
import functools

from lxml import etree

from dmp_xds.services import establishment_stats as es
from dmp_xds.services import web_signin as signin
from dmp_xds.services.web_signin import SignInRefused
from dmp_xds.storage import trail as t
from dmp_xds.storage import web as w
from dmp_xds.storage.web import WebSession
from dmp_xds.transport.web import charts
from dmp_xds.transport.web.http import HttpError, Request, Response, redirect, url
from dmp_xds.transport.web.site import Web

SIGN_IN = "/etablissement/connexion"
CERTIFICATE = "/etablissement/connexion/certificat"
HOME = "/etablissement/"
EXPORT = "/etablissement/export/{table}.csv"
CHART_STYLES = "/etablissement/graphiques.css"
# Query parameters that would name a structure: the figures shown are the session's structure's
# only, so another value is an attempt at another structure's figures.
STRUCTURE_PARAMETERS = ("structure", "structure_id", "structureId", "etablissement", "finess", "idNat_Struct")


def export_url(name: str, query: dict[str, str]) -> str:
    return url(f"/etablissement/export/{name}.csv", **query)


def split_styles(svg: str) -> tuple[str, str]:
    """The chart without its `<style>` element and style attributes, and that style sheet's
    text: the pages' Content-Security-Policy (style-src 'self') blocks inline styles, so the
    chart's style sheet is served from CHART_STYLES."""
    root = etree.fromstring(svg)
    sheets = []
    for style in list(root.iter("{http://www.w3.org/2000/svg}style")):
        sheets.append(style.text or "")
        style.getparent().remove(style)
    for element in root.iter():
        element.attrib.pop("style", None)
    return etree.tostring(root, encoding="unicode"), "\n".join(sheets)


@functools.cache
def chart_styles() -> str:
    """The charts' style sheet: pygal's CSS depends on the chart's id and style, not its figures."""
    return "\n".join(split_styles(draw([("x", 1)]))[1] for draw in (charts.publications_chart, charts.refusals_chart))


def register(web: Web) -> None:
    router = web.router

    def own_structure(request: Request) -> WebSession:
        """The signed-in structure's session; a request naming another structure is refused
        (403), traced, nothing shown."""
        session = web.establishment(request)
        named = {key: value for key, value in request.query.items() if key in STRUCTURE_PARAMETERS}
        foreign = {key: value for key, value in named.items() if value != session.structure_id}
        if foreign:
            web.require_auth().trace(
                t.DENIED,
                f"establishment dashboard: {request.method} {request.path} from {request.client} asked for another "
                f"structure's figures ({', '.join(f'{k}={v!r}' for k, v in sorted(foreign.items()))})",
                actor_id=session.subject_id,
                actor_name=session.display_name,
                structure_id=session.structure_id,
                action=t.WEB_FORGED_REQUEST,
            )
            raise HttpError(403, "Ce tableau de bord ne montre que les chiffres de votre structure.")
        return session

    def period(request: Request) -> tuple[es.Month, dt.date]:
        today = web.now().date()
        try:
            return es.page_month(request.query.get("mois", ""), today), es.page_day(
                request.query.get("jour", ""), today
            )
        except es.StatsInputError as bad:
            raise HttpError(400, f"Le tableau de bord ne peut pas être affiché : {bad}.") from None

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
        session = own_structure(request)
        month, day = period(request)
        view = es.dashboard(web.services.registry.engine, session.structure_id, month, day)
        query = {"mois": month.key, "jour": day.isoformat()}
        publications, _ = split_styles(charts.publications_chart(es.publication_points(view.series)))
        refusals, _ = split_styles(charts.refusals_chart(view.figures.activity.refusals_by_code))
        return web.render(
            request,
            "establishment/home.html",
            structure=session.structure_id,
            view=view,
            tables=view.tables,
            month=month,
            day=day,
            previous=month.shifted(-1),
            following=month.shifted(1),
            query=query,
            export=lambda name: export_url(name, query),
            publications_chart=publications,
            refusals_chart=refusals,
        )

    @router.get(EXPORT)
    def export(request: Request) -> Response:
        session = own_structure(request)
        month, day = period(request)
        name = request.params["table"]
        try:
            table = es.export_table(web.services.registry.engine, session.structure_id, name, month, day)
        except KeyError:
            raise HttpError(
                404, f"Ce tableau n'existe pas ; ceux du tableau de bord : {', '.join(es.TABLE_NAMES)}."
            ) from None
        return Response(
            200,
            es.to_csv(table).encode("utf-8"),
            "text/csv; charset=utf-8",
            [("content-disposition", f'attachment; filename="{table.name}.csv"')],
        )

    @router.get(CHART_STYLES)
    def chart_style_sheet(request: Request) -> Response:
        web.establishment(request)
        return Response(200, chart_styles().encode("utf-8"), "text/css; charset=utf-8")
