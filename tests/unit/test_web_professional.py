"""The professionals' pages' pure parts: the Documents filters read from the query, the timeline's
labels, zoom and chart, and how a stored document is served. No server."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from dmp_xds.services import professional_site as site
from dmp_xds.transport.web.documents import DOCUMENT_CSP, document_response, file_name
from dmp_xds.transport.web.http import HttpError, Request
from dmp_xds.transport.web.professional import (
    CLASS_SCHEME,
    LOINC,
    breadcrumb,
    class_options,
    deeper,
    dtm_label,
    filters_of,
    moment_label,
    period_label,
    timeline_chart,
)


def _request(**query: str) -> Request:
    return Request("GET", "/AccesDirect/Documents/2840599123456", query, {}, {}, "127.0.0.1", True)


def test_no_filter_is_every_current_document_masked_ones_included() -> None:
    assert filters_of(_request()) == site.DocumentFilters()


def test_the_filters_of_the_form() -> None:
    filters = filters_of(
        _request(
            du="2024-03-01",
            au="2024-03-31",
            auteur=" MARTIN ",
            specialite="SM26",
            type="11488-4",
            classe="10",
            archives="avec",
            masques="sans",
        )
    )
    assert filters == site.DocumentFilters(
        dt.date(2024, 3, 1),
        dt.date(2024, 3, 31),
        "MARTIN",
        "SM26",
        (("11488-4", LOINC),),
        (("10", CLASS_SCHEME),),
        include_archived=True,
        include_masked=False,
    )
    assert filters_of(_request(type="X1^^1.2.3")).type_codes == (("X1", "1.2.3"),)


def test_a_date_that_is_not_one_is_a_400() -> None:
    with pytest.raises(HttpError) as refused:
        filters_of(_request(du="31/03/2024"))
    assert refused.value.status == 400


def test_the_class_list_is_the_dmps_value_set() -> None:
    options = dict(class_options())
    assert options["10"] == "Compte rendu" and options["42"] == "Prescription"
    assert not any(":" in code for code in options)


def test_labels_in_french() -> None:
    assert [period_label(k) for k in ("2024", "2024-03", "2024-03-05")] == ["2024", "mars 2024", "5 mars 2024"]
    assert moment_label("2026-12-06T03:12:45.123+00:00") == "06/12/2026 03:12 UTC"
    assert dtm_label("20240312093000") == "12/03/2024 09:30" and dtm_label("20240312") == "12/03/2024"


def test_each_zoom_goes_one_level_deeper_and_the_crumbs_lead_back_up() -> None:
    assert [deeper(z) for z in site.Zoom] == [site.Zoom.YEAR, site.Zoom.MONTH, site.Zoom.DAY, None]
    assert breadcrumb(site.Zoom.ALL, "") == []
    assert breadcrumb(site.Zoom.YEAR, "2024") == [("Toute la période", site.Zoom.ALL, "")]
    assert breadcrumb(site.Zoom.DAY, "2024-03-05") == [
        ("Toute la période", site.Zoom.ALL, ""),
        ("2024", site.Zoom.YEAR, "2024"),
        ("mars 2024", site.Zoom.MONTH, "2024-03"),
    ]


def _line(day: dt.date, klass: str) -> site.DocumentLine:
    return site.DocumentLine(
        "1.2.3", "urn:uuid:x", "titre", klass, f"classe {klass}", "t", "t", day.strftime("%Y%m%d"), day,
        (), (), (), (), False, False, "text/plain",
    )  # fmt: skip


def test_the_chart_is_an_inert_svg_image() -> None:
    view = site.timeline_of([_line(dt.date(2023, 1, 5), "10"), _line(dt.date(2024, 3, 5), "11")], site.Zoom.ALL)
    uri = timeline_chart(view)
    assert uri.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(uri.split(",", 1)[1])
    assert b"<svg" in svg and b"classe 10" in svg and b"<script" not in svg
    assert timeline_chart(site.timeline_of([], site.Zoom.ALL)) == ""


def test_a_pdf_is_shown_anything_else_downloaded() -> None:
    chunks = iter([b"%PDF-1.4"])
    shown = document_response(chunks, 8, "application/pdf", "1.2.3", download=False)
    assert shown.content_type == "application/pdf" and shown.stream is chunks  # streamed from the store
    assert shown.stream_size == 8
    headers = dict(shown.headers)
    assert headers["content-disposition"] == 'inline; filename="1.2.3.pdf"'
    assert headers["content-security-policy"] == DOCUMENT_CSP and DOCUMENT_CSP.startswith("sandbox;")
    saved = document_response(iter([]), 8, "application/pdf", "1.2.3", download=True)
    assert dict(saved.headers)["content-disposition"].startswith("attachment;")
    for kind in ("text/xml", "text/html", "image/svg+xml", ""):
        answer = document_response(iter([]), 8, kind, "1.2.3", download=False)
        assert answer.content_type == "application/octet-stream", kind
        assert dict(answer.headers)["content-disposition"].startswith("attachment;"), kind


def test_a_download_name_is_safe() -> None:
    assert file_name('1.2.3/../"x"', "text/xml") == "1.2.3_.._x.xml"
    assert file_name("", "application/octet-stream") == "document.bin"
