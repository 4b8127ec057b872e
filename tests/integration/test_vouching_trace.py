"""A trace row made on a structure's word names that structure, in the trace and in its ATNA
message; a card holder's row does not claim any vouching."""

from __future__ import annotations

from lxml import etree

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder
from dmp_xds.security.vihf import Principal
from dmp_xds.services.gate import SecurityServices, trace_access, vouching_note
from dmp_xds.services.notifications import Notifier
from dmp_xds.storage import trail as t
from dmp_xds.storage.audit_keys import AuditKey
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.tables import metadata
from dmp_xds.storage.trail import AuditEntry, AuditTrail
from dmp_xds.transport.atna import audit_message

PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
PORTAL = Holder("establishment", "", "", "", "", "PORTAIL PATIENT", "1990000025", "OU=1990000025", "00")
CARD = Holder("professional", "810001234568", "MARTIN", "MARIE", "Médecin", "", "", "CN=810001234568", "00")


def patient() -> Principal:
    return Principal(
        "patient",
        PATIENT,
        "le patient",
        (sv.PATIENT_ROLE,),
        "1990000025",
        "",
        sv.ACCESS_NORMAL,
        "",
        PATIENT,
        "portal 1",
        "",
        "_p",
        PORTAL,
    )


def doctor() -> Principal:
    return Principal(
        "professional",
        CARD.national_id,
        "Dr Martin",
        ("10",),
        "1990000017",
        "SA07",
        sv.ACCESS_NORMAL,
        "",
        PATIENT,
        "lps 1",
        "",
        "_d",
        CARD,
    )


def test_vouching_note() -> None:
    assert vouching_note(patient()) == "vouched for by structure 1990000025 (PORTAIL PATIENT)"
    assert vouching_note(doctor()) == ""


def test_the_vouching_structure_is_in_the_row_and_its_atna_message() -> None:
    engine = create_engine_for("sqlite://")
    metadata.create_all(engine)
    exported: list[AuditEntry] = []
    security = SecurityServices(
        None,
        None,
        DmpStore(engine),
        AuditTrail(engine, AuditKey(bytes(range(32)), "test key"), [exported.append]),
        Notifier(engine),
    )
    trace_access(security, patient(), t.SEARCH, t.SUCCESS, detail="the patient acts on their own record")
    trace_access(security, doctor(), t.SEARCH, t.SUCCESS, detail="authorized by the patient")
    by_portal, by_card = (entry.event for entry in exported)
    assert by_portal.structure_id == "1990000025"
    assert by_portal.detail == (
        "vouched for by structure 1990000025 (PORTAIL PATIENT); the patient acts on their own record"
    )
    assert by_card.detail == "authorized by the patient"
    message = etree.fromstring(audit_message(exported[0], "dmp-xds"))
    details = {d.get("type"): d.get("value") for d in message.iter("ParticipantObjectDetail")}
    assert details["structure_id"] == "1990000025" and "vouched for by structure 1990000025" in details["detail"]
    engine.dispose()
