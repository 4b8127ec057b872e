"""Every name of the DMP's HL7 V3 patient services: namespaces, interactions and their
WS-Addressing actions, reason codes, attention lines, administrative observations, acknowledgement
codes and OIDs. Facts from the DMP's WSDL (GestionDossierPatientPartage, PDQSupplier), its example
messages and its kit; what none of them shows is marked *inferred* (docs/dmpi.md lists them).
"""

from __future__ import annotations

from typing import Final

NS_HL7: Final = "urn:hl7-org:v3"
NS_GDP: Final = "asip:ci-sis:gdp:2010"  # the GDP WSDL's own elements (the *_Response wrappers)
NS_PDQ: Final = "urn:ihe:iti:pdqv3:2007"
NS_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE: Final = f"{{{NS_XSI}}}type"
XSI_NIL: Final = f"{{{NS_XSI}}}nil"


def hl7(local: str) -> str:
    return f"{{{NS_HL7}}}{local}"


# --- interactions (the message's root element and interactionId) ------------------------------
INTERACTION_ROOT: Final = "2.16.840.1.113883.1.6"
GET_DEMOGRAPHICS: Final = "PRPA_IN201307UV02"  # GDP-read: TD0.2, TD1.3a
DEMOGRAPHICS: Final = "PRPA_IN201308UV02"
PATIENT_ADD: Final = "PRPA_IN201311UV02"  # TD1.1 creation
ADD_ACCEPTED: Final = "PRPA_IN201312UV02"
ADD_REFUSED: Final = "PRPA_IN201313UV02"
PATIENT_REVISE: Final = "PRPA_IN201314UV02"  # GDP-rev: TD1.2, TD1.3b, TD1.4
REVISE_ACCEPTED: Final = "PRPA_IN201315UV02"
REVISE_REFUSED: Final = "PRPA_IN201316UV02"
FIND_CANDIDATES: Final = "PRPA_IN201305UV02"  # PDQ: TD0.5
CANDIDATES: Final = "PRPA_IN201306UV02"
PDQ_QUERY_EVENT: Final = "PRPA_TE201305UV02"  # controlActProcess/code
PDQ_RESPONSE_EVENT: Final = "PRPA_TE201306UV02"

# The wrappers of the GDP WSDL around an accept-or-refuse answer.
REVISE_RESPONSE: Final = f"{{{NS_GDP}}}PRPA_IN201314UV02_Response"
ADD_RESPONSE: Final = f"{{{NS_GDP}}}PRPA_IN201311UV02_Response"


def action(interaction: str) -> str:
    return f"urn:hl7-org:v3:{interaction}"


ACTION_GET_DEMOGRAPHICS: Final = action(GET_DEMOGRAPHICS)
ACTION_DEMOGRAPHICS: Final = action(DEMOGRAPHICS)
ACTION_PATIENT_ADD: Final = action(PATIENT_ADD)
ACTION_PATIENT_ADD_RESPONSE: Final = "urn:hl7-org:v3:PRPA_IN201311ResponseUV02"
ACTION_PATIENT_REVISE: Final = action(PATIENT_REVISE)
ACTION_PATIENT_REVISE_RESPONSE: Final = "urn:hl7-org:v3:PRPA_IN201314ResponseUV02"
ACTION_FIND_CANDIDATES: Final = action(FIND_CANDIDATES)
ACTION_CANDIDATES: Final = action(CANDIDATES)
# The kit (SoapService/PatientSoapService.cs) sends the GDP-read request under the action of its
# response: accepted too.
ACTION_GET_DEMOGRAPHICS_KIT: Final = ACTION_DEMOGRAPHICS

# WSDL operation names.
OPERATION_GET_DEMOGRAPHICS: Final = "PatientGetDemographics_PRPA_IN201307UV02"
OPERATION_PATIENT_ADD: Final = "PatientAdd_PRPA_IN201311UV02"
OPERATION_PATIENT_REVISE: Final = "PatientRevise_PRPA_IN201314UV02"
OPERATION_FIND_CANDIDATES: Final = "findCandidatesQuery"

# --- devices, ids --------------------------------------------------------------------------
DMP_DEVICE_ROOT: Final = "1.2.250.1.213.4.1.1.1"  # receiver of requests, sender and custodian of responses
DMP_SOFTWARE_NAME: Final = "DMP"
RESPONSE_ID_ROOT: Final = "1.2.250.1.213.4.1.1.1.1"  # root of the DMP's message ids (extension: a uuid)
INS_C_ROOT: Final = "1.2.250.1.213.1.4.2"  # the former calculated INS: not accepted
PROFESSIONAL_ID_ROOT: Final = "1.2.250.1.71.4.2.1"  # author/assignedEntity/id (national id)
STRUCTURE_ID_ROOT: Final = "1.2.250.1.71.4.2.2"  # representedOrganization/id

# --- reason codes (controlActProcess/reasonCode) ----------------------------------------------
REASON_SYSTEM: Final = "1.2.250.1.213.1.1.4.11"
TEST_EXST: Final = "TEST_EXST"  # TD0.2: does the DMP exist, am I authorized?
CNSLT_DATA: Final = "CNSLT_DATA"  # TD1.3a: read the administrative data
MODIF_DATA: Final = "MODIF_DATA"  # TD1.3b: change them
FERM: Final = "FERM"  # TD1.4: close
REAC: Final = "REAC"  # TD1.2: reactivate
CREA_RD: Final = "CREA_RD"  # TD1.1: create
REASONS: Final = {
    TEST_EXST: "Test d'existence de dossier",
    CNSLT_DATA: "Consultation des données de gestion de dossier",
    MODIF_DATA: "Modification des données de gestion du dossier",
    FERM: "Fermeture de dossier",
    REAC: "Réactivation de dossier",
    CREA_RD: "Création de dossier",
}
READ_REASONS: Final = (TEST_EXST, CNSLT_DATA)
REVISE_REASONS: Final = (MODIF_DATA, FERM, REAC)
ADD_REASONS: Final = (CREA_RD,)

# --- attention lines of the GDP-read answer (TD0.2) -----------------------------------------
AUTHORIZATION_KEY: Final = ("AUTORISATION", "1.2.250.1.213.4.1.2.6.1")
AUTHORIZATION_VALUE_SYSTEM: Final = "1.2.250.1.213.4.1.2.6.2"
AUTHORIZATION_VALID: Final = "VALIDE"
AUTHORIZATION_EXPIRED: Final = "EXPIREE"  # inferred
AUTHORIZATION_NONE: Final = "NON_EXISTANTE"  # inferred
ATTENDING_KEY: Final = ("STATUT_MT", "1.2.250.1.213.4.1.2.6.3")

# --- administrative observations (patient/subjectOf) ----------------------------------------
OBSERVATION_SYSTEM: Final = "1.2.250.1.213.4.1.2.3"
WEB_ACCOUNT_SYSTEM: Final = "1.2.250.1.213.4.1.2.9"
WEB_ACCOUNT_OPEN: Final = "COMPTE_INTERNET_OUVERT"
ATTACHED_TO_ENS: Final = "RATTACHEMENT_ENS"  # attached to "Mon espace santé": never here
OPPOSES_BREAK_GLASS: Final = "OPPOSITION_BRIS_DE_GLACE"
OPPOSES_REGULATION: Final = "OPPOSITION_ACCES_URGENCE"
CONSENT_OPENING: Final = "CONSENTEMENT_OUVERTURE_DMP"
CONSENT_REACTIVATION: Final = "CONSENTEMENT_REACTIVATION_DMP"
OBSERVATIONS: Final = {
    WEB_ACCOUNT_OPEN: "compte internet patient ouvert",
    ATTACHED_TO_ENS: "information de rattachement du DMP à un ENS",
    OPPOSES_BREAK_GLASS: "opposition au mode bris de glace",
    OPPOSES_REGULATION: "opposition à l'accès au mode urgence",
    CONSENT_OPENING: "Consentement a l'ouverture du DMP",
    CONSENT_REACTIVATION: "Consentement à la réactivation du DMP",
}

# --- closure (reasonOf/detectedIssueEvent) ----------------------------------------------------
CLOSURE_REASON_SYSTEM: Final = "1.2.250.1.213.4.1.2.4"
CLOSURE_PATIENT_REQUEST: Final = "FERMETURE_DEMANDE_PATIENT"

# --- statuses, acknowledgements -----------------------------------------------------------
STATUS_ACTIVE: Final = "active"  # patient/statusCode: the DMP is open
STATUS_TERMINATED: Final = "terminated"  # closed
ACK_ACCEPT: Final = "AA"
ACK_ERROR: Final = "AE"
QUERY_OK: Final = "OK"
QUERY_NOT_FOUND: Final = "NF"  # no DMP for this patient
QUERY_ERROR: Final = "AE"
PDQ_MATCH_CODE: Final = "POURCENTAGE"  # queryMatchObservation: how well the candidate matches
PDQ_MAX_CANDIDATES: Final = 50

# acknowledgementDetail/code of an AE: the kit shows DMPFound and DMPClosed, the web-access note
# DMPAccessDeniedByRightsService; the others are inferred, in the same style.
DMP_FOUND: Final = "DMPFound"  # the DMP exists / is already active
DMP_CLOSED: Final = "DMPClosed"  # the DMP is closed (or already closed)
DMP_NOT_FOUND: Final = "DMPNotFound"  # inferred: the patient has no DMP
ACCESS_DENIED: Final = "DMPAccessDeniedByRightsService"
INVALID_REQUEST: Final = "DMPInvalidRequest"  # inferred: the message is malformed
UNKNOWN_REASON: Final = "DMPUnknownReasonCode"  # inferred
INVALID_PATIENT_ID: Final = "DMPInvalidPatientId"  # inferred: the patient id is not an INS
