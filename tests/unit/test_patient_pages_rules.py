"""The pure helpers of the patient's pages: dates as the pages say them, the INS of a URL, the
text of a short information shown back in its form."""

from __future__ import annotations

import datetime as dt

import pytest

from dmp_xds.security.web_principal import patient_principal
from dmp_xds.services.patient_seeds import note_text
from dmp_xds.transport.web.http import HttpError
from dmp_xds.transport.web.patient_pages import _note_body, day, moment, patient_id_of

PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"


def test_dates_in_french() -> None:
    assert day("20240312") == "12/03/2024"
    assert day("20240312101500") == "12/03/2024"
    assert day("2024-03-12") == "12/03/2024"
    assert day("2024") == "2024"
    assert moment("2026-12-06T03:11:00+00:00") == "06/12/2026 03:11 UTC"
    assert moment(dt.datetime(2026, 12, 6, 4, 11, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == "06/12/2026 03:11 UTC"
    assert moment(None) == ""


def test_the_ins_of_a_url() -> None:
    me = patient_principal(PATIENT)
    assert patient_id_of(me, "2840599123456") == PATIENT
    # Another INS keeps the root: the service refuses it, traced on that patient's history.
    assert patient_id_of(me, "2910599123456") == "2910599123456^^^&1.2.250.1.213.1.4.10&ISO"
    for bad in ("2840599123456^^^&1.2.3&ISO", "x" * 21, "../etc"):
        with pytest.raises(HttpError) as refused:
            patient_id_of(me, bad)
        assert refused.value.status == 404


def test_a_short_information_is_shown_without_its_title() -> None:
    assert _note_body(note_text("allergies", "Pénicilline\nArachide")) == "Pénicilline\nArachide"
    assert _note_body(b"un texte sans titre") == "un texte sans titre"
