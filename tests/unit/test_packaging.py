"""What pyproject.toml ships: every folder of the package and of the resource folders it maps into
the wheel, and a declared dependency for every third-party import. tests/integration/
test_wheel_install.py builds and installs the wheel itself."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

from dmp_xds import config
from dmp_xds.config import RESOURCE_FOLDERS, ResourceMissing, resource_dir

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _packages(folder: Path, package: str) -> set[str]:
    """`package` and one package per sub-folder of `folder` (what setuptools must be told of)."""
    subfolders = (p for p in folder.rglob("*") if p.is_dir() and "__pycache__" not in p.parts)
    return {package} | {".".join([package, *p.relative_to(folder).parts]) for p in subfolders}


def test_the_package_list_names_every_folder_of_the_package_and_of_the_resources() -> None:
    expected = _packages(ROOT / "src" / "dmp_xds", "dmp_xds")
    for name in RESOURCE_FOLDERS:
        expected |= _packages(ROOT / name, f"dmp_xds.resources.{name}")
    listed = set(SETUPTOOLS["packages"])
    assert not expected - listed, f"add to [tool.setuptools] packages: {sorted(expected - listed)}"
    assert not listed - expected, f"no such folder: {sorted(listed - expected)}"
    assert len(SETUPTOOLS["packages"]) == len(listed), "a package is listed twice"


def test_each_resource_folder_is_mapped_from_the_top_level_of_the_repository() -> None:
    resources = {f"dmp_xds.resources.{name}": name for name in RESOURCE_FOLDERS}
    assert SETUPTOOLS["package-dir"] == {"": "src", **resources}


def test_in_a_checkout_the_resource_folders_are_the_top_level_ones() -> None:
    assert config.checkout_root() == ROOT
    for name in RESOURCE_FOLDERS:
        assert resource_dir(name) == ROOT / name


def test_the_packaged_resource_folder_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "wsdl").mkdir()
    monkeypatch.setattr(config, "PACKAGED_RESOURCES_DIR", tmp_path)
    assert resource_dir("wsdl") == tmp_path / "wsdl"
    assert resource_dir("schemas") == ROOT / "schemas"


def test_a_missing_resource_folder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "PACKAGED_RESOURCES_DIR", tmp_path)
    monkeypatch.setattr(config, "checkout_root", lambda: None)
    with pytest.raises(ResourceMissing, match=r"cannot find its migrations/ folder.*reinstall"):
        resource_dir("migrations")
    with pytest.raises(ValueError, match="not one of"):
        resource_dir("docs")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    return {_canonical(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]) for requirement in requirements}


def _imported(files: list[Path], local: set[str]) -> dict[str, Path]:
    """Top-level module names imported by `files` that are neither the standard library nor ours."""
    found: dict[str, Path] = {}
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                # _typeshed exists for type checkers only (imported under TYPE_CHECKING): the
                # standard library's stubs, never installed.
                if top not in sys.stdlib_module_names and top not in local and top != "_typeshed":
                    found.setdefault(top, file)
    return found


def _undeclared(imported: dict[str, Path], declared: set[str]) -> list[str]:
    distributions = importlib.metadata.packages_distributions()
    return [
        f"{file.relative_to(ROOT)} imports {module} (from {distributions.get(module, ['no installed distribution'])})"
        for module, file in sorted(imported.items())
        if not declared & {_canonical(d) for d in distributions.get(module, [])}
    ]


def test_every_import_of_the_package_is_a_declared_dependency() -> None:
    files = sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "migrations").rglob("*.py"))
    imported = _imported(files, {"dmp_xds"})
    assert "alembic" in imported and "sqlalchemy" in imported  # the scan sees imports at all
    assert _undeclared(imported, _declared(PYPROJECT["project"]["dependencies"])) == []


def test_every_import_of_the_tests_is_a_declared_dependency_or_test_requirement() -> None:
    files = sorted((ROOT / "tests").rglob("*.py"))
    # The tests' helpers import each other, as modules or by their folder (`integration.test_...`).
    local = {"dmp_xds"} | {file.stem for file in files} | {file.parent.name for file in files}
    declared = _declared(PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["test"])
    assert _undeclared(_imported(files, local), declared) == []
