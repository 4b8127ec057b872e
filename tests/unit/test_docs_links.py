"""The project's documentation holds together: every relative link of README.md, CONTRIBUTING.md,
CHANGELOG.md and docs/*.md points at a file that exists (and, for a Markdown file, at one of its
headings when it names one), every source path they name in backticks exists (and every function
or class they name in a module, `storage/queries.build_plan`, is defined there), and README.md
stays short enough to be read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_LIMIT = 8192  # bytes: the README says what dmp-xds is and points at docs/ for the rest

SOURCE = ROOT / "src" / "dmp_xds"
# Folders named from the repository root rather than from src/dmp_xds/.
ROOTED = ("src/", "tests/", "benchmarks/", "migrations/", "wsdl/", "schemas/", "conformance/", ".ci/")
# The top-level packages of src/dmp_xds, and those of the layout before the one-way layers: a page
# still naming one of these (`registry/`, `soap/faults.py`) names code that has moved.
RETIRED_PACKAGES = {
    "audit",
    "cda",
    "client",
    "conformance",
    "ebrim",
    "feed",
    "model",
    "query",
    "registry",
    "repository",
    "soap",
    "transactions",
    "validation",
}
PACKAGES = {p.parent.name for p in SOURCE.glob("*/__init__.py")} | RETIRED_PACKAGES
CODE_SPAN = re.compile(r"`([^`\n]+)`")
PATH_CHARS = re.compile(r"^[\w.-]+(?:/[\w.-]+)*/?$")

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(path: Path) -> list[str]:
    """The lines outside fenced code blocks (a link in a code sample is not a link)."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        text = re.sub(r"[`*_]|<[^>]+>", "", match.group(1)).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def relative_links(path: Path) -> list[str]:
    return [
        target
        for line in prose_lines(path)
        for target in LINK.findall(line)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)
    ]


def test_the_documents_are_there() -> None:
    for path in documents():
        assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    assert len(documents()) > 3, "docs/ has no page"


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in relative_links(document):
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{document.relative_to(ROOT)}: " + "; ".join(broken)


def code_paths(path: Path) -> list[str]:
    """The backticked spans of a page that look like paths (for CHANGELOG.md, of its Unreleased
    part only: the released entries describe the code as it was then)."""
    lines = prose_lines(path)
    if path.name == "CHANGELOG.md":
        releases = [i for i, line in enumerate(lines) if line.startswith("## [")]
        lines = lines[: releases[1]] if len(releases) > 1 else lines
    spans = [span.partition("::")[0] for line in lines for span in row_spans(line)]
    return [span for span in spans if (PATH_CHARS.match(span) and "/" in span) or span.endswith(".py")]


def row_spans(line: str) -> list[str]:
    """The code spans of a line. In a table row whose first cell is a package (`services/`), the
    paths of the other cells are relative to that package, as a code map writes them."""
    if not line.startswith("|"):
        return CODE_SPAN.findall(line)
    first, *others = line.strip("|").split("|")
    package = CODE_SPAN.fullmatch(first.strip())
    if package is None or not package.group(1).endswith("/") or package.group(1).split("/")[0] not in PACKAGES:
        return CODE_SPAN.findall(line)
    inside = [span for cell in others for span in CODE_SPAN.findall(cell)]
    return [package.group(1), *(package.group(1) + span for span in inside if PATH_CHARS.match(span))]


def defines(module: Path, name: str) -> bool:
    pattern = rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b|^\s*{re.escape(name)}\s*[:=]"
    return re.search(pattern, module.read_text(encoding="utf-8"), re.MULTILINE) is not None


def path_problem(span: str) -> str | None:
    """Why a backticked path names nothing (None when it names something that exists). Checked:
    a `.py` file, a folder of src/dmp_xds, anything under a folder of the repository root, and
    `package/module.name` (the module exists and defines the name); other paths (a kit's folders,
    `var/`, a media type) are not ours to check."""
    if span.endswith(".py"):
        if re.fullmatch(r"test_\w+\.py", span):  # a test file, named alone in a table of tests
            found = [*ROOT.glob(f"tests/*/{span}")]
            return None if found else "no such test file under tests/"
        return None if (ROOT / span).is_file() or (SOURCE / span).is_file() else "no such file"
    if span.startswith(ROOTED):
        return None if (ROOT / span).exists() else "no such file or folder"
    head = span.split("/", 1)[0]
    if head not in PACKAGES:
        return None
    if span.endswith("/"):
        return None if (SOURCE / span).is_dir() or (ROOT / span).is_dir() else "no such package"
    module, dot, names = span.partition(".")
    if not dot or "/" in names:
        return None  # a file of another kind, e.g. `dmp/data.tsv`: not named this way in the pages
    source = SOURCE / f"{module}.py"
    if not source.is_file():
        return f"no module {module}.py"
    missing = [name for name in names.split(".") if not defines(source, name)]
    return f"{module}.py defines no {', '.join(missing)}" if missing else None


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_source_path_exists(document: Path) -> None:
    broken = [f"`{span}`: {problem}" for span in code_paths(document) if (problem := path_problem(span))]
    assert not broken, f"{document.relative_to(ROOT)}: " + "; ".join(dict.fromkeys(broken))


def test_readme_stays_short() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes, over {README_LIMIT}: move details to docs/"
