"""The professionals' site at the DMP's own paths (/AccesDirect/...), signed in with the card's
client certificate over TLS: the first page opens a session bound to the card (site.Web.professional).

Each page is one use case of services/professional_site (the same policy, rights matrix and trace
as SOAP) rendered by a template; a refusal is the error page with the status the use case gives,
and a link back to the dashboard (dmpi section 7).

Break-glass lasts for the visit, and the trace is where it is kept: the professional asks for it
on the patient's page with a reason; that page's search, in break-glass access, is traced as an
emergency access with the reason (and notified to the patient). Every later page of the same
session about the same patient finds that row (the card's own successful emergency access to this
record since the session opened) and acts in break-glass with the same reason. Nothing else holds
the flag: it ends with the session (sign-out, expiry), every worker process sees it, and it cannot
exist without its trace row.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
from collections.abc import Callable
from urllib.parse import quote

import pygal  # type: ignore[import-untyped]

from dmp_xds.dmp.cda.header import CdaError
from dmp_xds.dmp.cda.narrative import narrative_html
from dmp_xds.dmp.validation.valuesets import load_class_and_content_type_tables
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.vihf import Principal
from dmp_xds.services import professional_site as site
from dmp_xds.services.establishment_stats import MONTHS_FR
from dmp_xds.transport.web.documents import document_response
from dmp_xds.transport.web.http import HttpError, Request, Response, redirect, url
from dmp_xds.transport.web.labels import ACTION_LABELS, OUTCOME_LABELS
from dmp_xds.transport.web.site import ERROR_TITLES, Web

PREFIX = "/AccesDirect"
DASHBOARD = PREFIX + "/TableauDeBord"
PATIENT = PREFIX + "/DossierPatient"
DOCUMENTS = PREFIX + "/Documents"
PATHWAY = PREFIX + "/ParcoursDeSoins"
HISTORY = PREFIX + "/HistoriqueAcces"
MANAGEMENT = PREFIX + "/GestionDMPPatient"
SETTINGS = PREFIX + "/Parametrages"

CLASS_SCHEME = "1.2.250.1.213.1.1.4.1"  # JDV_J06: the DMP's classCode
LOINC = "2.16.840.1.113883.6.1"  # the typeCode's usual scheme
MONTHS = ("", *MONTHS_FR)  # by month number
LEADS = {
    400: "La demande n'est pas correcte.",
    401: "La carte n'a pas pu être vérifiée.",
    403: "Vous n'avez pas accès à ce dossier ou à cette action.",
    404: "Ce dossier ou ce document n'existe pas, ou ne vous est pas accessible.",
    409: "Ce DMP est fermé : cette action n'est pas possible.",
}
# Dark colours on white (each 3:1 or more, WCAG 2.1 AA for graphics), told apart by the legend.
CHART_COLOURS = ("#000091", "#b34000", "#18753c", "#6e445a", "#695240", "#3558a2", "#a94645", "#1e1e1e")
# pygal writes its (inline) configuration script even with js=[]: an image runs none, and we
# send none.
_SCRIPT = re.compile(rb"<script\b.*?</script>", re.S)

Page = Callable[[Request], Response]


@functools.cache
def class_options() -> tuple[tuple[str, str], ...]:
    """The classCode value set (JDV_J06) as (code, display), by display."""
    classes = load_class_and_content_type_tables()[1]
    return tuple(
        sorted(
            ((code, classes.display(code, scheme) or code) for code, scheme in classes.codes if scheme == CLASS_SCHEME),
            key=lambda c: c[1],
        )
    )


def period_label(key: str) -> str:
    """A timeline column in French: 2024, mars 2024, 5 mars 2024."""
    parts = key.split("-")
    if len(parts) == 2:
        return f"{MONTHS[int(parts[1])]} {parts[0]}"
    if len(parts) == 3:
        return f"{int(parts[2])} {MONTHS[int(parts[1])]} {parts[0]}"
    return key


def dtm_label(value: str) -> str:
    """An HL7 DTM (20240312093000) as 12/03/2024 09:30."""
    if len(value) >= 8 and value[:8].isdigit():
        text = f"{value[6:8]}/{value[4:6]}/{value[:4]}"
        if len(value) >= 12 and value[8:12].isdigit():
            text += f" {value[8:10]}:{value[10:12]}"
        return text
    return value


def timeline_chart(view: site.Timeline) -> str:
    """The timeline's counts as a stacked bar chart, rendered here (pygal) as SVG and given as a
    data: URI for an <img>: an SVG shown as an image runs nothing and loads nothing. The table
    under it says the same in text (and is the zoom's way in)."""
    if not view.rows or view.zoom is site.Zoom.DAY:
        return ""
    chart = pygal.StackedBar(
        js=[],
        width=720,
        height=300,
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        y_title="documents",
        style=pygal.style.Style(
            background="#ffffff",
            plot_background="#ffffff",
            foreground="#1e1e1e",
            foreground_strong="#1e1e1e",
            opacity="1",
            font_family="sans-serif",
            label_font_size=13,
            major_label_font_size=13,
            legend_font_size=13,
            colors=CHART_COLOURS,
        ),
    )
    chart.x_labels = [
        key[8:10].lstrip("0") if view.zoom is site.Zoom.MONTH else period_label(key) for key in view.columns
    ]
    highest = max(sum(row.buckets[i].count for row in view.rows) for i in range(len(view.columns)))
    if highest <= 10:  # whole documents: no 0.2 steps on the axis
        chart.y_labels = list(range(highest + 1))
    for row in view.rows:
        chart.add(row.class_display, [bucket.count or None for bucket in row.buckets])
    svg = _SCRIPT.sub(b"", chart.render())
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def moment_label(value: str) -> str:
    """A trace row's ISO 8601 time as 06/12/2026 03:12 UTC; as given when not one."""
    try:
        return dt.datetime.fromisoformat(value).astimezone(dt.UTC).strftime("%d/%m/%Y %H:%M UTC")
    except ValueError:
        return value


def deeper(zoom: site.Zoom) -> site.Zoom | None:
    return {site.Zoom.ALL: site.Zoom.YEAR, site.Zoom.YEAR: site.Zoom.MONTH, site.Zoom.MONTH: site.Zoom.DAY}.get(zoom)


def breadcrumb(zoom: site.Zoom, period: str) -> list[tuple[str, site.Zoom, str]]:
    """The zoom levels above the current one: (label, zoom, period)."""
    if zoom is site.Zoom.ALL:
        return []
    crumbs = [("Toute la période", site.Zoom.ALL, "")]
    parts = period.split("-")
    if len(parts) >= 1 and zoom is not site.Zoom.YEAR:
        crumbs.append((parts[0], site.Zoom.YEAR, parts[0]))
    if len(parts) >= 2 and zoom is site.Zoom.DAY:
        crumbs.append((period_label("-".join(parts[:2])), site.Zoom.MONTH, "-".join(parts[:2])))
    return crumbs


def parse_date(request: Request, name: str) -> dt.date | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HttpError(400, f"La date {value!r} n'est pas une date (AAAA-MM-JJ).") from None


def coded(value: str, default_scheme: str) -> tuple[tuple[str, str], ...]:
    """A code of a filter: `code` (of the usual scheme) or `code^^scheme`."""
    value = value.strip()
    if not value:
        return ()
    code, _, scheme = value.partition("^^")
    return ((code.strip(), scheme.strip() or default_scheme),)


def filters_of(request: Request) -> site.DocumentFilters:
    """The Documents page's filters, from its GET form (every field optional)."""
    return site.DocumentFilters(
        date_from=parse_date(request, "du"),
        date_to=parse_date(request, "au"),
        author=request.query.get("auteur", "").strip(),
        author_specialty=request.query.get("specialite", "").strip(),
        type_codes=coded(request.query.get("type", ""), LOINC),
        class_codes=coded(request.query.get("classe", ""), CLASS_SCHEME),
        include_archived=request.query.get("archives") == "avec",
        include_masked=request.query.get("masques", "avec") != "sans",
    )


def register(web: Web) -> None:
    router = web.router
    services = web.services

    def render(request: Request, template: str, status: int = 200, **context: object) -> Response:
        return web.render(
            request,
            template,
            status,
            prefix=PREFIX,
            dtm=dtm_label,
            moment=moment_label,
            period_label=period_label,
            quote=quote,
            action_label=lambda action: ACTION_LABELS.get(action, action),
            outcome_label=lambda outcome: OUTCOME_LABELS.get(outcome, outcome),
            mode_label=lambda mode: sv.ACCESS_MODES.get(mode, mode or "accès normal"),
            **context,
        )

    def refused(request: Request, refusal: site.Refused, ins: str = "") -> Response:
        return render(
            request,
            "professional/refused.html",
            refusal.status,
            code=refusal.status,
            title=ERROR_TITLES.get(refusal.status, "Erreur"),
            lead=LEADS.get(refusal.status, "La demande a été refusée."),
            reason=refusal.reason,
            ins=ins,
        )

    def guarded(page: Page) -> Page:
        """A page's refusals (`Refused`) as the professionals' error page, linked to the dashboard."""

        @functools.wraps(page)
        def run(request: Request) -> Response:
            try:
                return page(request)
            except site.Refused as refusal:
                return refused(request, refusal, request.params.get("ins", ""))

        return run

    def glass_reason(request: Request, principal: Principal, ins: str) -> str:
        """This visit's break-glass reason on the patient, "" when there is none."""
        session = request.session
        return site.visit_glass_reason(services, principal, ins, session.created_at) if session else ""

    def acting(request: Request, ins: str) -> Principal:
        """The card holder, in break-glass access when this visit asked for it on this patient."""
        principal = web.professional(request)
        reason = glass_reason(request, principal, ins)
        return site.break_glass(principal, reason) if reason else principal

    # -- TableauDeBord ------------------------------------------------------------------------
    @router.get(PREFIX + "/")
    def entry(request: Request) -> Response:
        return redirect(DASHBOARD, 302)

    @router.get(DASHBOARD)
    @guarded
    def dashboard(request: Request) -> Response:
        principal = web.professional(request)
        wanted = request.query.get("ins", "").strip().replace(" ", "")
        if wanted:
            site.patient_id_of(services, wanted)  # a malformed INS is refused here (400)
            return redirect(f"{DASHBOARD}/{quote(wanted, safe='')}")
        view = site.dashboard(services, principal, web.now())
        return render(request, "professional/dashboard.html", principal=principal, view=view)

    @router.get(DASHBOARD + "/{ins}")
    @guarded
    def existence(request: Request) -> Response:
        ins = request.params["ins"]
        principal = acting(request, ins)
        view = site.existence_test(services, principal, ins, web.now())
        return render(request, "professional/existence.html", principal=principal, view=view, ins=ins)

    # -- DossierPatient -----------------------------------------------------------------------
    @router.get(PATIENT + "/{ins}")
    @guarded
    def patient_page(request: Request) -> Response:
        ins = request.params["ins"]
        principal = acting(request, ins)
        try:
            view = site.patient_page(services, principal, ins, web.now())
        except site.NeedsAuthorization as needed:
            return render(request, "professional/confirm.html", 403, ins=ins, needed=needed)
        return render(request, "professional/patient.html", principal=principal, view=view, ins=ins)

    @router.post(PATIENT + "/{ins}/autorisation")
    @guarded
    def authorize(request: Request) -> Response:
        """The professional confirms the patient's consent (TD0.3)."""
        ins = request.params["ins"]
        if request.field("consentement") != "oui":
            raise HttpError(400, "Cochez la case confirmant le consentement du patient.")
        site.authorize_self(services, web.professional(request), ins, web.now())
        return redirect(f"{PATIENT}/{quote(ins, safe='')}")

    @router.post(PATIENT + "/{ins}/bris-de-glace")
    @guarded
    def break_glass(request: Request) -> Response:
        """Break-glass for this visit: the patient's page read in that mode is the traced
        emergency access that the following pages find (see the module's docstring)."""
        ins = request.params["ins"]
        principal = site.break_glass(web.professional(request), request.field("motif"))
        site.patient_page(services, principal, ins, web.now())
        return redirect(f"{PATIENT}/{quote(ins, safe='')}")

    # -- Documents ----------------------------------------------------------------------------
    @router.get(DOCUMENTS + "/{ins}")
    @guarded
    def documents(request: Request) -> Response:
        ins = request.params["ins"]
        principal = acting(request, ins)
        filters = filters_of(request)
        view = site.documents(services, principal, ins, filters, web.now())
        return render(
            request,
            "professional/documents.html",
            view=view,
            ins=ins,
            query=request.query,
            classes=class_options(),
        )

    @router.get(DOCUMENTS + "/{ins}/{unique_id}")
    @guarded
    def document(request: Request) -> Response:
        ins, unique_id = request.params["ins"], request.params["unique_id"]
        view = site.document(services, acting(request, ins), ins, unique_id, web.now())
        rendered, problem = "", ""
        if view.mime_type in ("text/xml", "application/xml", "application/hl7-v3+xml"):
            try:
                rendered = narrative_html(view.content())
            except CdaError as exc:
                problem = str(exc)
        return render(request, "professional/document.html", view=view, ins=ins, rendered=rendered, problem=problem)

    @router.get(DOCUMENTS + "/{ins}/{unique_id}/contenu")
    @guarded
    def content(request: Request) -> Response:
        ins, unique_id = request.params["ins"], request.params["unique_id"]
        view = site.document(services, acting(request, ins), ins, unique_id, web.now())
        download = request.query.get("telecharger") == "1"
        return document_response(view.chunks(), view.size, view.mime_type, unique_id, download)

    # -- ParcoursDeSoins ----------------------------------------------------------------------
    @router.get(PATHWAY + "/{ins}")
    @guarded
    def pathway(request: Request) -> Response:
        ins = request.params["ins"]
        try:
            zoom = site.Zoom(request.query.get("zoom", site.Zoom.ALL.value))
        except ValueError:
            raise HttpError(400, "Le niveau de zoom est inconnu (all, year, month ou day).") from None
        period = request.query.get("periode", "") if zoom is not site.Zoom.ALL else ""
        view = site.care_pathway(services, acting(request, ins), ins, zoom, period, now=web.now())
        return render(
            request,
            "professional/pathway.html",
            view=view,
            ins=ins,
            deeper=deeper(zoom),
            crumbs=breadcrumb(zoom, period),
            chart=timeline_chart(view),
            zoom_url=lambda z, p: url(f"{PATHWAY}/{quote(ins, safe='')}", zoom=z.value, periode=p),
        )

    # -- HistoriqueAcces ----------------------------------------------------------------------
    @router.get(HISTORY + "/{ins}")
    @guarded
    def history(request: Request) -> Response:
        ins = request.params["ins"]
        view = site.access_history(services, acting(request, ins), ins, web.now())
        return render(request, "professional/history.html", view=view, ins=ins)

    # -- GestionDMPPatient --------------------------------------------------------------------
    @router.get(MANAGEMENT + "/{ins}")
    @guarded
    def management(request: Request) -> Response:
        ins = request.params["ins"]
        view = site.record_management(services, acting(request, ins), ins, web.now())
        return render(request, "professional/management.html", view=view, ins=ins, done=request.query.get("fait", ""))

    @router.post(MANAGEMENT + "/{ins}/blocage")
    @guarded
    def block(request: Request) -> Response:
        ins = request.params["ins"]
        grantee = request.field("professionnel").strip()
        if not grantee:
            raise HttpError(400, "Indiquez l'identifiant national du professionnel à bloquer.")
        site.block_professional(services, web.professional(request), ins, grantee, web.now())
        return redirect(url(f"{MANAGEMENT}/{quote(ins, safe='')}", fait="blocage"))

    @router.post(MANAGEMENT + "/{ins}/fermeture")
    @guarded
    def close(request: Request) -> Response:
        ins = request.params["ins"]
        reason = request.field("motif").strip()
        if not reason:
            raise HttpError(400, "Indiquez le motif de la fermeture du DMP.")
        site.close_record(services, web.professional(request), ins, reason, web.now())
        return redirect(f"{DASHBOARD}/{quote(ins, safe='')}")

    @router.post(MANAGEMENT + "/{ins}/reactivation")
    @guarded
    def reactivate(request: Request) -> Response:
        ins = request.params["ins"]
        consents = request.field("consentement") == "oui"
        site.reactivate_record(services, web.professional(request), ins, consents, web.now())
        return redirect(f"{DASHBOARD}/{quote(ins, safe='')}")

    # -- Parametrages -------------------------------------------------------------------------
    @router.get(SETTINGS)
    @guarded
    def settings(request: Request) -> Response:
        return render(request, "professional/settings.html", view=site.card_settings(web.professional(request)))
