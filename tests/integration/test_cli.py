"""The command line, run as a user runs it (a separate process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from xds_server import free_port


def run(tmp_path, *args, env=None, timeout=60):
    environment = {**os.environ, "DMP_XDS_DATA_DIR": str(tmp_path / "var"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_config_show_includes_the_repository_unique_id(tmp_path):
    # A password that no setting's name contains (s3_secret_access_key is one such name).
    result = run(tmp_path, "config", "show", env={"DMP_XDS_DATABASE_URL": "postgresql://u:pw-4711@db/x"})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["repository_unique_id"].startswith("2.25.")
    assert shown["database_url"] == "postgresql://***@db/x"  # never print a password
    assert "pw-4711" not in result.stdout
    s3 = {
        "DMP_XDS_BLOB_STORE": "s3://documents/x",
        "DMP_XDS_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "DMP_XDS_S3_ACCESS_KEY_ID": "KEY",
        "DMP_XDS_S3_SECRET_ACCESS_KEY": "s3-pw-0815",
    }
    result = run(tmp_path, "config", "show", env=s3)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["s3_secret_access_key"] == "(set)" and "s3-pw-0815" not in result.stdout


def test_patient_add_validates_the_identifier(tmp_path):
    result = run(tmp_path, "patient", "add", "not-a-cx")
    assert result.returncode != 0
    assert "is not a patient id" in result.stderr
    ok = run(tmp_path, "patient", "add", "1234567890123^^^&1.2.250.1.213.1.4.8&ISO")
    assert ok.returncode == 0 and "added" in ok.stdout
    again = run(tmp_path, "patient", "add", "1234567890123^^^&1.2.250.1.213.1.4.8&ISO")
    assert "already known" in again.stdout


def test_bad_configuration_is_a_clear_error(tmp_path):
    result = run(tmp_path, "config", "show", env={"DMP_XDS_PORT": "eighty"})
    assert result.returncode != 0
    assert "port" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.postgres
def test_serve_refuses_a_database_that_is_not_migrated(tmp_path, postgres_server):
    url = postgres_server.url_for(postgres_server.create_database("unmigrated"))
    result = run(tmp_path, "serve", "--port", str(free_port()), env={"DMP_XDS_DATABASE_URL": url})
    assert result.returncode != 0
    assert "dmp-xds db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
    upgraded = run(tmp_path, "db", "upgrade", env={"DMP_XDS_DATABASE_URL": url})
    assert upgraded.returncode == 0, upgraded.stderr
