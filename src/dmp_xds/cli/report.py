"""A readable report of validation findings, for people (the `validate` command)."""

from __future__ import annotations

from collections.abc import Sequence

from dmp_xds.xds.errors import XdsError


def format_report(subject: str, findings: Sequence[XdsError], checks: Sequence[str]) -> str:
    """`subject`: what was validated; `checks`: the layers that ran, named in the verdict."""
    errors = [f for f in findings if f.is_error]
    warnings = [f for f in findings if not f.is_error]
    lines = [
        f"{subject}: {'VALID' if not errors else 'NOT VALID'} "
        f"({len(errors)} error{'s' if len(errors) != 1 else ''}, "
        f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''})",
        f"  checks: {', '.join(checks)}",
    ]
    for finding in errors + warnings:
        where = f" [{finding.location}]" if finding.location else ""
        lines.append(f"  {finding.severity.name:<7} {finding.code.value}{where}")
        lines.append(f"          {finding.context}")
    return "\n".join(lines)
