"""A failure of the server inside one of the DMP's services (HL7 V3 `patients`, the CXF services)
still leaves its one trace row, saying "internal error", and goes up to the transport, which
answers with a reference and never a stack trace; on an in-memory database with a principal built
here (the TLS + VIHF path is in test_dmpi_patients.py and test_dmpi_habilitations.py)."""

from __future__ import annotations

import pytest
from lxml import etree
from sqlalchemy import Engine

import hl7v3_messages as msg
from dmp_xds.config import Settings
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.model import DmpRecord
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder
from dmp_xds.security.vihf import Principal
from dmp_xds.services import gdp
from dmp_xds.services.context import Services
from dmp_xds.services.cxf_call import CxfCall, perform
from dmp_xds.services.gate import SecurityServices
from dmp_xds.services.notifications import Notifier
from dmp_xds.storage import trail as t
from dmp_xds.storage.audit_keys import AuditKey
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.tables import metadata
from dmp_xds.storage.trail import AuditTrail
from dmp_xds.transport.soap.faults import as_fault

INS = msg.ins(1)
PATIENT = msg.cx(INS)
HOLDER = Holder("professional", "", "", "", "", "", "", "CN=doctor", "00")


class BrokenStore(DmpStore):
    def get(self, patient_id: str) -> DmpRecord | None:
        raise RuntimeError("disk on fire")


def doctor() -> Principal:
    return Principal(
        "professional",
        "810001234565",
        "Dr Martin",
        ("10",),
        "1990000099",
        "SA07",
        sv.ACCESS_NORMAL,
        "",
        PATIENT,
        "lps 1",
        "",
        "_id",
        HOLDER,
    )


@pytest.fixture()
def engine() -> Engine:
    engine = create_engine_for("sqlite://")
    metadata.create_all(engine)
    return engine


def services(engine: Engine, store: DmpStore) -> Services:
    trail = AuditTrail(engine, AuditKey(bytes(32), "test key"))
    security = SecurityServices(None, None, store, trail, Notifier(engine))  # type: ignore[arg-type]
    return Services(Settings(profile="ihe"), None, None, security=security)  # type: ignore[arg-type]


def history(engine: Engine) -> list[tuple[str, str, str]]:
    trail = AuditTrail(engine, AuditKey(bytes(32), "test key"))
    return [(e.event.action, e.event.outcome, e.event.detail) for e in trail.history(PATIENT)]


def test_a_failure_in_the_patient_services_is_traced_and_raised(engine: Engine) -> None:
    broken = services(engine, BrokenStore(engine))
    with pytest.raises(RuntimeError) as raised:
        gdp.get_demographics(broken, doctor(), msg.element(msg.get_demographics(INS)))
    assert history(engine) == [("dmp.read", "failure", "internal error")]
    # The transport sees no refusal in it: it answers a Receiver fault with a reference.
    assert as_fault(raised.value) is None
    # The same service with a working store answers, and traces its success.
    answer = gdp.get_demographics(services(engine, DmpStore(engine)), doctor(), msg.element(msg.get_demographics(INS)))
    assert answer.tag == hv.hl7(hv.DEMOGRAPHICS)
    assert [(a, o) for a, o, _ in history(engine)] == [("dmp.read", "success"), ("dmp.read", "failure")]


def test_a_failure_in_the_cxf_services_is_traced_and_raised(engine: Engine) -> None:
    def failing(call: CxfCall) -> etree._Element:
        call.record()
        raise AssertionError("not reached")

    with pytest.raises(RuntimeError):
        perform(
            services(engine, BrokenStore(engine)),
            doctor(),
            cv.LIST_AUTHORIZATION_BY_PATIENT,
            t.AUTHORIZATIONS_READ,
            failing,
        )
    assert history(engine) == [(t.AUTHORIZATIONS_READ, "failure", "internal error")]
