"""The reference client (zeep, loading the WSDL the server publishes) against a real server."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zeep

from dmp_xds.tools.client.soap import XdsClient
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from factories import PATIENT_ID, make_submission

ANS_EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "ans-testcontenucda" / "ExemplesCDA"


@pytest.fixture(scope="module")
def server(xds_server):
    xds_server.add_patient(PATIENT_ID)
    return xds_server


@pytest.mark.parametrize(
    "endpoint,operations",
    [
        ("repository", {"ProvideAndRegisterDocumentSet-b", "RetrieveDocumentSet"}),
        ("registry", {"RegisterDocumentSet-b", "RegistryStoredQuery"}),
    ],
)
def test_zeep_loads_the_published_wsdl(server, endpoint, operations):
    url = f"{server.base_url}/xds/{endpoint}?wsdl"
    client = zeep.Client(url)
    service = next(iter(client.wsdl.services.values()))
    port = next(iter(service.ports.values()))
    assert port.binding_options["address"].startswith(server.base_url + f"/xds/{endpoint}")
    names = {name.split("_", 1)[-1] for name in port.binding.all()}  # DocumentRepository_Op
    assert operations <= names


def test_zeep_client_submits_mtom_and_retrieves(server):
    client = XdsClient(server.registry_url, server.repository_url, timeout=30)
    submission = make_submission(2)
    for de in submission.documents:
        de.hash = de.size = de.repository_unique_id = None
    documents = {de.entry_uuid: os.urandom(3000) + b"\r\n" for de in submission.documents}
    response = client.provide_and_register(encode_submit_objects_request(submission), documents)
    assert response.get("status").endswith(":Success")
    wanted = [(server.repository_unique_id, de.unique_id) for de in submission.documents]
    _, retrieved = client.retrieve(wanted)
    assert retrieved == {de.unique_id: documents[de.entry_uuid] for de in submission.documents}


def test_zeep_client_registers(server):
    client = XdsClient(server.registry_url, server.repository_url, timeout=30)
    response = client.register(encode_submit_objects_request(make_submission(1, with_folder=True)))
    assert response.get("status").endswith(":Success")


def test_cli_submit_a_cda_then_retrieve_it(server, tmp_path):
    from dmp_xds.dmp.cda.header import read_cda_header

    example = next(
        p
        for p in sorted(ANS_EXAMPLES.glob("*.xml"))
        if p.stat().st_size < 200_000 and read_cda_header(p.read_bytes()).patient.ins
    )
    env = {**server.env, "DMP_XDS_URL": server.base_url}
    ins = read_cda_header(example.read_bytes()).patient.ins
    patient = f"{ins.extension}^^^&{ins.root}&ISO"
    server.add_patient(patient)
    submitted = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "submit", str(example), "--patient", patient],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    unique_id = next(line.split()[-1] for line in submitted.stdout.splitlines() if line.startswith("documentUniqueId:"))
    output = tmp_path / "out.xml"
    retrieved = subprocess.run(
        [
            sys.executable,
            "-m",
            "dmp_xds.cli",
            "retrieve",
            unique_id,
            "--repository-id",
            server.repository_unique_id,
            "--output",
            str(output),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert retrieved.returncode == 0, retrieved.stdout + retrieved.stderr
    assert hashlib.sha1(output.read_bytes()).digest() == hashlib.sha1(example.read_bytes()).digest()
