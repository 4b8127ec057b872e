"""The establishment dashboard's pure parts: months, the refusal detail of the trace, the tables
and their CSV, the charts' SVG."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from dmp_xds.services import establishment_stats as es
from dmp_xds.storage import trail as t
from dmp_xds.storage.stats import Activity, CodeCount, Refusal
from dmp_xds.transport.web.charts import counts_axis, publications_chart, refusals_chart

ACTIVITY = Activity(
    dmps_created=2,
    consents_collected=1,
    documents_published=7,
    documents_replaced=1,
    documents_archived=0,
    documents_deleted=1,
    patients_fed=3,
    submissions_refused=2,
    searches=11,
    retrievals=4,
    by_type=(CodeCount("11488-4", "2.16.840.1.113883.6.1", 5), CodeCount("", "", 2)),
    by_class=(CodeCount("10", "1.2.250.1.213.1.1.4.1", 7),),
    refusals_by_code=(("XDSPatientIdDoesNotMatch", 2),),
)


def test_months_parse_shift_and_bound() -> None:
    month = es.Month.parse("2026-12")
    assert (month.start, month.end) == (
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    )
    assert month.label == "décembre 2026" and month.key == "2026-12"
    series = es.months_up_to(month)
    assert len(series) == 12 and series[0] == es.Month(2026, 1) and series[-1] == month
    assert es.months_up_to(es.Month(2026, 2), 3) == (es.Month(2025, 12), es.Month(2026, 1), es.Month(2026, 2))


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "26-12", "décembre", "2026-1", ""])
def test_a_bad_month_is_refused_in_french(text: str) -> None:
    with pytest.raises(es.StatsInputError, match="mois invalide"):
        es.Month.parse(text)


def test_a_bad_day_is_refused_in_french() -> None:
    with pytest.raises(es.StatsInputError, match="jour invalide"):
        es.parse_day("2026-02-30")


def test_a_refusal_detail_gives_back_its_codes_and_rules() -> None:
    notes = t.refusal_notes([("XDSRegistryMetadataError", "no title"), ("XDSMissingDocument", "no part")])
    detail = "; ".join(("authorized professional", *notes))
    codes, rules = t.refusal_of(detail)
    assert codes == ("XDSRegistryMetadataError", "XDSMissingDocument")
    assert rules == "XDSRegistryMetadataError: no title; XDSMissingDocument: no part"
    # Clipped in the middle of the rules, the codes are still all there.
    assert t.refusal_of(detail[:105])[0] == codes
    assert t.refusal_of("the patient has not authorized this professional") == (
        (),
        "the patient has not authorized this professional",
    )


def test_tables_and_csv_give_back_the_figures() -> None:
    figures = es.MonthFigures("1990000017", es.Month(2026, 12), ACTIVITY)
    text = es.to_csv(es.figures_table(figures))
    assert text.startswith("\ufeffIndicateur;Valeur\r\n")
    rows = es.read_csv(text)
    assert {label: int(value) for label, value in rows[1:]} == {
        label: getattr(ACTIVITY, name) for name, label in es.FIGURES
    }
    by_type = es.read_csv(es.to_csv(es.by_type_table(figures)))
    assert by_type[1] == ["11488-4", "2.16.840.1.113883.6.1", "5"]
    assert by_type[2][0] == es.UNKNOWN_CODE
    assert es.read_csv(es.to_csv(es.refusals_by_code_table(figures)))[1] == ["XDSPatientIdDoesNotMatch", "2"]


def test_a_rule_with_the_separator_and_quotes_survives_the_csv() -> None:
    refusal = Refusal(
        "2026-12-06T09:15:00.000000Z",
        "810001234565",
        "Marie MARTIN",
        "185120000424277^^^&1.2.250.1.213.1.4.10&ISO",
        ("1.2.3", "1.2.4"),
        ("XDSRegistryMetadataError",),
        'XDSRegistryMetadataError: "title"; missing\nline',
    )
    table = es.refusals_table(es.DayRefusals("1990000017", dt.date(2026, 12, 6), (refusal,)))
    (row,) = es.read_csv(es.to_csv(table))[1:]
    assert row == [
        "09:15:00",
        "810001234565",
        "Marie MARTIN",
        refusal.patient_id,
        "1.2.3 1.2.4",
        "XDSRegistryMetadataError",
        refusal.rules,
    ]


def test_the_series_table_has_a_row_per_month() -> None:
    months = es.months_up_to(es.Month(2026, 12), 3)
    series = es.MonthlySeries("1990000017", tuple(es.MonthFigures("1990000017", m, ACTIVITY) for m in months))
    rows = es.read_csv(es.to_csv(es.series_table(series)))
    assert [r[0] for r in rows[1:]] == ["2026-10", "2026-11", "2026-12"]
    assert rows[0][1:] == [label for _, label in es.FIGURES]
    assert es.publication_points(series) == (("2026-10", 7), ("2026-11", 7), ("2026-12", 7))


def _svg(text: str) -> etree._Element:
    assert not text.startswith("<?xml")
    return etree.fromstring(text.encode())


def test_the_publications_chart_is_inert_accessible_and_deterministic() -> None:
    months = [("2026-11", 3), ("2026-12", 17)]
    text = publications_chart(months)
    svg = _svg(text)
    assert "script" not in text.lower() and "<!--" not in text and "http://pygal.org" not in text
    assert svg.get("role") == "img"
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert svg.findtext("s:title", namespaces=ns) == "Documents publiés par mois"
    assert "2026-12 : 17" in (svg.findtext("s:desc", namespaces=ns) or "")
    assert ">17<" in text and ">3<" in text
    assert publications_chart(months) == text


def test_the_counts_axis_has_whole_numbers() -> None:
    assert counts_axis([3, 0]) == [0, 1, 2, 3]
    assert counts_axis([]) == [0, 1]
    assert counts_axis([1665, 1700]) == [0, 170, 340, 510, 680, 850, 1020, 1190, 1360, 1530, 1700]
    text = publications_chart([("2026-11", 0), ("2026-12", 3)])
    labels = [t.text for t in _svg(text).iter("{http://www.w3.org/2000/svg}text") if t.text in ("0", "1", "2", "3")]
    assert labels.count("1") == 1 and labels.count("2") == 1  # no 0, 0, 1, 1, 1, 2...


def test_the_refusals_chart_shows_each_code() -> None:
    text = refusals_chart([("XDSPatientIdDoesNotMatch", 2), ("FailedCheck", 1)])
    assert "script" not in text.lower()
    assert "XDSPatientIdDoesNotMatch" in text and "FailedCheck" in text and ">2<" in text
    assert "#b60000" in text
    assert "aucun refus" in refusals_chart([])
