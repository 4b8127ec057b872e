"""The pure parts of the professionals' web site: the care pathway's buckets, the Documents
page's filters (as a FindDocuments stored query, and those it has no parameter for), a document's
line, the actions a record's state allows, the attending doctor's block, break-glass."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from test_policy import NOW, PATIENT, pro

from dmp_xds.dmp.policy import (
    BLOCK_UNTIL,
    CLOSED,
    KIND_ATTENDING,
    KIND_PROFESSIONAL,
    Authorization,
    RecordState,
    may_block,
)
from dmp_xds.security import vocabulary as sv
from dmp_xds.services import professional_site as site
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Author, Code, DocumentEntry, LocalizedString

AUTHORIZED, ATTENDING, STRANGER = "810001234565", "810002345675", "810004567896"


def line(day: str, klass: str = "11", masked: bool = False, specialties: tuple[str, ...] = ()) -> site.DocumentLine:
    date = dt.date.fromisoformat(day) if day else None
    return site.DocumentLine(
        unique_id=f"1.2.{klass}.{day}",
        entry_uuid="urn:uuid:x",
        title="",
        class_code=klass,
        class_display=f"classe {klass}",
        type_code="",
        type_display="",
        creation_time=day.replace("-", "") + "120000" if day else "",
        care_date=date,
        authors=(),
        author_ids=(),
        author_specialties=specialties,
        institutions=(),
        archived=False,
        masked=masked,
        mime_type="text/plain",
    )


LINES = [line("2022-11-02", "10"), line("2024-03-12"), line("2024-03-12"), line("2024-03-20"), line("2024-07-01", "10")]


def counts(timeline: site.Timeline, klass: str) -> dict[str, int]:
    row = next(r for r in timeline.rows if r.class_code == klass)
    return {bucket.key: bucket.count for bucket in row.buckets}


def test_the_whole_period_is_bucketed_by_year_every_year_shown() -> None:
    whole = site.timeline_of(LINES, site.Zoom.ALL)
    assert whole.columns == ("2022", "2023", "2024")
    assert counts(whole, "10") == {"2022": 1, "2023": 0, "2024": 1}
    assert counts(whole, "11") == {"2022": 0, "2023": 0, "2024": 3}
    assert [r.class_display for r in whole.rows] == ["classe 10", "classe 11"]


def test_a_year_is_bucketed_by_month_and_a_month_by_day() -> None:
    year = site.timeline_of(LINES, site.Zoom.YEAR, "2024")
    assert len(year.columns) == 12 and counts(year, "11")["2024-03"] == 3 and counts(year, "10")["2024-07"] == 1
    assert all(r.class_code != "" for r in year.rows)
    month = site.timeline_of(LINES, site.Zoom.MONTH, "2024-03")
    assert len(month.columns) == 31 and counts(month, "11")["2024-03-12"] == 2
    assert [r.class_code for r in month.rows] == ["11"]  # no document of class 10 that month
    day = site.timeline_of(LINES, site.Zoom.DAY, "2024-03-12")
    assert day.columns == ("2024-03-12",)
    assert len(day.rows[0].buckets[0].documents) == 2


def test_february_of_a_leap_year_has_29_days() -> None:
    assert len(site.timeline_of([], site.Zoom.MONTH, "2024-02").columns) == 29


def test_undated_documents_are_kept_apart_in_the_whole_period() -> None:
    whole = site.timeline_of([*LINES, line("")], site.Zoom.ALL)
    assert len(whole.undated) == 1 and sum(counts(whole, "11").values()) == 3
    assert site.timeline_of([*LINES, line("")], site.Zoom.YEAR, "2024").undated == ()


@pytest.mark.parametrize(
    ("zoom", "period"), [(site.Zoom.YEAR, "24x"), (site.Zoom.MONTH, "2024-13"), (site.Zoom.DAY, "2024-02-30")]
)
def test_a_bad_period_is_refused(zoom: site.Zoom, period: str) -> None:
    with pytest.raises(site.Refused) as refused:
        site.timeline_of(LINES, zoom, period)
    assert refused.value.status == 400


def test_the_filters_become_a_find_documents_query() -> None:
    filters = site.DocumentFilters(
        date_from=dt.date(2024, 3, 1),
        date_to=dt.date(2024, 3, 31),
        author="MARTIN",
        type_codes=(("11488-4", "2.16.840.1.113883.6.1"),),
        class_codes=(("11", "1.2.250.1.213.1.1.4.1"),),
        include_archived=True,
    )
    query = site.find_documents_query(PATIENT, filters)
    assert query.text(v.P_DE_PATIENT_ID) == PATIENT
    assert set(query.texts(v.P_DE_STATUS)) == {v.STATUS_APPROVED, v.STATUS_ARCHIVED}
    assert query.values[v.P_DE_CREATION_TIME_FROM].startswith("20240301")
    assert query.values[v.P_DE_CREATION_TIME_TO].startswith("20240401")  # the last day included: To is exclusive
    assert query.texts(v.P_DE_AUTHOR_PERSON) == ("%MARTIN%",)
    assert [(c.code, c.scheme) for c in query.codes(v.P_DE_CLASS_CODE)[0]] == [("11", "1.2.250.1.213.1.1.4.1")]
    plain = site.find_documents_query(PATIENT, site.DocumentFilters())
    assert plain.texts(v.P_DE_STATUS) == (v.STATUS_APPROVED,) and v.P_DE_CREATION_TIME_FROM not in plain.values


def test_a_quote_in_a_filter_stays_inside_its_value() -> None:
    query = site.find_documents_query(PATIENT, site.DocumentFilters(author="D'ARC"))
    assert query.texts(v.P_DE_AUTHOR_PERSON) == ("%D'ARC%",)


def test_the_filters_the_query_lacks_specialty_and_masked() -> None:
    cardiology = line("2024-03-12", specialties=("SM04",))
    masked = line("2024-03-12", masked=True)
    assert site.keep(cardiology, site.DocumentFilters(author_specialty="SM04"))
    assert not site.keep(masked, site.DocumentFilters(author_specialty="SM04"))
    assert site.keep(masked, site.DocumentFilters())
    assert not site.keep(masked, site.DocumentFilters(include_masked=False))


def test_a_document_line_reads_the_metadata() -> None:
    entry = DocumentEntry(
        "urn:uuid:1",
        unique_id="1.2.3",
        title=[LocalizedString("CR de consultation")],
        class_code=Code("11", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
        confidentiality_codes=[Code(sv.MASKED_FROM_PROFESSIONALS[1], sv.MASKED_FROM_PROFESSIONALS[0])],
        authors=[Author(person="801234567897^MARTIN^Jeanne^^^Dr", specialties=["SM26^Médecine générale^1.2"])],
        creation_time="20240312093000",
        service_start_time="20240311",
        status=v.STATUS_ARCHIVED,
    )
    shown = site.document_line(entry)
    assert shown.title == "CR de consultation" and shown.class_code == "11" and shown.class_display
    assert shown.authors == ("Jeanne MARTIN",) and shown.author_ids == ("801234567897",)
    assert shown.author_specialties == ("SM26",)
    assert shown.care_date == dt.date(2024, 3, 11) and shown.masked and shown.archived


def grant(kind: str, who: str) -> Authorization:
    return Authorization(kind, who, BLOCK_UNTIL)


RECORD = RecordState(
    PATIENT, "open", True, True, (grant(KIND_PROFESSIONAL, AUTHORIZED), grant(KIND_ATTENDING, ATTENDING))
)


def test_the_actions_the_state_allows() -> None:
    assert site.PageAction.CONSULT in site.allowed_actions(pro(AUTHORIZED), RECORD, NOW)
    stranger = site.allowed_actions(pro(STRANGER), RECORD, NOW)
    assert site.PageAction.CONSULT not in stranger
    assert {site.PageAction.AUTHORIZE, site.PageAction.BREAK_GLASS} <= set(stranger)
    opposed = replace(RECORD, emergency_access_allowed=False)
    assert site.PageAction.BREAK_GLASS not in site.allowed_actions(pro(STRANGER), opposed, NOW)
    closed = site.allowed_actions(pro(AUTHORIZED), replace(RECORD, status=CLOSED), NOW)
    assert site.PageAction.REACTIVATE in closed and site.PageAction.CONSULT not in closed


def test_only_the_attending_doctor_blocks_and_not_themself() -> None:
    assert may_block(pro(ATTENDING), RECORD, AUTHORIZED, NOW).allowed
    assert not may_block(pro(AUTHORIZED), RECORD, STRANGER, NOW).allowed
    assert not may_block(pro(ATTENDING), RECORD, ATTENDING, NOW).allowed
    assert not may_block(pro(ATTENDING, sv.ACCESS_EMERGENCY), RECORD, AUTHORIZED, NOW).allowed
    assert not may_block(pro(ATTENDING), replace(RECORD, status=CLOSED), AUTHORIZED, NOW).allowed


def test_break_glass_needs_a_reason() -> None:
    with pytest.raises(site.Refused):
        site.break_glass(pro(STRANGER), "  ")
    urgent = site.break_glass(pro(STRANGER), "patient inconscient")
    assert (urgent.access_mode, urgent.access_reason) == (sv.ACCESS_EMERGENCY, "patient inconscient")
