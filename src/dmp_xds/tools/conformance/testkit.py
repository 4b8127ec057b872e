"""Reading test plans in the NIST testkit layout.

A test is a folder: `readme.txt` (title on its first line), `collections.txt` (one collection a
line), `index.idx` (its sections, in order) and one folder per section holding a `testplan.xml`
and the files it names. A test without `index.idx` is a single section: its own `testplan.xml`.
Our own plans (top-level `conformance/`) use the same layout, plus an optional `xfail.txt` whose
text is the reason the test is expected to fail until the feature it needs lands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from dmp_xds.xds.xml import UnsafeXmlError, parse_bytes


class PlanError(ValueError):
    """A test plan that cannot be read: the test fails with this reason."""


@dataclass(frozen=True)
class Section:
    name: str  # "" for a test that is its own single section
    directory: Path

    def plan(self) -> etree._Element:
        path = self.directory / "testplan.xml"
        if not path.is_file():
            raise PlanError(f"{path} is missing")
        return read_xml(path)


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest test class

    id: str
    directory: Path
    title: str
    collections: frozenset[str]
    sections: tuple[Section, ...]
    xfail_reason: str | None = None

    def section(self, name: str) -> Section | None:
        for section in self.sections:
            if section.name == name:
                return section
        return None


@dataclass
class Testkit:
    """A folder of tests: the NIST testkit's `tests/`, or our `conformance/` folder."""

    root: Path  # the folder that holds one folder per test
    tests: dict[str, TestCase] = field(default_factory=dict)

    def in_collections(self, collections: list[str]) -> list[TestCase]:
        wanted = set(collections)
        return [t for t in sorted(self.tests.values(), key=lambda t: _sort_key(t.id)) if t.collections & wanted]

    def resolve(self, section_dir: Path, testdir: str) -> tuple[str, str]:
        """(test id, section name) of a `testdir` path written relative to a section folder.

        Some plans name a sibling section without `../` (12021/retrieve says `testdir="submit"`
        for 12021/submit): when the path does not exist from the section, it is read from the
        test's folder.
        """
        target = (section_dir / testdir).resolve()
        if not target.exists() and (section_dir.parent / testdir).exists():
            target = (section_dir.parent / testdir).resolve()
        try:
            parts = target.relative_to(self.root.resolve()).parts
        except ValueError as exc:
            raise PlanError(f"testdir {testdir!r} points outside the testkit ({target})") from exc
        if not parts:
            raise PlanError(f"testdir {testdir!r} points at the testkit root")
        return parts[0], (parts[1] if len(parts) > 1 else "")


def _sort_key(test_id: str) -> tuple[int, str]:
    digits = "".join(c for c in test_id.split(".")[0] if c.isdigit())
    return (int(digits) if digits and test_id[0].isdigit() else 10**9, test_id)


def read_xml(path: Path) -> etree._Element:
    try:
        return parse_bytes(path.read_bytes())
    except (OSError, UnsafeXmlError) as exc:
        raise PlanError(f"cannot read {path}: {exc}") from exc


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def load_test(directory: Path) -> TestCase:
    index = _lines(directory / "index.idx")
    if index:
        sections = tuple(Section(name, directory / name) for name in index)
    else:
        sections = (Section("", directory),)
    title_lines = _lines(directory / "readme.txt")
    xfail = directory / "xfail.txt"
    return TestCase(
        id=directory.name,
        directory=directory,
        title=title_lines[0] if title_lines else "",
        collections=frozenset(_lines(directory / "collections.txt")),
        sections=sections,
        xfail_reason=xfail.read_text(encoding="utf-8").strip() or "expected to fail" if xfail.is_file() else None,
    )


def load_testkit(path: Path) -> Testkit:
    """Load a testkit given its folder (holding `tests/`) or the tests folder itself."""
    root = path / "tests" if (path / "tests").is_dir() else path
    if not root.is_dir():
        raise PlanError(f"{path} is not a testkit folder")
    kit = Testkit(root)
    for child in sorted(root.iterdir()):
        if child.is_dir() and ((child / "index.idx").is_file() or (child / "testplan.xml").is_file()):
            kit.tests[child.name] = load_test(child)
    if not kit.tests:
        raise PlanError(f"no test found in {root}")
    return kit
