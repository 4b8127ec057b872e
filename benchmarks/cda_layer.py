"""CPU time of each stage of the CI-SIS CDA layer with the ANS schematrons, in process.

    .venv/bin/python benchmarks/cda_layer.py [--ans ../shared/ans-testcontenucda] [--runs 100]

CPU time (`time.process_time`), not wall time: the machine's cores are shared, and what a
submission costs the server in CPU is what bounds TD2.1's throughput (2 cores x 1000 ms / CPU ms
per submission). Stages, as `CdaValidator.check` runs them on one document: lxml's safe parse,
the CDA schema, Saxon's tree of the document, the structuration minimale, the three body
profiles, the document's volet, and the whole layer (`CdaValidator.check`). Documents: the ANEST
example (433 kB, the one TD2.1 submits) and two larger ones. Prints the median and the 95th
percentile of each (the first run, which compiles the volet, is not counted).
"""

# ruff: noqa: B023  (each lambda is called at once, in the loop that defines it)

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from dmp_xds.dmp.cda.header import clinical_document, header_of
from dmp_xds.dmp.validation.ans_schematrons import load_ans_schematrons, volet_schematron
from dmp_xds.dmp.validation.cda import CdaValidator, load_schema
from dmp_xds.dmp.validation.schematron import SaxonDocument, SchematronValidator
from dmp_xds.dmp.validation.valuesets import load_cisis_value_sets
from dmp_xds.tools.client.metadata import build_submission_from_cda
from dmp_xds.xds.xml import parse_bytes

try:
    from dmp_xds.dmp.validation.cda import saxon_document
except ImportError:  # the code before Saxon read the received bytes: for before/after runs
    from lxml import etree

    from dmp_xds.dmp.validation.schematron import parse_document

    def saxon_document(data: bytes, root: etree._Element) -> SaxonDocument | bytes:
        return parse_document(etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True))


NAMES = ("ANEST-CR-ANEST_2022.01.xml", "DLU-EHPAD-DLU_2022.01.xml", "IPS-FR_2024.01.xml")


def _cpu(action: Callable[[], object]) -> float:
    start = time.process_time()
    action()
    return (time.process_time() - start) * 1000


def _report(label: str, times: list[float]) -> float:
    times = sorted(times)
    median = statistics.median(times)
    p95 = times[min(int(len(times) * 0.95), len(times) - 1)]
    print(f"  {label:<58} median {median:6.2f} ms   p95 {p95:6.2f} ms")
    return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--ans", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "ans-testcontenucda")
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--documents", nargs="*", default=list(NAMES))
    arguments = parser.parse_args()
    ans, runs = Path(arguments.ans), arguments.runs
    value_sets = load_cisis_value_sets(ans / "jeuxDeValeurs")
    schema = load_schema(ans / "infrastructure" / "cda" / "CDA_extended.xsd")
    start = time.process_time()
    schematrons = load_ans_schematrons(ans / "schematrons")
    print(f"start-up: profiles compiled in {(time.process_time() - start) * 1000:.0f} ms of CPU")
    validator = CdaValidator(schema, value_sets, schematrons=schematrons)
    for name in arguments.documents:
        data = (ans / "ExemplesCDA" / name).read_bytes()
        entry = build_submission_from_cda(data).documents[0]
        root = parse_bytes(data)
        header = header_of(clinical_document(root))
        template_ids = [(t.root, t.extension) for t in header.template_ids]
        volet_name = volet_schematron(schematrons.table, template_ids)
        volet = schematrons.volet(volet_name) if volet_name else None
        schematron_runs = [schematrons.profile, *schematrons.body_profiles]
        if isinstance(volet, SchematronValidator):
            schematron_runs.append(volet)
        validator.check(data, entry)  # compiles the volet
        times: dict[str, list[float]] = {}
        for _ in range(runs):
            times.setdefault("lxml parse (parse_bytes)", []).append(_cpu(lambda: parse_bytes(data)))
            times.setdefault("CDA schema", []).append(_cpu(lambda: validator.schema_problems(clinical_document(root))))
            # Each schematron on a fresh Saxon tree, in the order the layer runs them: Saxon
            # indexes a tree's elements by name on the first `//name`, which the first
            # schematron on a tree pays for.
            tree: list[SaxonDocument | bytes] = []
            times.setdefault("Saxon's tree of the document", []).append(
                _cpu(lambda: tree.append(saxon_document(data, root)))
            )
            for schematron in schematron_runs:
                times.setdefault(schematron.name, []).append(_cpu(lambda: schematron.validate(tree[0])))
            times.setdefault("whole CDA layer (CdaValidator.check)", []).append(
                _cpu(lambda: validator.check(data, entry))
            )
        print(f"{name} ({len(data) / 1000:.0f} kB), {runs} runs, CPU:")
        total = 0.0
        for label, values in times.items():
            median = _report(label, values)
            if label.endswith(".sch"):
                total += median
        print(f"  {'sum of the schematrons (medians)':<58} {total:6.2f} ms")


if __name__ == "__main__":
    main()
