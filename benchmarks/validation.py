"""Time of the CDA layer (schema + header rules + header/DocumentEntry consistency) per document,
and, separately, of the ANS schematron layer (DMP_XDS_SCHEMATRONS).

    .venv/bin/python benchmarks/validation.py [--ans ../shared/ans-testcontenucda] [--runs 200]

Measures, after the schema and value sets are loaded once: ANS examples of 1.1 MB, 1.5 MB and
0.4 MB (the target: under 50 ms for 1 MB), and the whole CI-SIS metadata check of a
submission; then the schematrons' start-up (compiling the structuration minimale and the three
body profiles), their run on the same documents (Saxon's parse, structuration minimale, the IHE
and CI-SIS body profiles, the document's volet), and the whole CDA layer with them, as a server
with DMP_XDS_SCHEMATRONS runs it. Prints the median and the 95th percentile of each (the first
run of each document, which compiles its volet, is not counted).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from dmp_xds.dmp.cda.header import clinical_document, header_of
from dmp_xds.dmp.validation.ans_schematrons import load_ans_schematrons
from dmp_xds.dmp.validation.cda import CdaValidator, load_schema
from dmp_xds.dmp.validation.validators import Validators
from dmp_xds.dmp.validation.valuesets import load_cisis_value_sets
from dmp_xds.tools.client.metadata import build_submission_from_cda
from dmp_xds.xds.validation.xds import Transaction
from dmp_xds.xds.xml import parse_bytes


def _measure(label: str, action: Callable[[], object], runs: int) -> None:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"{label:<62} median {statistics.median(times):6.2f} ms   p95 {times[int(runs * 0.95)]:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--ans", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "ans-testcontenucda")
    )
    parser.add_argument("--runs", type=int, default=200)
    arguments = parser.parse_args()
    ans, runs = Path(arguments.ans), arguments.runs
    start = time.perf_counter()
    value_sets = load_cisis_value_sets(ans / "jeuxDeValeurs")
    schema = load_schema(ans / "infrastructure" / "cda" / "CDA_extended.xsd")
    print(f"start-up: value sets and CDA schema loaded in {(time.perf_counter() - start) * 1000:.0f} ms")
    validators = Validators(value_sets, CdaValidator(schema, value_sets))
    examples = ans / "ExemplesCDA"
    names = ("DLU-EHPAD-DLU_2022.01.xml", "IPS-FR_2024.01.xml", "ANEST-CR-ANEST_2022.01.xml")
    for name in names:
        data = (examples / name).read_bytes()
        submission = build_submission_from_cda(data)
        entry = submission.documents[0]
        assert (
            validators.document_errors(entry, data) == []
            and validators.metadata_errors(submission, Transaction.ITI41) == []
        )
        _measure(
            f"CDA layer, {name} ({len(data) / 1e6:.2f} MB)", partial(validators.document_errors, entry, data), runs
        )
    _measure(
        "metadata (XDS + CI-SIS) of its submission",
        lambda: validators.metadata_errors(submission, Transaction.ITI41),
        runs,
    )
    start = time.perf_counter()
    schematrons = load_ans_schematrons(ans / "schematrons")
    print(
        f"start-up: ANS structuration minimale and body profiles compiled in {(time.perf_counter() - start) * 1000:.0f} ms"
    )
    for name in names:
        data = (examples / name).read_bytes()
        header = header_of(clinical_document(parse_bytes(data)))
        template_ids = [(t.root, t.extension) for t in header.template_ids]
        ran, findings = schematrons.validate(data, template_ids)  # compiles the volet once
        assert findings == [], findings
        _measure(
            f"ANS schematrons ({len(ran)}: ...{ran[-1]}), {name}",
            partial(schematrons.validate, data, template_ids),
            max(runs // 4, 10),
        )
    with_schematrons = Validators(value_sets, CdaValidator(schema, value_sets, schematrons=schematrons))
    for name in names:
        data = (examples / name).read_bytes()
        entry = build_submission_from_cda(data).documents[0]
        assert with_schematrons.document_errors(entry, data) == []
        _measure(
            f"CDA layer with the ANS schematrons, {name}",
            partial(with_schematrons.document_errors, entry, data),
            max(runs // 4, 10),
        )


if __name__ == "__main__":
    main()
