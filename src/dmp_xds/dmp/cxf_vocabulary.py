"""Every name of the DMP's CXF-style services, in one place: `habilitations` (TD0.3, TD1.6),
`patientsSpecific` (TD0.4, TD1.5a/b/d) and `patientCertif` (TD0.0).

Facts from the DMP's WSDLs and official example messages (dmpi reference, sections 2-3): the
namespaces, the operation and element names, the enumerations, the WS-Addressing actions
(`<namespace>:<port type>:<operation>`, reply `...<operation>Response`, as Apache CXF names
them) and the success status `DMPOk`. The DMP publishes no list of its error statuses: the
`STATUS_*` below other than DMPOk, DMPClosed and DMPAccessDeniedByRightsService (seen in the
DMP's kit and web-access note) are this server's names, in the DMP's style.
"""

from __future__ import annotations

from typing import Final

from dmp_xds.security import vocabulary as sv

NS_HABILITATIONS: Final = "urn:si-dmp-habilitations"
NS_PATIENTS: Final = "urn:si-dmp-patients"
HABILITATIONS_PORT: Final = "HabilitationsEndPoint"
PATIENTS_PORT: Final = "PatientSpecificEndPoint"
CERTIFICATION_PORT: Final = "PatientCertificationEndPoint"

# Operations (request element = operation name; response element = name + "Response").
SET_AUTHORIZATION: Final = "setAuthorization"  # TD0.3
LIST_AUTHORIZATION_BY_PATIENT: Final = "listAuthorizationByPatient"  # TD1.6
PATIENT_LIST: Final = "patientList"  # TD0.4
CREATE_PATIENT_ACCESS: Final = "createPatientAccess"  # TD1.5a
PATIENT_OTP_UPDATE: Final = "patientOTPUpdate"  # TD1.5b
UPDATE_PATIENT_ACCESS: Final = "updatePatientAccess"  # TD1.5d
IDENTITY_CERTIFICATION: Final = "identityCertification"  # TD0.0

# (namespace, port type) of each operation.
OPERATIONS: Final = {
    SET_AUTHORIZATION: (NS_HABILITATIONS, HABILITATIONS_PORT),
    LIST_AUTHORIZATION_BY_PATIENT: (NS_HABILITATIONS, HABILITATIONS_PORT),
    PATIENT_LIST: (NS_PATIENTS, PATIENTS_PORT),
    CREATE_PATIENT_ACCESS: (NS_PATIENTS, PATIENTS_PORT),
    PATIENT_OTP_UPDATE: (NS_PATIENTS, PATIENTS_PORT),
    UPDATE_PATIENT_ACCESS: (NS_PATIENTS, PATIENTS_PORT),
    IDENTITY_CERTIFICATION: (NS_PATIENTS, CERTIFICATION_PORT),
}
# The operations of each of our endpoints (transport/serve.py names the paths).
HABILITATIONS_ENDPOINT: Final = "habilitations"
PATIENTS_SPECIFIC_ENDPOINT: Final = "patientsSpecific"
PATIENT_CERTIF_ENDPOINT: Final = "patientCertif"
ENDPOINT_OPERATIONS: Final = {
    HABILITATIONS_ENDPOINT: (SET_AUTHORIZATION, LIST_AUTHORIZATION_BY_PATIENT),
    PATIENTS_SPECIFIC_ENDPOINT: (PATIENT_LIST, CREATE_PATIENT_ACCESS, PATIENT_OTP_UPDATE, UPDATE_PATIENT_ACCESS),
    PATIENT_CERTIF_ENDPOINT: (IDENTITY_CERTIFICATION,),
}
# The Habilitations WSDL's binding gives `soapAction="urn:hl7-org:v3:<operation>"`, which is not
# the action the DMP's examples send: a client built from the WSDL alone sends this one.
WSDL_SOAP_ACTION_PREFIX: Final = "urn:hl7-org:v3:"


def namespace(operation: str) -> str:
    return OPERATIONS[operation][0]


def action(operation: str) -> str:
    ns, port = OPERATIONS[operation]
    return f"{ns}:{port}:{operation}"


def response_action(operation: str) -> str:
    return action(operation) + "Response"


def tag(operation: str, local: str) -> str:
    """A (qualified) element of `operation`'s messages."""
    return f"{{{namespace(operation)}}}{local}"


# --- enumerations (WSDL simple types) ---------------------------------------------------------
ACTION_ADD: Final = "AJOUT"
ACTION_REMOVE: Final = "SUPPRESSION"
ACTION_CHANGE: Final = "MODIFICATION"
AUTHORIZATION_ACTIONS: Final = (ACTION_ADD, ACTION_REMOVE)  # habilitations actionType
OTP_ACTIONS: Final = (ACTION_ADD, ACTION_CHANGE, ACTION_REMOVE)  # patients actionTypeEnum
ROLE_ATTENDING: Final = "MEDECIN_TRAITANT"  # roleType
ROLES: Final = (ROLE_ATTENDING,)
MODE_ALL: Final = "TOUTE"
MODE_ACTIVE: Final = "ACTIVE"
MODE_BLOCKED: Final = "INTERDITE"
MODES: Final = (MODE_ALL, MODE_ACTIVE, MODE_BLOCKED)  # modeType
DATE_LAST_AUTHORIZATION: Final = "LASTAUTORIZATION"
DATE_LAST_DOCUMENT: Final = "LASTDOC"
DATE_TYPES: Final = (DATE_LAST_AUTHORIZATION, DATE_LAST_DOCUMENT)  # dateTypeEnum
CHANNEL_SMS: Final = "SMS"
CHANNEL_EMAIL: Final = "EMAIL"
CHANNEL_TYPES: Final = (CHANNEL_SMS, CHANNEL_EMAIL)  # otpChannelTypeEnum

# Identifier types (OIDs) in the answers.
PROFESSIONAL_ID_TYPE: Final = "1.2.250.1.71.4.2.1"  # nationalIdType of a professional
INS_ID_TYPE: Final = "1.2.250.1.213.1.4.10"  # patientIdentifier of the DMP's examples (test NIR)
DATE_FORMAT: Final = "%Y%m%d%H%M%S"  # startDate, startOfAuthorization, lastActionDate...

# --- statuses ---------------------------------------------------------------------------------
STATUS_OK: Final = "DMPOk"
STATUS_INVALID_REQUEST: Final = "DMPInvalidRequest"  # a value out of the WSDL's enumeration, a bad date...
STATUS_ACCESS_DENIED: Final = "DMPAccessDeniedByRightsService"  # the rights (policy) refuse
STATUS_BLOCKED: Final = "DMPAccessDeniedBlocked"  # the professional is blocked (INTERDITE) on this DMP
STATUS_NOT_FOUND: Final = "DMPNotFound"  # the VIHF's patient has no DMP
STATUS_CLOSED: Final = "DMPClosed"
STATUS_AUTHENTICATION_REQUIRED: Final = "DMPAuthenticationRequired"  # DMP_XDS_AUTH=none: nobody to judge
STATUS_ACCESS_EXISTS: Final = "DMPPatientAccessFound"  # createPatientAccess when the account exists
STATUS_ACCESS_NOT_FOUND: Final = "DMPPatientAccessNotFound"  # OTP/credentials of an account not created
STATUS_SERVICE_CLOSED: Final = "DMPServiceClosed"  # a transaction the DMP has withdrawn (TD0.0)
STATUSES: Final = (
    STATUS_OK,
    STATUS_INVALID_REQUEST,
    STATUS_ACCESS_DENIED,
    STATUS_BLOCKED,
    STATUS_NOT_FOUND,
    STATUS_CLOSED,
    STATUS_AUTHENTICATION_REQUIRED,
    STATUS_ACCESS_EXISTS,
    STATUS_ACCESS_NOT_FOUND,
    STATUS_SERVICE_CLOSED,
)

# Contexts of success the DMP's examples show, word for word (LPS may display or match them).
CONTEXT_ALREADY_AUTHORIZED: Final = "Autorisation déjà présente aucune action effectuée"
CONTEXT_OTP_UPDATED: Final = "OTP mis à jour"
IDENTITY_CERTIFICATION_CLOSED: Final = (
    "TD0.0 (identityCertification) is closed since 30/09/2023: the DMP no longer gives a patient's "
    "identity from their NIR; get the INS from the INSi service (or the Vitale card) instead"
)

# Labels of the specialties (ANS TRE_R38, shown as `libSpeciality` prefixed by the profession's
# name, as in the DMP's TD1.6 example). A code not listed is shown by its profession alone.
SPECIALTY_LABELS: Final = {"SM26": "Qualifié en Médecine générale (SM)"}
PROFESSION_CODES_PREFIX: Final = "G15_"  # codeSpeciality = G15_<profession>/<specialty>


def specialties(roles: tuple[str, ...]) -> tuple[str, ...]:
    """`codeSpeciality` values from a VIHF's role codes: `G15_<profession>/<specialty>` for each
    specialty (`G15_10/SM26`), or `G15_<profession>` alone when the VIHF names none."""
    professions = [r for r in roles if r.isdigit()]
    if not professions:
        return ()
    profession = professions[0]
    named = [r for r in roles if not r.isdigit() and r not in sv.CITIZEN_ROLES]
    return tuple(f"{PROFESSION_CODES_PREFIX}{profession}/{s}" for s in named) or (
        f"{PROFESSION_CODES_PREFIX}{profession}",
    )


def specialty_label(code: str) -> str:
    """`libSpeciality` of a `codeSpeciality`: "Médecin - Qualifié en Médecine générale (SM)"."""
    profession, _, specialty = code.removeprefix(PROFESSION_CODES_PREFIX).partition("/")
    name = sv.PROFESSIONS.get(profession, profession)
    label = SPECIALTY_LABELS.get(specialty, "")
    return f"{name} - {label}" if label else name
