"""Our CI-SIS conformance plans (conformance/cisis-*) send metadata that the CI-SIS profile
accepts, except where a plan is about a defect (02: a patient id that is not an INS; 03: a code
outside the value sets), checked without a server; test_conformance_cisis.py runs the plans
against a CI-SIS one."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmp_xds.dmp.validation.cisis import validate_cisis
from dmp_xds.dmp.validation.valuesets import CisisValueSets, load_cisis_value_sets
from dmp_xds.xds.ebrim.decode import decode_submit_objects_request
from dmp_xds.xds.errors import ErrorCode
from dmp_xds.xds.xml import parse_bytes

ROOT = Path(__file__).resolve().parents[2]
ANS_VALUE_SETS = ROOT / ".." / "shared" / "ans-testcontenucda" / "jeuxDeValeurs"
PLANS = sorted((ROOT / "conformance").glob("cisis-*/*/metadata.xml"))
DEFECTIVE = {"cisis-02-non-ins-patient", "cisis-03-code-outside-value-set"}
# The runner puts the plan's patient in place of $patientid$ (a test INS of the ANS examples).
TEST_INS = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture(scope="module")
def value_sets() -> CisisValueSets:
    return load_cisis_value_sets(ANS_VALUE_SETS)


def test_there_are_plans_to_check() -> None:
    assert len(PLANS) >= 8


@pytest.mark.parametrize("metadata", PLANS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_plan_metadata_against_the_cisis_profile(metadata: Path, value_sets: CisisValueSets) -> None:
    text = metadata.read_bytes().replace(b"$patientid$", TEST_INS.replace("&", "&amp;").encode())
    submission = decode_submit_objects_request(parse_bytes(text))
    errors = [e for e in validate_cisis(submission, value_sets, ErrorCode.REGISTRY_METADATA_ERROR) if e.is_error]
    if metadata.parent.parent.name in DEFECTIVE:
        assert errors, "this plan is about a defect the CI-SIS profile must find"
    else:
        assert errors == []
