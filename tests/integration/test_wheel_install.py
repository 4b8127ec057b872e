"""dmp-xds installed as a user installs it: a wheel built from this checkout (through its sdist),
in a fresh virtual environment outside the checkout, run with no PYTHONPATH. From there,
`db upgrade`, `serve`, `?wsdl` and an ITI-41 + ITI-43 round trip with the installed `submit` and
`retrieve` commands must work: nothing may be looked up relative to a source tree.

Offline: the build uses the test environment's setuptools (a test requirement) without an
isolated build environment, and the new environment sees the test environment's third-party
packages through a .pth file instead of downloading them; only dmp-xds is installed in it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from lxml import etree

from dmp_xds.config import RESOURCE_FOLDERS
from dmp_xds.storage.database import head_revision
from factories import PATIENT_ID
from xds_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SECONDS = 300
COMMAND_SECONDS = 120
STARTUP_SECONDS = 60
STOP_SECONDS = 15
MIN_SETUPTOOLS = 77  # [build-system] requires of pyproject.toml
# Not copied to the build: what is not part of the project's source (anywhere in the tree)...
JUNK = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
# ...and at the top level, what a checkout accumulates (the venv, data, earlier builds).
TOP_LEVEL_JUNK = {".git", ".venv", "var", "build", "dist", "benchmarks"}
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP12_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"
XSD_SCHEMA = "{http://www.w3.org/2001/XMLSchema}schema"
ENDPOINTS = (
    "xds/registry",
    "xds/repository",
    "si-dmp-server/v2/services/patients",
    "si-dmp-server/v2/services/habilitations",
)
DOCUMENT = b"Compte rendu de consultation, depuis un paquet installe.\r\n"


@dataclass
class Installed:
    venv: Path
    site_packages: Path
    wheel: Path
    sdist: Path
    workdir: Path  # the current directory of every command: outside the checkout
    env: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "dmp-xds"), *args],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )


def _clean_environment() -> dict[str, str]:
    """The caller's environment without what points into the checkout or sets dmp-xds up."""
    dropped = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("DMP_XDS_")}


def _ignored(directory: str, names: list[str]) -> set[str]:
    junk = {n for n in names if n in JUNK or n.endswith(".egg-info")}
    if Path(directory) == REPO_ROOT:
        junk |= {n for n in names if n in TOP_LEVEL_JUNK}
    return junk


def _check(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _require_build_backend() -> None:
    version = importlib.metadata.version("setuptools")
    if int(version.split(".")[0]) < MIN_SETUPTOOLS:
        pytest.fail(
            f"this test builds the wheel offline with the test environment's setuptools, which must be "
            f">= {MIN_SETUPTOOLS} (a test requirement of pyproject.toml); found {version}. Reinstall "
            "the test requirements: `make install`, or `pip install -e '.[test]'`.",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    _require_build_backend()
    root = tmp_path_factory.mktemp("wheel-install")
    assert not root.resolve().is_relative_to(REPO_ROOT)
    env = _clean_environment()
    source, dist, venv, workdir = root / "source", root / "dist", root / "venv", root / "work"
    workdir.mkdir()
    # The build runs on a copy: it writes build/ and *.egg-info where it runs, and an earlier
    # build/ left in the checkout could slip stale files into the wheel.
    shutil.copytree(REPO_ROOT, source, ignore=_ignored)
    build_sdist = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    _check([sys.executable, "-c", build_sdist, str(dist)], source, env, BUILD_SECONDS)
    (sdist,) = dist.glob("dmp_xds-*.tar.gz")
    # The wheel from the sdist, as a package index builds it: the sdist must hold everything.
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    wheel_command = [*pip, "wheel", "--no-deps", "--no-index", "--no-build-isolation", "-w", str(dist), str(sdist)]
    _check(wheel_command, workdir, env, BUILD_SECONDS)
    (wheel,) = dist.glob("dmp_xds-*.whl")

    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)], workdir, env, COMMAND_SECONDS)
    python = str(venv / "bin" / "python")
    purelib = _check([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], workdir, env, 60)
    site_packages = Path(purelib.strip())
    # The dependencies: the test environment's own packages, after the new environment's (a .pth
    # line appends a directory to sys.path; the .pth files in that directory are not read, so an
    # editable install of dmp-xds there stays invisible).
    ours = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    (site_packages / "test-dependencies.pth").write_text("\n".join(ours) + "\n")
    _check([*pip, "--python", python, "install", "--no-deps", "--no-index", str(wheel)], workdir, env, BUILD_SECONDS)
    return Installed(venv, site_packages, wheel, sdist, workdir, env)


def _files(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_the_wheel_holds_the_resource_folders_and_the_data(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for folder in RESOURCE_FOLDERS:
        expected = {f"dmp_xds/resources/{folder}/{name}" for name in _files(REPO_ROOT / folder)}
        assert expected and expected <= names, f"{folder}/ incomplete in the wheel: {sorted(expected - names)}"
    data = {f"dmp_xds/data/{name}" for name in _files(REPO_ROOT / "src" / "dmp_xds" / "data")}
    assert data and data <= names, sorted(data - names)


def test_the_sdist_holds_the_top_level_folders(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for folder in RESOURCE_FOLDERS:
        expected = {f"{folder}/{name}" for name in _files(REPO_ROOT / folder)}
        assert expected <= names, f"{folder}/ incomplete in the sdist: {sorted(expected - names)}"


def test_the_installed_package_is_the_one_that_runs(installed: Installed) -> None:
    script = (
        "import json, dmp_xds, dmp_xds.config as c\n"
        "from dmp_xds.storage.database import head_revision\n"
        "from lxml import etree\n"
        "for name in ('DMP_GestionDossierPatientPartage.xsd', 'Habilitations.xsd'):\n"  # the DMP's schemas compile
        "    etree.XMLSchema(etree.parse(str(c.resource_dir('schemas') / 'dmp' / name)))\n"
        "print(json.dumps({'package': dmp_xds.__file__, 'checkout': str(c.checkout_root()),\n"
        "    'resources': {n: str(c.resource_dir(n)) for n in c.RESOURCE_FOLDERS}, 'head': head_revision()}))\n"
    )
    output = _check([str(installed.venv / "bin" / "python"), "-c", script], installed.workdir, installed.env, 60)
    found = json.loads(output)
    package = installed.site_packages / "dmp_xds"
    assert Path(found["package"]).is_relative_to(package), found["package"]
    assert found["checkout"] == "None"
    assert found["resources"] == {name: str(package / "resources" / name) for name in RESOURCE_FOLDERS}
    assert found["head"] == head_revision()


@dataclass
class Server:
    base_url: str
    env: dict[str, str]  # the settings of the server, for the commands run beside it


@pytest.fixture(scope="module")
def server(installed: Installed) -> Iterator[Server]:
    """`dmp-xds db upgrade`, then `dmp-xds serve`, of the installed package."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        "DMP_XDS_DATA_DIR": str(installed.workdir / "var"),
        "DMP_XDS_AUTH": "none",
        "DMP_XDS_PROFILE": "ihe",
        "DMP_XDS_HOST": "127.0.0.1",
        "DMP_XDS_PORT": str(port),
        "DMP_XDS_LOG_LEVEL": "warning",
        "DMP_XDS_URL": base_url,  # for the client commands
    }
    upgraded = installed.run("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "is at the latest schema" in upgraded.stdout
    added = installed.run("patient", "add", PATIENT_ID, env=env)
    assert added.returncode == 0, added.stdout + added.stderr
    log_path = installed.workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(installed.venv / "bin" / "dmp-xds"), "serve"],
            cwd=installed.workdir,
            env={**installed.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"dmp-xds serve exited:\n{log_path.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"no answer in {STARTUP_SECONDS}s:\n{log_path.read_text()}"
            try:
                if requests.get(base_url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        yield Server(base_url, env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_installed_server_publishes_its_wsdl_and_schemas(server: Server, endpoint: str) -> None:
    url = f"{server.base_url}/{endpoint}?wsdl"
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    wsdl = etree.fromstring(response.content)
    assert wsdl.tag == f"{{{WSDL_NS}}}definitions"
    assert wsdl.xpath("//soap12:address/@location", namespaces={"soap12": SOAP12_NS}) == [url.removesuffix("?wsdl")]
    locations = wsdl.xpath("//@schemaLocation")
    assert locations
    for location in locations:
        schema = requests.get(urljoin(url, location), timeout=30)
        assert schema.status_code == 200, f"{location}: {schema.status_code}"
        assert etree.fromstring(schema.content).tag == XSD_SCHEMA


def test_the_installed_client_submits_and_retrieves(server: Server, installed: Installed) -> None:
    document = installed.workdir / "consultation.txt"
    document.write_bytes(DOCUMENT)
    submitted = installed.run(
        "submit",
        str(document),
        "--patient",
        PATIENT_ID,
        "--type-code",
        "11488-4^2.16.840.1.113883.6.1^Compte rendu de consultation",
        "--healthcare-facility-type",
        "SA01^1.2.250.1.71.4.2.4^Etablissement public de sante",
        "--practice-setting",
        "ETABLISSEMENT^1.2.250.1.213.1.1.4.9^Etablissement de sante",
        env=server.env,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "status: Success" in submitted.stdout
    unique_id = next(line.split()[-1] for line in submitted.stdout.splitlines() if line.startswith("documentUniqueId:"))
    output = installed.workdir / "retrieved.txt"
    # No --repository-id: the client asks the registry first (ITI-18), then the repository.
    retrieved = installed.run("retrieve", unique_id, "--output", str(output), env=server.env)
    assert retrieved.returncode == 0, retrieved.stdout + retrieved.stderr
    assert output.read_bytes() == DOCUMENT


def test_an_incomplete_installation_is_a_clear_error(installed: Installed, tmp_path: Path) -> None:
    migrations = installed.site_packages / "dmp_xds" / "resources" / "migrations"
    moved = shutil.move(migrations, tmp_path / "migrations")
    try:
        result = installed.run("db", "upgrade", env={"DMP_XDS_DATA_DIR": str(tmp_path / "var")})
    finally:
        shutil.move(moved, migrations)
    assert result.returncode != 0
    assert "cannot find its migrations/ folder" in result.stderr and "reinstall" in result.stderr
    assert "Traceback" not in result.stderr
