"""Reports of a run: the summary line, JUnit XML for CI systems, a self-contained HTML page."""

from __future__ import annotations

import html
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from dmp_xds.tools.conformance.engine import Outcome, TestResult

LABELS = {Outcome.PASSED: "PASS", Outcome.FAILED: "FAIL", Outcome.SKIPPED: "SKIP", Outcome.XFAIL: "XFAIL"}


def counts(results: list[TestResult]) -> Counter[Outcome]:
    return Counter(r.outcome for r in results)


def summary_line(results: list[TestResult]) -> str:
    """`N passed, N failed, N skipped` (and the expected failures, when there are some)."""
    c = counts(results)
    line = f"{c[Outcome.PASSED]} passed, {c[Outcome.FAILED]} failed, {c[Outcome.SKIPPED]} skipped"
    if c[Outcome.XFAIL]:
        line += f", {c[Outcome.XFAIL]} expected to fail"
    return line


def result_line(result: TestResult) -> str:
    title = f" {result.title}" if result.title else ""
    extra = " (prerequisite)" if result.prerequisite else ""
    line = f"{LABELS[result.outcome]:5} {result.test_id}{title}{extra} [{result.duration:.1f} s]"
    if result.outcome is not Outcome.PASSED and result.reason:
        line += f"\n      {result.reason}"
    return line


def _details(result: TestResult) -> str:
    step = result.failed_step
    parts = [result.reason]
    if step is not None:
        parts += [
            f"step: {step.where}",
            f"endpoint: {step.endpoint}",
            "--- request ---",
            step.request_text,
            "--- response ---",
            step.response_text,
        ]
    return "\n".join(p for p in parts if p)


def write_junit(results: list[TestResult], path: Path, suite: str) -> None:
    c = counts(results)
    suites = etree.Element("testsuites")
    element = etree.SubElement(
        suites,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(c[Outcome.FAILED]),
        errors="0",
        skipped=str(c[Outcome.SKIPPED] + c[Outcome.XFAIL]),
        time=f"{sum(r.duration for r in results):.3f}",
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    for result in results:
        case = etree.SubElement(
            element,
            "testcase",
            classname=suite,
            name=f"{result.test_id} {result.title}".strip(),
            time=f"{result.duration:.3f}",
        )
        if result.outcome is Outcome.FAILED:
            etree.SubElement(case, "failure", message=result.reason[:1000], type="ConformanceFailure").text = _details(
                result
            )
        elif result.outcome in (Outcome.SKIPPED, Outcome.XFAIL):
            etree.SubElement(case, "skipped", message=result.reason[:1000])
    path.write_bytes(etree.tostring(suites, xml_declaration=True, encoding="UTF-8", pretty_print=True))


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}
.passed{color:#17692f;font-weight:bold}.failed{color:#b00020;font-weight:bold}
.skipped{color:#777;font-weight:bold}.xfail{color:#9a6700;font-weight:bold}
pre{background:#f6f8fa;padding:.8em;overflow:auto;max-height:30em;font-size:.85em;white-space:pre-wrap}
details{margin:.3em 0}.reason{color:#b00020}
"""


def write_html(results: list[TestResult], path: Path, title: str, target: str) -> None:
    rows = []
    for result in results:
        status = result.outcome.value
        cell = html.escape(result.reason)
        step = result.failed_step
        if result.outcome in (Outcome.FAILED, Outcome.XFAIL) and step is not None:
            cell = (
                f'<div class="reason">{html.escape(result.reason)}</div>'
                f"<div>failed step <code>{html.escape(step.where)}</code> "
                f"({html.escape(step.transaction)} to {html.escape(step.endpoint or '-')})</div>"
                f"<div>first failed check: {html.escape(step.reason)}</div>"
                f"<details><summary>request</summary><pre>{html.escape(step.request_text or '(none)')}</pre></details>"
                f"<details><summary>response</summary><pre>{html.escape(step.response_text or '(none)')}</pre></details>"
            )
        steps = ", ".join(f"{html.escape(s.where)} {'✓' if s.passed else '✗'}" for s in result.steps)
        rows.append(
            f'<tr><td class="{status}">{LABELS[result.outcome]}</td><td>{html.escape(result.test_id)}'
            f"{' (prerequisite)' if result.prerequisite else ''}</td><td>{html.escape(result.title)}</td>"
            f"<td>{result.duration:.1f} s</td><td>{cell}<details><summary>steps</summary>{steps or '-'}"
            f"</details></td></tr>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Target: {html.escape(target)}<br>Run: {datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")} UTC<br>
<strong>{html.escape(summary_line(results))}</strong></p>
<table><thead><tr><th>verdict</th><th>test</th><th>title</th><th>time</th><th>details</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""
    path.write_text(page, encoding="utf-8")
