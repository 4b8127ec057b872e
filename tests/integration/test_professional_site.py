"""The professionals' web site's use cases against a real store (SQLite and PostgreSQL), with
documents published over the real SOAP path (ITI-41 over TLS with a card and its VIHF): the
same answers as SOAP (a masked document hidden, a blocked professional refused, a CPE card
limited by its matrix cell), the access history's rules, the care pathway's buckets, and a trace
row for every page, refusals included."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

import soap_messages as soap
from dmp_xds.config import load_settings, resolve
from dmp_xds.dmp.policy import BLOCKED_REASON
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import load_pem_certificates
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import Principal
from dmp_xds.services import professional_site as site
from dmp_xds.services.context import Services
from dmp_xds.services.professional_site.dossier_patient import LATEST
from dmp_xds.storage import trail as t
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.document_store import open_blob_store
from dmp_xds.storage.store import RegistryStore
from dmp_xds.storage.trail import AuditEntry
from dmp_xds.transport.security import build_security
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Submission
from factories import make_author, make_code, make_document_entry, make_submission, make_submission_set, new_unique_id
from secure_server import MASKED, PATIENT, SecureServer, start_secure_server, stop_secure_server, vihf
from xds_server import BACKENDS, database_for, documents_for

OTHER = "1840599123456^^^&1.2.250.1.213.1.4.10&ISO"  # a DMP the pharmacist is not authorized on
CLOSING = "2750599123456^^^&1.2.250.1.213.1.4.10&ISO"
SOMEONE_ELSE = "899999999999"  # the author of the masked document
INS = PATIENT.split("^", 1)[0]


@dataclass
class Site:
    server: SecureServer
    pki: GeneratedPki
    services: Services
    engine: Engine
    documents: dict[str, str]  # name -> uniqueId
    contents: dict[str, bytes]

    def card(self, name: str) -> Principal:
        """The card holder's principal as the web's sign-in makes it from the client certificate:
        the certificate checked by the trust store, an unsigned direct-mode identity, normal access,
        acting for the structure the PKI's identity works in (a card's certificate names none)."""
        security = self.services.security
        assert security is not None
        chain = load_pem_certificates(Path(self.pki.identity(name).certificate).read_bytes())
        holder = security.trust.check(chain).holder
        assert holder is not None
        return Principal(
            kind="professional",
            user_id=holder.national_id,
            name=holder.display_name,
            roles=tuple(filter(None, (holder.profession_code, *holder.specialties))),
            structure_id=self.pki.identity(name).structure_id,
            sector="",
            access_mode=sv.ACCESS_NORMAL,
            access_reason="",
            patient_id="",
            software="dmp-xds web",
            authentication_mode=sv.AUTHENTICATION_DIRECT,
            assertion_id="",
            signer=holder,
            profession=holder.profession_code,
            specialty=holder.specialties[0] if holder.specialties else "",
            card_type=holder.card_type,
            signed=False,
        )

    def id_of(self, name: str) -> str:
        return self.pki.identity(name).national_id

    def trace(self, patient: str = PATIENT, limit: int = 1) -> list[AuditEntry]:
        security = self.services.security
        assert security is not None
        return security.audit.history(patient, limit)

    def soap_search(self, card: str) -> soap.SoapResponse:
        request = soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS,
            {
                v.P_DE_PATIENT_ID: [f"'{PATIENT}'"],
                v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"],
            },
        )
        return self.server.call("registry", request, vihf(self.pki, card, PATIENT), card=card)


def unique_ids_of(response: soap.SoapResponse) -> set[str]:
    return {
        e.get("value", "")
        for e in response.payload.iter(v.TAG_EXTERNAL_IDENTIFIER)
        if e.get("identificationScheme") == v.DE_UNIQUE_ID
    }


def published(name: str, start: str, klass: str = "11", codes: tuple = (), author: str = "") -> Submission:
    entry = make_document_entry(
        patient_id=PATIENT,
        unique_id=new_unique_id(),
        title=[],
        service_start_time=start,
        creation_time=start,
        class_code=make_code(klass, "1.2.250.1.213.1.1.4.1", f"classe {klass}"),
        hash=None,
        size=None,
        repository_unique_id=None,
    )
    entry.confidentiality_codes = [*entry.confidentiality_codes, *codes]
    if author:
        entry.authors = [make_author(person=f"{author}^AUTRE^Alain^^^Dr^^^&1.2.250.1.71.4.2.1&ISO")]
    return make_submission(
        1, submission_set=make_submission_set(patient_id=PATIENT, unique_id=new_unique_id()), documents=[entry]
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def web(request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = start_secure_server(
        tmp_path_factory.mktemp(f"pro-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    engine = None
    try:
        doctor = pki.identity("doctor").national_id
        for patient in (PATIENT, OTHER, CLOSING):
            server.cli("dmp", "create", patient, "--collected-by", doctor)
            server.cli("dmp", "grant", patient, doctor)
        server.cli("dmp", "grant", PATIENT, pki.identity("doctor2").national_id, "--kind", "attending")
        server.cli("dmp", "grant", PATIENT, pki.identity("nurse").national_id)
        server.cli("dmp", "grant", PATIENT, pki.identity("secretary").national_id)
        documents: dict[str, str] = {}
        contents: dict[str, bytes] = {}
        for name, start, klass, codes, author in (
            ("report", "20240312093000", "11", (), ""),
            ("later", "20240320080000", "11", (), ""),
            ("biology", "20230105100000", "10", (), ""),
            ("masked", "20240315100000", "11", (MASKED,), SOMEONE_ELSE),
        ):
            submission = published(name, start, klass, codes, author)
            entry = submission.documents[0]
            content = f"contenu {name}".encode()
            response = server.call(
                "repository",
                soap.provide_and_register(submission, {entry.entry_uuid: content}, mtom=False),
                vihf(pki, "doctor", PATIENT),
            )
            assert response.status == "Success", response.fault_reason
            assert entry.unique_id
            documents[name], contents[name] = entry.unique_id, content
        settings = resolve(load_settings(environ=server.env))
        engine = create_engine_for(settings.database_url)
        security = build_security(settings, engine)
        services = Services(settings, RegistryStore(engine), open_blob_store(settings), security=security)
        yield Site(server, pki, services, engine, documents, contents)
    finally:
        if engine is not None:
            engine.dispose()
        stop_secure_server(server)


def test_dashboard_lists_the_authorized_patients_and_is_traced(web: Site) -> None:
    board = site.dashboard(web.services, web.card("doctor"))
    listed = {entry.identifiers[0][0] for entry in board.patients}
    assert {INS, OTHER.split("^")[0], CLOSING.split("^")[0]} <= listed
    assert not any(p.identifiers[0][0] == INS for p in site.dashboard(web.services, web.card("pharmacist")).patients)


def test_the_existence_test_tells_the_state_and_the_actions_it_allows(web: Site) -> None:
    pharmacist = site.existence_test(web.services, web.card("pharmacist"), INS)
    assert pharmacist.exists and pharmacist.status == "open" and pharmacist.authorization == "NON_EXISTANTE"
    assert site.PageAction.CONSULT not in pharmacist.actions
    assert {site.PageAction.AUTHORIZE, site.PageAction.BREAK_GLASS} <= set(pharmacist.actions)
    last = web.trace()[0]
    assert (last.event.action, last.event.outcome, last.event.actor_id) == (
        t.DMP_READ,
        t.SUCCESS,
        web.id_of("pharmacist"),
    )
    attending = site.existence_test(web.services, web.card("doctor2"), INS)
    assert attending.attending and site.PageAction.CONSULT in attending.actions
    nobody = site.existence_test(web.services, web.card("doctor"), "1010101010101")
    assert not nobody.exists and nobody.actions == ()


def test_documents_are_those_soap_gives_a_masked_one_hidden(web: Site) -> None:
    doctor = site.documents(web.services, web.card("doctor"), INS, site.DocumentFilters())
    shown = {d.unique_id for d in doctor.documents}
    assert web.documents["masked"] not in shown
    assert shown == unique_ids_of(web.soap_search("doctor"))
    last = web.trace()[0]
    assert last.event.action == t.SEARCH and set(last.event.documents) == shown
    # The attending doctor sees the masked document, flagged; and may leave it out.
    attending = site.documents(web.services, web.card("doctor2"), INS, site.DocumentFilters())
    masked = [d for d in attending.documents if d.unique_id == web.documents["masked"]]
    assert masked and masked[0].masked
    unmasked = site.documents(web.services, web.card("doctor2"), INS, site.DocumentFilters(include_masked=False))
    assert web.documents["masked"] not in {d.unique_id for d in unmasked.documents}


def test_document_filters_reach_the_stored_query(web: Site) -> None:
    filters = site.DocumentFilters(
        date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 3, 12), class_codes=(("11", "1.2.250.1.213.1.1.4.1"),)
    )
    found = site.documents(web.services, web.card("doctor"), INS, filters)
    assert [d.unique_id for d in found.documents] == [web.documents["report"]]
    assert not site.documents(web.services, web.card("doctor"), INS, site.DocumentFilters(author="nobody")).documents


def test_one_document_is_read_as_iti43_reads_it(web: Site) -> None:
    read = site.document(web.services, web.card("doctor"), INS, web.documents["report"])
    assert read.content() == web.contents["report"] and read.mime_type == "text/plain"
    assert read.size == len(web.contents["report"]) and read.document.unique_id == web.documents["report"]
    last = web.trace()[0]
    assert (last.event.action, last.event.outcome, last.event.documents) == (
        t.RETRIEVE,
        t.SUCCESS,
        (web.documents["report"],),
    )
    with pytest.raises(site.Refused) as refused:
        site.document(web.services, web.card("doctor"), INS, web.documents["masked"])
    assert refused.value.status == 404
    last = web.trace()[0]
    assert (last.event.action, last.event.outcome) == (t.RETRIEVE, t.DENIED)
    assert "masked" in last.event.detail


def test_an_unauthorized_professional_confirms_or_breaks_the_glass(web: Site) -> None:
    pharmacist = web.card("pharmacist")
    with pytest.raises(site.NeedsAuthorization) as needed:
        site.patient_page(web.services, pharmacist, INS)
    assert needed.value.may_authorize and needed.value.may_break_glass
    last = web.trace()[0]
    assert (last.event.action, last.event.outcome) == (t.SEARCH, t.DENIED)
    assert "has not authorized" in last.event.detail
    page = site.patient_page(web.services, site.break_glass(pharmacist, "patient inconscient"), INS)
    assert page.emergency and page.documents_shown
    # The matrix's 3.2 row for masked documents, column Ab: Y(7), the patient allows break-glass.
    assert web.documents["masked"] in {d.unique_id for d in page.latest}
    last = web.trace()[0]
    assert last.emergency and last.event.detail.startswith("EMERGENCY ACCESS")


def test_an_unauthorized_professional_declares_the_patients_consent_then_consults(web: Site) -> None:
    occupational = web.card("occupational")  # column C of the matrix: TD0.3 N
    with pytest.raises(site.Refused) as refused:
        site.authorize_self(web.services, occupational, INS)
    assert "TD0.3 declare oneself authorized" in refused.value.reason
    last = web.trace()[0]
    assert (last.event.action, last.event.outcome) == (t.AUTHORIZATION_SELF, t.DENIED)
    author = web.card("ans-author")
    with pytest.raises(site.NeedsAuthorization):
        site.patient_page(web.services, author, INS)
    site.authorize_self(web.services, author, INS)
    last = web.trace()[0]
    assert (last.event.action, last.event.outcome) == (t.AUTHORIZATION_SELF, t.SUCCESS)
    page = site.patient_page(web.services, author, INS)
    assert page.documents_shown and not page.emergency
    assert site.PageAction.CONSULT in site.existence_test(web.services, author, INS).actions


def test_another_patients_refusal_is_traced_on_that_patient(web: Site) -> None:
    with pytest.raises(site.Refused) as refused:
        site.documents(web.services, web.card("nurse"), OTHER.split("^")[0], site.DocumentFilters())
    assert refused.value.status == 403
    last = web.trace(OTHER)[0]
    assert (last.event.action, last.event.outcome, last.event.actor_id) == (t.SEARCH, t.DENIED, web.id_of("nurse"))


def test_a_cpe_card_sees_patient_data_only_as_its_matrix_cell_says(web: Site) -> None:
    secretary = web.card("secretary")
    page = site.patient_page(web.services, secretary, INS)
    assert not page.documents_shown and page.latest == () and page.patient.emergency_access_allowed
    with pytest.raises(site.Refused) as refused:
        site.documents(web.services, secretary, INS, site.DocumentFilters())
    soap_error = web.soap_search("secretary").payload.find(f".//{v.TAG_REGISTRY_ERROR}")
    assert soap_error is not None
    assert soap_error.get("codeContext") == f"access refused: {refused.value.reason}"
    assert "3.1" in refused.value.reason  # the matrix cell: row 3.1, column E


def test_the_patient_page_shows_what_was_added_since_the_last_visit(web: Site) -> None:
    doctor = web.card("doctor")
    first = site.patient_page(web.services, doctor, INS)
    assert first.latest and len(first.latest) <= LATEST
    assert first.recent_accesses and all(a.actor_id == web.id_of("doctor") for a in first.recent_accesses)
    added = published("new", "20240401080000")
    entry = added.documents[0]
    response = web.server.call(
        "repository",
        soap.provide_and_register(added, {entry.entry_uuid: b"nouveau"}, mtom=False),
        vihf(web.pki, "doctor2", PATIENT),
        card="doctor2",
    )
    assert response.status == "Success", response.fault_reason
    again = site.patient_page(web.services, doctor, INS)
    assert [d.unique_id for d in again.new_since_last_visit] == [entry.unique_id]


def test_the_history_shows_the_attending_doctor_everything_and_others_their_own(web: Site) -> None:
    site.documents(web.services, web.card("doctor"), INS, site.DocumentFilters())
    own = site.access_history(web.services, web.card("doctor"), INS)
    assert not own.everyone and own.entries
    assert {e.actor_id for e in own.entries} == {web.id_of("doctor")}
    everything = site.access_history(web.services, web.card("doctor2"), INS)
    assert everything.everyone and {web.id_of("doctor"), web.id_of("pharmacist")} <= {
        e.actor_id for e in everything.entries
    }
    assert not everything.last_year  # fewer than 100 rows this year: the last 100
    assert any(e.emergency for e in everything.entries)
    assert web.trace()[0].event.action == t.HISTORY_READ


def test_the_care_pathway_buckets_documents_by_class_and_period(web: Site) -> None:
    doctor2 = web.card("doctor2")
    whole = site.care_pathway(web.services, doctor2, INS)
    assert whole.columns[0] == "2023" and whole.columns[-1] == "2024"
    by_class = {row.class_code: row for row in whole.rows}
    assert [b.count for b in by_class["10"].buckets] == [1, 0]
    month = site.care_pathway(web.services, doctor2, INS, site.Zoom.MONTH, "2024-03")
    cells = {b.key: b.count for b in next(r for r in month.rows if r.class_code == "11").buckets}
    assert (cells["2024-03-12"], cells["2024-03-15"], cells["2024-03-20"]) == (1, 1, 1)
    assert web.trace()[0].event.action == t.SEARCH


def test_the_attending_doctor_manages_authorizations_and_blocks(web: Site) -> None:
    attending = web.card("doctor2")
    managed = site.record_management(web.services, attending, INS)
    assert managed.attending and managed.may_block
    assert web.id_of("nurse") in {entry.national_id for entry in managed.authorizations}
    assert web.trace()[0].event.action == t.AUTHORIZATIONS_READ
    with pytest.raises(site.Refused):
        site.block_professional(web.services, web.card("doctor"), INS, web.id_of("nurse"))
    assert (web.trace()[0].event.action, web.trace()[0].event.outcome) == (t.AUTHORIZATION_BLOCK, t.DENIED)
    site.block_professional(web.services, attending, INS, web.id_of("nurse"))
    with pytest.raises(site.Refused) as refused:
        site.documents(web.services, web.card("nurse"), INS, site.DocumentFilters())
    assert refused.value.reason == BLOCKED_REASON
    assert web.soap_search("nurse").fault_reason == f"access refused: {BLOCKED_REASON}"


def test_closing_and_reactivating_a_record(web: Site) -> None:
    ins = CLOSING.split("^")[0]
    doctor = web.card("doctor")
    site.close_record(web.services, doctor, ins, "FERMETURE_DEMANDE_PATIENT")
    assert web.trace(CLOSING)[0].event.action == t.DMP_CLOSE
    closed = site.existence_test(web.services, doctor, ins)
    assert closed.status == "closed" and site.PageAction.REACTIVATE in closed.actions
    with pytest.raises(site.Refused) as refused:
        site.documents(web.services, doctor, ins, site.DocumentFilters())
    assert refused.value.status == 409
    site.reactivate_record(web.services, doctor, ins, patient_consents=True)
    assert site.existence_test(web.services, doctor, ins).status == "open"


def test_parametrages_show_the_card(web: Site) -> None:
    settings = site.card_settings(web.card("nurse"))
    identity = web.pki.identity("nurse")
    assert settings.national_id == identity.national_id and settings.family_name == identity.family_name
    assert settings.default_situation is not None and settings.default_situation.structure_id == identity.structure_id
    assert site.card_settings(web.card("pharmacist")).situations == ()  # no structure known: none to offer
