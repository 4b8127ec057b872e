"""Every SAML, VIHF and certificate name the security layer uses, in one place.

VIHF attribute names were checked against public ANS material (see README, "Security"):
the CI-SIS "Volet Transport Synchrone" example VIHF (VIHF_Version 3.0) and the ANS
Pro Santé Connect VIHF builder (github.com/ansforge). The access-mode codes are the ANS
nomenclature TRE_R248_ModeAcces (OID 1.2.250.1.213.1.1.4.248).
"""

from __future__ import annotations

from cryptography.x509.oid import NameOID

# --- namespaces -----------------------------------------------------------------------------
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_HL7 = "urn:hl7-org:v3"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"

TAG_ASSERTION = f"{{{NS_SAML}}}Assertion"
TAG_ISSUER = f"{{{NS_SAML}}}Issuer"
TAG_SUBJECT = f"{{{NS_SAML}}}Subject"
TAG_NAME_ID = f"{{{NS_SAML}}}NameID"
TAG_CONDITIONS = f"{{{NS_SAML}}}Conditions"
TAG_AUDIENCE_RESTRICTION = f"{{{NS_SAML}}}AudienceRestriction"
TAG_AUDIENCE = f"{{{NS_SAML}}}Audience"
TAG_AUTHN_STATEMENT = f"{{{NS_SAML}}}AuthnStatement"
TAG_AUTHN_CONTEXT = f"{{{NS_SAML}}}AuthnContext"
TAG_AUTHN_CONTEXT_CLASS_REF = f"{{{NS_SAML}}}AuthnContextClassRef"
TAG_ATTRIBUTE_STATEMENT = f"{{{NS_SAML}}}AttributeStatement"
TAG_ATTRIBUTE = f"{{{NS_SAML}}}Attribute"
TAG_ATTRIBUTE_VALUE = f"{{{NS_SAML}}}AttributeValue"
TAG_SIGNATURE = f"{{{NS_DS}}}Signature"
TAG_X509_CERTIFICATE = f"{{{NS_DS}}}X509Certificate"
TAG_HL7_ROLE = f"{{{NS_HL7}}}Role"
TAG_HL7_PURPOSE_OF_USE = f"{{{NS_HL7}}}PurposeOfUse"

ISSUER_FORMAT_X509 = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
AUTHN_CONTEXT_SMARTCARD = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"

# --- VIHF attributes (confirmed names) ------------------------------------------------------
ATTR_VIHF_VERSION = "VIHF_Version"
ATTR_AUTHENTICATION_MODE = "Authentification_Mode"
# The ANS Pro Santé Connect builder spells it with a lower-case m: accept both when reading.
ATTR_AUTHENTICATION_MODE_ALIASES = ("Authentification_Mode", "Authentification_mode")
ATTR_STRUCTURE_ID = "Identifiant_Structure"
ATTR_SECTOR = "Secteur_Activite"
ATTR_SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"  # the user's display name
ATTR_ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
ATTR_PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"  # the access mode
ATTR_ACCESS_REASON = "Mode_Acces_Raison"
ATTR_RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"  # patient INS (CX)
ATTR_RESOURCE_URN = "Ressource_URN"
ATTR_LPS_NAME = "LPS_Nom"
ATTR_LPS_VERSION = "LPS_Version"
ATTR_LPS_ID = "LPS_ID"
ATTR_LPS_DMP_APPROVAL = "LPS_ID_HOMOLOGATION_DMP"

VIHF_VERSION = "3.0"
RESOURCE_URN_DMP = "urn:dmp"
AUTHENTICATION_DIRECT = "DIRECTE"  # signed with the professional's own card
AUTHENTICATION_INDIRECT = "INDIRECTE"  # signed by the establishment's server certificate

# Access modes: ANS TRE_R248_ModeAcces.
ACCESS_MODE_SYSTEM = "1.2.250.1.213.1.1.4.248"
ACCESS_MODE_SYSTEM_NAME = "mode acces VIHF 2.0"
ACCESS_NORMAL = "normal"
ACCESS_EMERGENCY = "bris_de_glace"
ACCESS_REGULATION = "centre_15"
ACCESS_MODES = {ACCESS_NORMAL: "Accès normal", ACCESS_EMERGENCY: "Accès en bris de glace",
                ACCESS_REGULATION: "Accès par un centre de régulation médicale"}

# Professions (role code system, ANS "professions" G15 / TRE_G15).
PROFESSION_SYSTEM = "1.2.250.1.71.1.2.7"
PROFESSIONS = {"10": "Médecin", "21": "Pharmacien", "40": "Chirurgien-Dentiste",
               "50": "Sage-Femme", "60": "Infirmier"}
# The patient acting on their own record. Not an ANS code: checked against public ANS / DMPi
# material (DMP integration guide as summarized by the ANS-derived devbox-sante DMP client docs:
# the VIHF subject role is a profession code of the SUBJECT_ROLE set, e.g. "10" Médecin; no
# patient role is defined, since the public DMP reaches patients through its own portal, "Mon
# espace santé", not through the LPS web services). So this server names the role itself, in
# its own code system, and a patient VIHF is accepted only when an organisation signs it.
PATIENT_ROLE = "PATIENT"
# A minor's legal representative acting on the minor's record (a local code too), through the
# same organisation certificate as patients; they are recognized only if the operator declared
# them for that patient (dmp-xds dmp representative add).
REPRESENTATIVE_ROLE = "REPRESENTANT_LEGAL"
PATIENT_ROLE_SYSTEM = "urn:dmp-xds:role"
CITIZEN_ROLES = frozenset({PATIENT_ROLE, REPRESENTATIVE_ROLE})

# Sector of activity (ANS TRE_R02 SecteurActivite), e.g. SA07 "Cabinet individuel".
SECTOR_SYSTEM = "1.2.250.1.71.4.2.4"

# --- certificates ---------------------------------------------------------------------------
# National id assigning authorities (CI-SIS): "8" + RPPS, or ADELI, under 1.2.250.1.71.4.2.1.
NATIONAL_ID_ROOT = "1.2.250.1.71.4.2.1"
RPPS_PREFIX = "8"
# Where the test PKI puts each identity field in a certificate subject (ANS IGC-Santé model:
# the holder's national id in CN, names in SN / GN, profession in title, structure in O / OU).
# Source named for checking: ASIP Santé, "IGC-Santé - Etapes 1 et 2 - Les gabarits des
# certificats X.509 et des CRLs - Certificats logiciels et certificats embarqués dans les cartes
# CPx" (V1.1.0, 2019), whose card profile carries the national id (type prefix + number, "8" +
# RPPS) as the first part of the CN, which may go on after a "/" (cps.holder_of keeps what comes
# before it). The full text of the gabarits could not be read here: the CN layout is the one
# point to confirm against it before production.
SUBJECT_NATIONAL_ID = NameOID.COMMON_NAME
SUBJECT_FAMILY_NAME = NameOID.SURNAME
SUBJECT_GIVEN_NAME = NameOID.GIVEN_NAME
SUBJECT_PROFESSION = NameOID.TITLE
SUBJECT_ORGANIZATION = NameOID.ORGANIZATION_NAME
SUBJECT_STRUCTURE_ID = NameOID.ORGANIZATIONAL_UNIT_NAME

# --- document visibility (CI-SIS JDV_J08 confidentiality codes) -----------------------------
CONFIDENTIALITY_DMP_SYSTEM = "1.2.250.1.213.1.1.4.13"
MASKED_FROM_PROFESSIONALS = (CONFIDENTIALITY_DMP_SYSTEM, "MASQUE_PS")
INVISIBLE_TO_PATIENT = (CONFIDENTIALITY_DMP_SYSTEM, "INVISIBLE_PATIENT")
INVISIBLE_TO_REPRESENTATIVES = (CONFIDENTIALITY_DMP_SYSTEM, "INVISIBLE_REPRESENTANTS_LEGAUX")
