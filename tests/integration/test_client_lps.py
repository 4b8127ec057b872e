"""`dmp-xds submit | query | retrieve` as a DMP-compatible LPS, typed as a user types them
(subprocesses), against a secured server configured as `make serve` runs it: CI-SIS profile,
TLS with client certificates, a VIHF on every call, the DMP policy, no VIHF audience. They
reach it at the DMP's paths (`/si-dmp-server/v2/services/`), in direct mode (the card) and
indirect mode (the establishment's certificate); bad inputs end with a clear message and an
exit code, never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmp_xds.security.pki import create_test_pki
from factories import ANS_EXAMPLES
from secure_server import SecureServer, start_secure_server, stop_secure_server

ANS = ANS_EXAMPLES.parent
CDA = ANS_EXAMPLES / "ANEST-CR-ANEST_2022.01.xml"
CDA_ID = "1.2.250.1.213.1.1.1.40.2022.1.1"  # its ClinicalDocument/id
CDA_UNIQUE_ID_PREFIX = "documentUniqueId: "
PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"  # the INS of most ANS CDA examples
DMP_PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"  # the DMP's form of it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    pki = create_test_pki(tmp_path_factory.mktemp("lps-pki"))
    running = start_secure_server(
        tmp_path_factory.mktemp("lps-server"),
        pki,
        tls=True,
        extra={
            "DMP_XDS_PROFILE": "cisis",
            "DMP_XDS_VALUE_SETS": str(ANS / "jeuxDeValeurs"),
            "DMP_XDS_CDA_SCHEMA": str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
            "DMP_XDS_SCHEMATRONS": "",
            "DMP_XDS_VIHF_AUDIENCE": "",  # as `make serve`
        },
    )
    try:
        running.cli("patient", "add", PATIENT)
        running.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
        running.cli("dmp", "grant", PATIENT, pki.identity("nurse").national_id)
        yield running
    finally:
        stop_secure_server(running)


def dmp_xds(server: SecureServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server.env, "DMP_XDS_URL": server.url + "/si-dmp-server/v2/services/"}
    return subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def no_traceback(run: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in run.stderr + run.stdout, run.stderr


def submitted_unique_id(run: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in run.stdout.splitlines() if line.startswith(CDA_UNIQUE_ID_PREFIX)]
    return lines[0].removeprefix(CDA_UNIQUE_ID_PREFIX)


def fresh_cda(tmp_path: Path, n: int) -> Path:
    """The ANS example with a uniqueId of its own (its ClinicalDocument/id), so that each test
    publishes a new document."""
    text = CDA.read_text(encoding="utf-8")
    path = tmp_path / f"cda-{n}.xml"
    path.write_text(text.replace(f'<id root="{CDA_ID}"/>', f'<id root="{CDA_ID}.{n}"/>', 1), encoding="utf-8")
    assert path.read_text(encoding="utf-8") != text
    return path


def test_direct_mode_submit_query_retrieve(server: SecureServer, tmp_path: Path) -> None:
    pki = str(server.pki.directory)
    cda = fresh_cda(tmp_path, 1)
    run = dmp_xds(server, "submit", str(cda), "--pki", pki)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "status: Success" in run.stdout
    unique_id = submitted_unique_id(run)

    run = dmp_xds(server, "query", "--pki", pki, "find-documents", "--patient", DMP_PATIENT)
    assert run.returncode == 0 and "Success: " in run.stdout, run.stdout + run.stderr
    run = dmp_xds(server, "query", "--pki", pki, "--xml", "find-documents", "--patient", DMP_PATIENT)
    assert f'value="{unique_id}"' in run.stdout, run.stdout + run.stderr

    run = dmp_xds(server, "query", "--pki", pki, "--xml", "get-documents", unique_id, "--patient", PATIENT)
    assert run.returncode == 0 and f'value="{unique_id}"' in run.stdout, run.stdout + run.stderr

    output = tmp_path / "back.xml"
    run = dmp_xds(server, "retrieve", unique_id, "--pki", pki, "--patient", PATIENT, "-o", str(output))
    assert run.returncode == 0, run.stdout + run.stderr
    assert output.read_bytes() == cda.read_bytes()

    # The server, not the client, decided who that was: its trace names the card holder.
    history = server.cli("audit", "history", PATIENT)
    assert server.pki.identity("doctor").national_id in history


def test_indirect_mode_acts_through_the_establishment(server: SecureServer, tmp_path: Path) -> None:
    """The nurse publishes through the hospital's certificate, then gets the document's reference
    (GetDocuments as ObjectRef: what the rights matrix lets an establishment find, e.g. before
    deleting it)."""
    pki = str(server.pki.directory)
    indirect = ["--pki", pki, "--identity", "nurse", "--mode", "indirect"]
    run = dmp_xds(server, "submit", str(fresh_cda(tmp_path, 2)), *indirect)
    assert run.returncode == 0, run.stdout + run.stderr
    unique_id = submitted_unique_id(run)
    run = dmp_xds(server, "query", *indirect, "--object-ref", "--xml", "get-documents", unique_id, "--patient", PATIENT)
    assert run.returncode == 0 and run.stdout.count("ObjectRef ") == 1, run.stdout + run.stderr
    history = server.cli("audit", "history", PATIENT)
    assert server.pki.identity("hospital").structure_id in history


def test_without_credentials_the_secured_server_refuses(server: SecureServer) -> None:
    """Without --pki (but trusting the server with --cacert): no client certificate, no VIHF;
    the server's refusal is shown as it says it."""
    run = dmp_xds(server, "submit", str(CDA), "--cacert", str(server.pki.anchors))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "the server refused the request (SOAP Fault)" in run.stderr and "no client certificate" in run.stderr
    no_traceback(run)


def test_a_refusal_is_a_clear_message_and_exit_code_1(server: SecureServer) -> None:
    """The pharmacist is not authorized on this record: the server refuses with a SOAP Fault."""
    run = dmp_xds(
        server,
        "query",
        "--pki",
        str(server.pki.directory),
        "--identity",
        "pharmacist",
        "find-documents",
        "--patient",
        PATIENT,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "the server refused the request (SOAP Fault)" in run.stderr
    no_traceback(run)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pki", "/nonexistent/pki"], "holds no test PKI"),
        (["--identity", "nobody"], "no identity 'nobody'"),
        (["--identity", "hospital"], "holds no card"),
        (["--mode", "indirect", "--establishment", "doctor2"], "is not an establishment"),
        (["--cacert", "/nonexistent/ca.pem"], "no such file"),
        (["--access-mode", "bris_de_glace"], "give --reason"),
    ],
)
def test_bad_credentials_options_are_usage_errors(server: SecureServer, args: list[str], message: str) -> None:
    base = ["--pki", str(server.pki.directory)] if "--pki" not in args else []
    run = dmp_xds(server, "submit", str(CDA), *base, *args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr
    no_traceback(run)


def test_retrieve_needs_the_patient_with_pki(server: SecureServer) -> None:
    run = dmp_xds(server, "retrieve", "1.2.3", "--pki", str(server.pki.directory))
    assert run.returncode == 2 and "give --patient" in run.stderr, run.stderr
    no_traceback(run)


def test_an_untrusted_server_certificate_is_refused(server: SecureServer, tmp_path: Path) -> None:
    other = create_test_pki(tmp_path / "other")
    run = dmp_xds(server, "submit", str(CDA), "--pki", str(server.pki.directory), "--cacert", str(other.anchors))
    assert run.returncode == 1 and "TLS refused" in run.stderr, run.stderr
    no_traceback(run)


def test_a_server_that_is_not_there(server: SecureServer) -> None:
    run = dmp_xds(server, "submit", str(CDA), "--pki", str(server.pki.directory), "--url", "https://127.0.0.1:9/")
    assert run.returncode == 1 and "cannot reach the server" in run.stderr, run.stderr
    no_traceback(run)


def copied_pki(server: SecureServer, tmp_path: Path) -> Path:
    """A copy of the server's PKI whose identities.json points at the copy's files."""
    import json
    import shutil

    copy = tmp_path / "pki"
    shutil.copytree(server.pki.directory, copy)
    manifest = (copy / "identities.json").read_text()
    (copy / "identities.json").write_text(manifest.replace(str(server.pki.directory), str(copy)))
    assert json.loads((copy / "identities.json").read_text())["identities"]["doctor"]["key"].startswith(str(copy))
    return copy


def test_a_missing_card_key_is_a_clear_message(server: SecureServer, tmp_path: Path) -> None:
    pki = copied_pki(server, tmp_path)
    (pki / "cards" / "doctor.key").unlink()
    run = dmp_xds(server, "submit", str(CDA), "--pki", str(pki))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "cannot act as doctor" in run.stderr and "doctor.key" in run.stderr
    no_traceback(run)


def test_a_password_protected_card_key_is_a_clear_message(server: SecureServer, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pki = copied_pki(server, tmp_path)
    path = pki / "cards" / "doctor.key"
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"card PIN"),
        )
    )
    run = dmp_xds(server, "submit", str(CDA), "--pki", str(pki))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "password-protected" in run.stderr
    no_traceback(run)


def test_break_glass_access_mode_reaches_the_server(server: SecureServer) -> None:
    """The pharmacist, refused in normal access, is let in with --access-mode bris_de_glace and a
    reason (the patient did not refuse it); the server traces that access as an emergency."""
    pki = str(server.pki.directory)
    query = ["query", "--pki", pki, "--identity", "pharmacist"]
    refused = dmp_xds(server, *query, "find-documents", "--patient", PATIENT)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    run = dmp_xds(
        server,
        *query,
        "--access-mode",
        "bris_de_glace",
        "--reason",
        "patient inconscient aux urgences",
        "find-documents",
        "--patient",
        PATIENT,
    )
    assert run.returncode == 0 and "Success: " in run.stdout, run.stdout + run.stderr
    entry = server.last_trace(PATIENT)
    assert entry.event.actor_id == server.pki.identity("pharmacist").national_id
    assert entry.emergency
