"""The patient's space pages: documents, who accessed the record, who may access it, what the
patient adds, the record itself. Each page is one route, one template and one call of
services/patient_space.py, patient_seeds.py or record_export.py, which decide, act and trace:
nothing here reads the data another way.

The record's INS is in every URL (`/patient/{ins}/...`, its number): a page about another
patient's INS reaches the service like any other, which refuses it and traces the attempt on that
patient's history. A refusal (`Refused`) is the error page with the status the service chose.
A change is a POST form (the CSRF token checked before the handler runs) answered by a 303 back
to the page, whose `fait` query names the message it shows.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from markupsafe import Markup

from dmp_xds.dmp.cda.header import CdaError
from dmp_xds.dmp.cda.narrative import narrative_html
from dmp_xds.security.vihf import Principal, split_cx
from dmp_xds.services import patient_seeds as seeds
from dmp_xds.services import patient_space as ps
from dmp_xds.services.patient_space import Refused
from dmp_xds.services.record_export import export_record
from dmp_xds.transport.web.documents import document_response
from dmp_xds.transport.web.http import HttpError, Request, Response, redirect, url
from dmp_xds.transport.web.labels import ACTION_LABELS, OUTCOME_LABELS
from dmp_xds.transport.web.site import Web

ROOT = "/patient/{ins}"
# Media types shown in the page itself; others are downloaded.
CDA_TYPES = ("text/xml", "application/xml")
IMAGE_TYPES = ("image/jpeg", "image/png")
PDF = "application/pdf"
MAX_NOTE_PREFILL = 20_000

REFUSALS = {
    400: "Votre demande n'est pas valide.",
    403: "Cette action ne vous est pas permise.",
    404: "Ce dossier ou ce document est introuvable.",
    409: "Cette action n'est pas possible dans l'état actuel du dossier.",
    413: "Le document est trop volumineux.",
    415: "Seuls les documents PDF et les images JPEG sont acceptés (le DMP ne connaît pas le format PNG).",
    422: "Le document a été refusé par les règles de publication du DMP.",
}
DONE = {
    "masque": "Le document est masqué aux professionnels de santé.",
    "affiche": "Le document est de nouveau visible par les professionnels autorisés.",
    "supprime": "Le document a été supprimé.",
    "lue": "La notification est marquée comme lue.",
    "retire": "L'autorisation a été retirée.",
    "bloque": "Ce professionnel est bloqué : il ne peut plus accéder à votre dossier.",
    "debloque": "Ce professionnel n'est plus bloqué.",
    "oppositions": "Vos choix d'accès en urgence sont enregistrés.",
    "depose": "Votre document a été ajouté à votre dossier.",
    "info": "Votre information est enregistrée.",
    "info-supprimee": "Votre information a été supprimée.",
    "courriel": "L'adresse de notification est enregistrée.",
    "ferme": "Votre DMP est fermé.",
    "destruction": "Votre demande de destruction est transmise.",
}
STATUSES = {"approved": "Disponible", "archived": "Archivé"}


def day(text: str) -> str:
    """A DTM (YYYYMMDD[HHMMSS]) or an ISO date as JJ/MM/AAAA (pure); as given when not one."""
    digits = "".join(ch for ch in text[:10] if ch.isdigit())
    return f"{digits[6:8]}/{digits[4:6]}/{digits[:4]}" if len(digits) >= 8 else text


def moment(value: str | dt.datetime | None) -> str:
    """An ISO 8601 time or a datetime as JJ/MM/AAAA HH:MM UTC (pure)."""
    if value is None or value == "":
        return ""
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return when.astimezone(dt.UTC).strftime("%d/%m/%Y %H:%M UTC")


def ins_of(patient_id: str) -> str:
    return split_cx(patient_id)[0]


def patient_id_of(principal: Principal, ins: str) -> str:
    """The CX of the INS in the URL: the signed-in record's, or another's under the same root
    (which the service refuses, tracing it on that INS). Not an INS number at all: 404."""
    if not ins.isalnum() or len(ins) > 20:
        raise HttpError(404, "Ce dossier est introuvable.")
    own, root = split_cx(principal.patient_id)
    return principal.patient_id if ins == own else f"{ins}^^^&{root}&ISO"


Page = Callable[[Request, Principal, str], Response]


def register(web: Web) -> None:
    router = web.router
    web.templates.filters["jour"] = day
    web.templates.filters["moment"] = moment
    web.templates.globals.update(
        type_labels=seeds.UPLOAD_TYPES,
        statuses=STATUSES,
        actions=ACTION_LABELS,
        outcomes=OUTCOME_LABELS,
        done_messages=DONE,
    )

    def page(handler: Page) -> Callable[[Request], Response]:
        """The signed-in patient and the page's record for `handler`; a refusal of the
        services as the error page with its status."""

        @functools.wraps(handler)
        def run(request: Request) -> Response:
            principal = web.patient(request)
            patient_id = patient_id_of(principal, request.params["ins"])
            try:
                return handler(request, principal, patient_id)
            except Refused as refused:
                reason = REFUSALS.get(refused.status, "Cette demande est refusée.")
                return web.error_page(request, refused.status, f"{reason} (Détail : {refused.reason}.)")

        return run

    def show(request: Request, template: str, principal: Principal, patient_id: str, **view: Any) -> Response:
        return web.render(
            request,
            template,
            principal=principal,
            ins=ins_of(patient_id),
            done=DONE.get(request.query.get("fait", ""), ""),
            **view,
        )

    def back(patient_id: str, where: str, done: str) -> Response:
        return redirect(url(f"/patient/{ins_of(patient_id)}{where}", fait=done))

    # -- documents -------------------------------------------------------------------------
    @router.get(ROOT + "/documents")
    @page
    def documents(request: Request, principal: Principal, patient_id: str) -> Response:
        filters = ps.DocumentFilter(
            type_code=request.query.get("type", "").strip(),
            created_from=request.query.get("du", "").strip(),
            created_to=request.query.get("au", "").strip(),
            author=request.query.get("auteur", "").strip(),
        )
        listed = ps.list_documents(web.services, principal, patient_id, filters, web.now())
        return show(request, "patient/documents.html", principal, patient_id, view=listed)

    @router.get(ROOT + "/documents/{uid}")
    @page
    def document(request: Request, principal: Principal, patient_id: str) -> Response:
        content = ps.get_document(web.services, principal, patient_id, request.params["uid"], web.now())
        rendered, text = Markup(""), ""
        if content.mime_type in CDA_TYPES:
            try:
                rendered = Markup(narrative_html(content.read_bytes()))  # safe: narrative.py writes only its whitelist
            except CdaError:
                text = "Ce document XML n'est pas un document CDA lisible : téléchargez-le."
        elif content.mime_type.startswith("text/plain"):
            text = content.read_bytes().decode("utf-8", "replace")
        return show(
            request,
            "patient/document.html",
            principal,
            patient_id,
            content=content,
            doc=content.document,
            rendered=rendered,
            text=text,
            pdf=content.mime_type == PDF,
            image=content.mime_type in IMAGE_TYPES,
        )

    def file_response(request: Request, principal: Principal, patient_id: str, download: bool) -> Response:
        content = ps.get_document(web.services, principal, patient_id, request.params["uid"], web.now())
        if not download and content.mime_type not in (PDF, *IMAGE_TYPES):
            raise HttpError(404, "Ce document ne s'affiche pas dans le navigateur : téléchargez-le.")
        return document_response(
            content.chunks(), content.size, content.mime_type, content.document.unique_id or "", download
        )

    @router.get(ROOT + "/documents/{uid}/contenu")
    @page
    def inline(request: Request, principal: Principal, patient_id: str) -> Response:
        return file_response(request, principal, patient_id, download=False)

    @router.get(ROOT + "/documents/{uid}/telechargement")
    @page
    def download(request: Request, principal: Principal, patient_id: str) -> Response:
        return file_response(request, principal, patient_id, download=True)

    @router.post(ROOT + "/documents/{uid}/masquer")
    @page
    def hide(request: Request, principal: Principal, patient_id: str) -> Response:
        uid = request.params["uid"]
        ps.hide_document(web.services, principal, patient_id, uid, web.now())
        return back(patient_id, f"/documents/{uid}", "masque")

    @router.post(ROOT + "/documents/{uid}/afficher")
    @page
    def unhide(request: Request, principal: Principal, patient_id: str) -> Response:
        uid = request.params["uid"]
        ps.show_document(web.services, principal, patient_id, uid, web.now())
        return back(patient_id, f"/documents/{uid}", "affiche")

    @router.get(ROOT + "/documents/{uid}/suppression")
    @page
    def delete_form(request: Request, principal: Principal, patient_id: str) -> Response:
        listed = ps.list_documents(web.services, principal, patient_id, now=web.now())
        found = next((d for d in listed.documents if d.unique_id == request.params["uid"]), None)
        if found is None:
            raise HttpError(404, "Ce document est introuvable.")
        return show(request, "patient/delete.html", principal, patient_id, doc=found)

    @router.post(ROOT + "/documents/{uid}/suppression")
    @page
    def delete(request: Request, principal: Principal, patient_id: str) -> Response:
        ps.delete_document(web.services, principal, patient_id, request.params["uid"], web.now())
        return back(patient_id, "/documents", "supprime")

    # -- who accessed my record ----------------------------------------------------------------
    @router.get(ROOT + "/historique")
    @page
    def history(request: Request, principal: Principal, patient_id: str) -> Response:
        before_text = request.query.get("avant", "")
        if before_text and not before_text.isdigit():
            raise HttpError(400, "La page demandée n'existe pas.")
        before = int(before_text) if before_text else None
        found = ps.access_history(web.services, principal, patient_id, before, now=web.now())
        unread = ps.notifications(web.services, principal, patient_id, now=web.now())
        return show(request, "patient/history.html", principal, patient_id, view=found, notifications=unread)

    @router.post(ROOT + "/notifications/{nid}/lue")
    @page
    def acknowledge(request: Request, principal: Principal, patient_id: str) -> Response:
        nid = request.params["nid"]
        if not nid.isdigit():
            raise HttpError(404, "Cette notification est introuvable.")
        ps.acknowledge_notification(web.services, principal, patient_id, int(nid), web.now())
        return back(patient_id, "/historique", "lue")

    # -- who may access it ---------------------------------------------------------------------
    @router.get(ROOT + "/acces")
    @page
    def rights(request: Request, principal: Principal, patient_id: str) -> Response:
        found = ps.access_rights(web.services, principal, patient_id, web.now())
        return show(request, "patient/rights.html", principal, patient_id, view=found)

    @router.post(ROOT + "/acces/retrait")
    @page
    def revoke(request: Request, principal: Principal, patient_id: str) -> Response:
        ps.revoke_authorization(web.services, principal, patient_id, request.field("professionnel"), web.now())
        return back(patient_id, "/acces", "retire")

    @router.post(ROOT + "/acces/blocage")
    @page
    def block(request: Request, principal: Principal, patient_id: str) -> Response:
        ps.block_professional(web.services, principal, patient_id, request.field("professionnel"), web.now())
        return back(patient_id, "/acces", "bloque")

    @router.post(ROOT + "/acces/deblocage")
    @page
    def unblock(request: Request, principal: Principal, patient_id: str) -> Response:
        ps.unblock_professional(web.services, principal, patient_id, request.field("professionnel"), web.now())
        return back(patient_id, "/acces", "debloque")

    @router.post(ROOT + "/acces/oppositions")
    @page
    def oppositions(request: Request, principal: Principal, patient_id: str) -> Response:
        # An unticked box is absent from the form: absent means "no opposition".
        ps.set_oppositions(
            web.services,
            principal,
            patient_id,
            oppose_emergency=request.field("bris_de_glace") == "1",
            oppose_regulation=request.field("acces_urgence") == "1",
            now=web.now(),
        )
        return back(patient_id, "/acces", "oppositions")

    # -- what I add myself ---------------------------------------------------------------------
    @router.get(ROOT + "/ajouts")
    @page
    def additions(request: Request, principal: Principal, patient_id: str) -> Response:
        listed = ps.list_documents(web.services, principal, patient_id, now=web.now())
        information = seeds.my_information(listed.documents)
        texts: dict[str, str] = {}
        for item in information:
            if item.current is not None:
                content = ps.get_document(web.services, principal, patient_id, item.current.unique_id, web.now())
                texts[item.kind] = _note_body(content.read_bytes()[:MAX_NOTE_PREFILL])
        return show(
            request,
            "patient/additions.html",
            principal,
            patient_id,
            information=information,
            texts=texts,
            upload_types=seeds.UPLOAD_TYPES,
            today=web.now().strftime("%Y-%m-%d"),
        )

    @router.post(ROOT + "/ajouts/document")
    @page
    def upload(request: Request, principal: Principal, patient_id: str) -> Response:
        sent = next((f for f in request.files if f.field_name == "fichier" and f.size > 0), None)
        if sent is None:
            raise HttpError(400, "Choisissez le fichier à ajouter.")
        published = seeds.publish_upload(
            web.services,
            principal,
            patient_id,
            _chunks(sent.path),
            request.field("titre"),
            request.field("type"),
            request.field("date"),
            hidden=request.field("masque") == "1",
            now=web.now(),
        )
        return redirect(url(f"/patient/{ins_of(patient_id)}/documents/{published.unique_id}", fait="depose"))

    @router.post(ROOT + "/ajouts/info/{kind}")
    @page
    def note(request: Request, principal: Principal, patient_id: str) -> Response:
        seeds.publish_note(
            web.services,
            principal,
            patient_id,
            request.params["kind"],
            request.field("texte"),
            replaces=request.field("remplace"),
            now=web.now(),
        )
        return back(patient_id, "/ajouts", "info")

    @router.post(ROOT + "/ajouts/info/{kind}/suppression")
    @page
    def note_delete(request: Request, principal: Principal, patient_id: str) -> Response:
        ps.delete_document(web.services, principal, patient_id, request.field("document"), web.now())
        return back(patient_id, "/ajouts", "info-supprimee")

    # -- my record -----------------------------------------------------------------------------
    @router.get(ROOT + "/dossier")
    @page
    def record(request: Request, principal: Principal, patient_id: str) -> Response:
        found = ps.my_record(web.services, principal, patient_id, web.now())
        return show(request, "patient/record.html", principal, patient_id, view=found)

    @router.post(ROOT + "/dossier/courriel")
    @page
    def email(request: Request, principal: Principal, patient_id: str) -> Response:
        ps.set_notification_email(web.services, principal, patient_id, request.field("courriel"), web.now())
        return back(patient_id, "/dossier", "courriel")

    @router.get(ROOT + "/dossier/fermeture")
    @page
    def close_form(request: Request, principal: Principal, patient_id: str) -> Response:
        found = ps.my_record(web.services, principal, patient_id, web.now())
        return show(request, "patient/close.html", principal, patient_id, view=found)

    @router.post(ROOT + "/dossier/fermeture")
    @page
    def close(request: Request, principal: Principal, patient_id: str) -> Response:
        ps.close_record(web.services, principal, patient_id, web.now())
        return back(patient_id, "/dossier", "ferme")

    @router.post(ROOT + "/dossier/destruction")
    @page
    def destruction(request: Request, principal: Principal, patient_id: str) -> Response:
        ps.request_destruction(web.services, principal, patient_id, request.field("motif"), web.now())
        return back(patient_id, "/dossier", "destruction")

    @router.get(ROOT + "/dossier/archive")
    @page
    def archive(request: Request, principal: Principal, patient_id: str) -> Response:
        made = export_record(web.services, principal, patient_id, web.now())
        response = Response(200, b"", "application/zip", file=made.path, remove_file=True)
        response.headers.append(("content-disposition", f'attachment; filename="{made.filename}"'))
        return response


def _chunks(path: Path) -> Iterator[bytes]:
    """The uploaded file's bytes, 64 KiB at a time (the service writes them as they come)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(64 * 1024):
            yield chunk


def _note_body(content: bytes) -> str:
    """The text the patient wrote, without the title line note_text puts first (pure)."""
    text = content.decode("utf-8", "replace")
    first, _, rest = text.partition("\n\n")
    return rest.rstrip("\n") if first in {k.title for k in seeds.NOTE_KINDS.values()} else text
