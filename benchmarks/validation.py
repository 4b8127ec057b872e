"""Time of the CDA layer (schema + header rules + header/DocumentEntry consistency) per document.

    .venv/bin/python benchmarks/validation.py [--ans ../shared/ans-testcontenucda]

Measures, after the schema and value sets are loaded once: a ~1 MB ANS example (the issue's
target: under 50 ms), a ~20 kB one (the ITI-41 hot path), and the whole CI-SIS metadata check of
its submission. Prints the median and the 95th percentile of 200 runs each.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from dmp_xds.client.metadata import build_submission_from_cda
from dmp_xds.validation.cda import CdaValidator, load_schema
from dmp_xds.validation.validators import Validators
from dmp_xds.validation.valuesets import load_cisis_value_sets
from dmp_xds.validation.xds import Transaction

RUNS = 200


def _measure(label: str, action: object) -> None:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"{label:<62} median {statistics.median(times):6.2f} ms   p95 {times[int(RUNS * 0.95)]:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ans", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "ans-testcontenucda"))
    ans = Path(parser.parse_args().ans)
    start = time.perf_counter()
    value_sets = load_cisis_value_sets(ans / "jeuxDeValeurs")
    schema = load_schema(ans / "infrastructure" / "cda" / "CDA_extended.xsd")
    print(f"start-up: value sets and CDA schema loaded in {(time.perf_counter() - start) * 1000:.0f} ms")
    validators = Validators(value_sets, CdaValidator(schema, value_sets))
    examples = ans / "ExemplesCDA"
    for name in ("DLU-EHPAD-DLU_2022.01.xml", "IPS-FR_2024.01.xml", "ANEST-CR-ANEST_2022.01.xml"):
        data = (examples / name).read_bytes()
        submission = build_submission_from_cda(data)
        entry = submission.documents[0]
        assert validators.document_errors(entry, data) == [] and validators.metadata_errors(
            submission, Transaction.ITI41) == []
        _measure(f"CDA layer, {name} ({len(data) / 1e6:.2f} MB)", lambda: validators.document_errors(entry, data))
    _measure("metadata (XDS + CI-SIS) of its submission",
             lambda: validators.metadata_errors(submission, Transaction.ITI41))


if __name__ == "__main__":
    main()
