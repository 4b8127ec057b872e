"""The validators of a deployment, built once at start-up from its settings.

`metadata_errors` is what ITI-41 and ITI-42 check in a message (the IHE rules, then the CI-SIS
profile when it is on); `document_errors` is the CDA layer for one document of an ITI-41 message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from dmp_xds.config import ConfigError, Settings
from dmp_xds.dmp.ins import canonical_patient_id
from dmp_xds.dmp.validation.ans_schematrons import AnsSchematrons, load_ans_schematrons
from dmp_xds.dmp.validation.cda import CDA_MIME_TYPE, CdaPolicy, CdaValidator, SchemaError, load_schema
from dmp_xds.dmp.validation.cisis import canonical_patient_ids, validate_cisis
from dmp_xds.dmp.validation.schematron import SchematronError
from dmp_xds.dmp.validation.valuesets import CisisValueSets, ValueSetError, load_cisis_value_sets
from dmp_xds.xds.errors import ErrorCode, XdsError
from dmp_xds.xds.model import DocumentEntry, Submission
from dmp_xds.xds.validation.xds import Transaction, metadata_error_code, validate_submission


@dataclass(frozen=True)
class Validators:
    """Defaults: plain IHE XDS.b, no CDA layer (what a Services built without settings gets)."""

    value_sets: CisisValueSets | None = None  # set: the CI-SIS profile is on
    cda: CdaValidator | None = None  # set: the CDA layer is on

    def metadata_errors(self, submission: Submission, transaction: Transaction) -> list[XdsError]:
        errors = self.read_patient_ids(submission, metadata_error_code(transaction))
        if errors:
            return errors
        errors = validate_submission(submission, transaction)
        if self.value_sets is not None:
            errors += validate_cisis(submission, self.value_sets, metadata_error_code(transaction))
        return errors

    def read_patient_ids(self, submission: Submission, code: ErrorCode) -> list[XdsError]:
        """Under the CI-SIS profile, the DMP's `INS^^^&OID&ISO^NH^^<date>` patient ids of a
        submission become `INS^^^&OID&ISO` before any rule reads them; the errors of malformed ones.
        Plain IHE keeps the letter of ITI TF-3: only CX.1 and CX.4."""
        if self.value_sets is None:
            return []
        return canonical_patient_ids(submission, code)

    def patient_id(self, cx: str) -> str:
        """A patient id as the registry compares it (a query parameter, the VIHF's patient): the
        INS alone under the CI-SIS profile when the id is well formed, else as it is."""
        if self.value_sets is None:
            return cx
        canonical, problem = canonical_patient_id(cx)
        return cx if problem else canonical

    def document_errors(self, entry: DocumentEntry, data: bytes) -> list[XdsError]:
        """The CDA layer for one `text/xml` document; other media types (PDF...) skip it."""
        return self.document_check(entry, data)[0]

    def document_check(
        self, entry: DocumentEntry, data: bytes, path: Path | None = None
    ) -> tuple[list[XdsError], etree._Element | None]:
        """`document_errors`, and the tree the CDA layer parsed (None: it did not parse it).
        `path`: a file holding exactly `data`, read there by the schematrons' parser."""
        if self.cda is None or entry.mime_type != CDA_MIME_TYPE or not self.cda.applies_to(data):
            return [], None
        return self.cda.check(data, entry, path)


def load_validators(settings: Settings, cda_under_ihe: bool = False) -> Validators:
    """Read the value sets, compile the CDA schema and the ANS schematrons (when
    DMP_XDS_SCHEMATRONS is set); a ConfigError says what is missing.
    `cda_under_ihe`: run the CDA layer under the IHE profile too (the `validate` command)."""
    cisis = settings.profile == "cisis"
    policy = CdaPolicy(settings.cda_policy)
    value_sets: CisisValueSets | None = None
    if cisis:
        try:
            value_sets = load_cisis_value_sets(settings.value_sets)
        except ValueSetError as exc:
            raise ConfigError(
                f"the CI-SIS profile cannot start: {exc} (or set DMP_XDS_PROFILE=ihe for a plain IHE XDS.b registry)"
            ) from exc
    if policy is CdaPolicy.OFF or not (cisis or cda_under_ihe):
        # The CDA layer belongs to the DMP profile: a plain IHE XDS.b registry (and the NIST tests,
        # whose metadata are not those of their documents) does not look inside documents.
        return Validators(value_sets, None)
    if cisis and not settings.cda_schema:
        raise ConfigError(
            "the CI-SIS profile validates CDA documents against the CDA schema: set "
            "DMP_XDS_CDA_SCHEMA to CDA_extended.xsd (ANS TestContenuCDA infrastructure/cda), "
            "or DMP_XDS_CDA_POLICY=off"
        )
    try:
        schema = load_schema(settings.cda_schema) if settings.cda_schema else None
    except SchemaError as exc:
        raise ConfigError(str(exc)) from exc
    schematrons: AnsSchematrons | None = None
    if settings.schematrons:
        try:
            schematrons = load_ans_schematrons(settings.schematrons)
        except SchematronError as exc:
            raise ConfigError(f"DMP_XDS_SCHEMATRONS: {exc}") from exc
    return Validators(value_sets, CdaValidator(schema, value_sets, policy, schematrons))
