"""The establishment dashboard's figures from real activity: a hospital's doctor creates a DMP
(TD1.1) and publishes, replaces, archives and deletes documents, has a submission refused and
searches, over TLS with the test PKI's card and VIHFs, on SQLite and PostgreSQL; a doctor of
another structure acts too. The figures, the refusal list, the CSV and `dmp-xds stats` must
count the hospital's requests, and only them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator

import pytest

from dashboard_activity import HOSPITAL, OTHER, Activity, act
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.services import establishment_stats as es
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.stats import activities, kept_months
from secure_server import start_secure_server, stop_secure_server
from xds_server import BACKENDS, database_for, documents_for


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def activity(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Activity]:
    server = start_secure_server(
        tmp_path_factory.mktemp(f"stats-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    try:
        yield act(server, pki)
    finally:
        stop_secure_server(server)


def _engine(activity: Activity):  # type: ignore[no-untyped-def]
    return create_engine_for(activity.server.engine_url())


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def test_the_month_counts_the_structures_activity_and_only_it(activity: Activity) -> None:
    engine = _engine(activity)
    try:
        figures = es.month_figures(engine, HOSPITAL, es.Month.of(_today())).activity
        other = es.month_figures(engine, OTHER, es.Month.of(_today())).activity
    finally:
        engine.dispose()
    assert (figures.dmps_created, figures.consents_collected) == (1, 1)
    assert figures.documents_published == 3
    assert figures.documents_replaced == 1
    assert figures.documents_archived == 1
    assert figures.documents_deleted == 1
    assert figures.patients_fed == 1
    assert figures.submissions_refused == 2
    assert dict(figures.refusals_by_code) == {
        **{code: 1 for code in set(activity.refused_codes)},
        "XDSRepositoryMetadataError": 1,
    }
    assert figures.searches == 1
    assert sum(c.count for c in figures.by_type) == sum(c.count for c in figures.by_class) == 3
    # The other structure: its own publication and search, nothing of the hospital's.
    assert (other.documents_published, other.searches, other.dmps_created, other.submissions_refused) == (1, 1, 0, 0)


def test_the_days_refusals_say_who_which_document_and_which_rule(activity: Activity) -> None:
    engine = _engine(activity)
    try:
        day = es.day_refusals(engine, HOSPITAL, _today())
        elsewhere = es.day_refusals(engine, OTHER, _today())
    finally:
        engine.dispose()
    refusal, mismatch = day.refusals
    assert refusal.actor_id == mismatch.actor_id == activity.server.pki.identity("doctor").national_id
    assert refusal.documents == (activity.refused_document,)
    assert set(refusal.codes) == set(activity.refused_codes)
    assert activity.refused_codes[0] in refusal.rules and len(refusal.rules) > len(activity.refused_codes[0]) + 5
    assert mismatch.documents == (activity.mismatched_document,)
    assert mismatch.codes == ("XDSRepositoryMetadataError",)
    assert "differs from the document's SHA-1" in mismatch.rules
    assert elsewhere.refusals == ()


def test_the_csv_gives_back_the_figures(activity: Activity) -> None:
    engine = _engine(activity)
    try:
        figures = es.month_figures(engine, HOSPITAL, es.Month.of(_today()))
        series = es.monthly_series(engine, HOSPITAL, es.Month.of(_today()))
    finally:
        engine.dispose()
    rows = es.read_csv(es.to_csv(es.figures_table(figures)))
    assert rows[0] == ["Indicateur", "Valeur"]
    values = {label: int(value) for label, value in rows[1:]}
    assert values["Documents publiés"] == figures.activity.documents_published == 3
    assert values["Envois refusés"] == 2 and values["DMP créés"] == 1
    monthly = es.read_csv(es.to_csv(es.series_table(series)))
    assert len(monthly) == 13 and monthly[-1][0] == es.Month.of(_today()).key
    assert monthly[-1][1:] == [str(values[label]) for _, label in es.FIGURES]


def test_a_month_over_is_read_once(activity: Activity) -> None:
    month = es.Month.of(_today())
    later = month.end + es.CLOSED_AFTER
    engine = _engine(activity)
    try:
        current = es.month_figures(engine, HOSPITAL, month)
        hits = es._closed_month.cache_info().hits
        assert es.month_figures(engine, HOSPITAL, month, now=later) == current
        assert es.month_figures(engine, HOSPITAL, month, now=later) == current
        assert es._closed_month.cache_info().hits == hits + 1
        # Kept in the database too: another process (or this one restarted) reads it there.
        assert kept_months(engine, HOSPITAL, [month.key]) == {month.key: current.activity}
        es._closed_month.cache_clear()
        assert es.month_figures(engine, HOSPITAL, month, now=later) == current
        assert es._closed_month.cache_info() == (1, 0, es._closed_month.size, 1)
    finally:
        engine.dispose()


def test_the_command_line_gives_the_same_figures(activity: Activity) -> None:
    month = es.Month.of(_today()).key
    out = activity.server.cli(
        "stats", "--structure", HOSPITAL, "--month", month, "--refusals-on", _today().isoformat(), "--format", "json"
    )
    data = json.loads(out)
    (figures,) = data["figures"]
    assert (figures["documents_published"], figures["submissions_refused"], figures["dmps_created"]) == (3, 2, 1)
    refusals = data[f"refus-{HOSPITAL}-{_today().isoformat()}"]
    assert [r["Documents"] for r in refusals] == [activity.refused_document, activity.mismatched_document]
    assert refusals[1]["Codes d'erreur"] == "XDSRepositoryMetadataError"
    table = activity.server.cli("stats", "--structure", HOSPITAL, "--month", month, "--year-to", month)
    assert "Documents publiés" in table and "Activité mois par mois" in table
    other = json.loads(activity.server.cli("stats", "--structure", OTHER, "--month", month, "--format", "json"))
    assert other["figures"][0]["documents_published"] == 1


def test_the_trace_still_verifies(activity: Activity) -> None:
    """The refusals' documents and codes are in the row's own fields: the chain is whole."""
    assert "intact" in activity.server.cli("audit", "verify")


def test_the_series_read_in_one_pass_gives_each_months_own_figures(activity: Activity) -> None:
    """Twelve months are read in one pass (storage.stats.activities): each month's figures are
    the ones it has read alone, a day's and the rest of its month's add up to the month's."""
    month = es.Month.of(_today())
    engine = _engine(activity)
    try:
        es._closed_month.cache_clear()
        series = es.monthly_series(engine, HOSPITAL, month.shifted(1), count=3)
        alone = [es.month_figures(engine, HOSPITAL, m.month) for m in series.months]
        day = dt.datetime.combine(_today(), dt.time(), dt.UTC)
        split = activities(engine, HOSPITAL, [(month.start, day), (day, day + dt.timedelta(days=1))])
        gap = activities(engine, HOSPITAL, [(month.shifted(-1).start, month.start), (day, month.end)])
    finally:
        engine.dispose()
    assert series.months == tuple(alone)
    assert series.months[1].activity.documents_published == 3 and series.months[2].activity.documents_published == 0
    whole = series.months[1].activity
    assert split[0].documents_published + split[1].documents_published == whole.documents_published
    # All of it happened today; the consent is dated as the software dated it (maybe earlier).
    assert split[1] == gap[1]
    assert dataclasses.replace(split[1], consents_collected=whole.consents_collected) == whole


def test_the_operator_keeps_every_active_structures_past_months(activity: Activity) -> None:
    """`dmp-xds stats-keep` (nightly): the months over are computed once and kept for every
    structure that acted, so no first page reads them from the trace; a second run computes none."""
    month = es.Month.of(_today())
    engine = _engine(activity)
    try:
        es._closed_month.cache_clear()
        later = month.end + es.CLOSED_AFTER  # the month under way is over by then
        done = dict(es.keep_past_months(engine, count=2, now=later))
        assert {HOSPITAL, OTHER} <= set(done)
        kept = kept_months(engine, HOSPITAL, [month.key])
        assert kept[month.key].documents_published == 3
        assert all(count == 0 for count in dict(es.keep_past_months(engine, count=2, now=later)).values())
    finally:
        engine.dispose()
    printed = activity.server.cli("stats-keep")
    assert "structure(s)" in printed and "computed and kept" in printed
