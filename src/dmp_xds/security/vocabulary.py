"""Every SAML, VIHF and certificate name the security layer uses, in one place.

VIHF attribute names were checked against public ANS material (see README, "Security"):
the CI-SIS "Volet Transport Synchrone" example VIHF (VIHF_Version 3.0) and the ANS
Pro Santé Connect VIHF builder (github.com/ansforge). The access-mode codes are the ANS
nomenclature TRE_R248_ModeAcces (OID 1.2.250.1.213.1.1.4.248).
"""

from __future__ import annotations

from cryptography.x509.oid import NameOID

from dmp_xds.xds.vocabulary import NS_HL7

# --- namespaces -----------------------------------------------------------------------------
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
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
AUTHN_CONTEXT_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"  # the kit's indirect mode
AUTHN_CONTEXT_TLS_CLIENT = "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient"
# The AuthnContextDecl text of a reinforced indirect (AIR) VIHF, as the kit and DRIMbox write it.
AUTHN_DECL_AIR = "APP_BROWSER_AUTH"
TAG_AUTHN_CONTEXT_DECL = f"{{{NS_SAML}}}AuthnContextDecl"

# --- VIHF attributes (confirmed names) ------------------------------------------------------
ATTR_VIHF_VERSION = "VIHF_Version"
ATTR_AUTHENTICATION_MODE = "Authentification_Mode"
# The DMP's own example tokens spell it with a lower-case m (the kit and DRIMbox with a capital):
# both are read, and the builder of DMP-shaped tokens writes the examples' spelling.
ATTR_AUTHENTICATION_MODE_DMP = "Authentification_mode"
ATTR_AUTHENTICATION_MODE_ALIASES = (ATTR_AUTHENTICATION_MODE, ATTR_AUTHENTICATION_MODE_DMP)
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
# Optional: the patient's "secret connection" (DRIMbox sends it; read, not enforced).
ATTR_CONFIDENTIALITY = "urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code"

VIHF_VERSION = "3.0"
# 3.0: the DMP's example tokens, the kit, DRIMbox. 4.0: an ANS implementation guide's "Mapping
# VIHF" table (an establishment's HL7 v2 / CDA flow to the DMP): same attributes, up to four roles.
VIHF_VERSIONS = (VIHF_VERSION, "4.0")
RESOURCE_URN_DMP = "urn:dmp"
# The DMP's three authentication modes (dmpi.md section 5): the professional's card makes the TLS
# connection and signs the VIHF, or leaves it unsigned; or an establishment's certificate does both,
# "reinforced" (AIR) when the establishment authenticated its user strongly itself.
AUTHENTICATION_DIRECT = "DIRECTE"
AUTHENTICATION_INDIRECT = "INDIRECTE"
AUTHENTICATION_INDIRECT_REINFORCED = "INDIRECTE_RENFORCEE"
AUTHENTICATION_MODES = (AUTHENTICATION_DIRECT, AUTHENTICATION_INDIRECT, AUTHENTICATION_INDIRECT_REINFORCED)
INDIRECT_MODES = frozenset({AUTHENTICATION_INDIRECT, AUTHENTICATION_INDIRECT_REINFORCED})
# Not a DMP mode: a patient (or legal representative) signed in to this server's web space, who
# has no VIHF (security/web_principal.py).
AUTHENTICATION_WEB = "WEB"

# Access modes: ANS TRE_R248_ModeAcces.
ACCESS_MODE_SYSTEM = "1.2.250.1.213.1.1.4.248"
# The examples write "mode acces VIHF 2.0", the kit and DRIMbox "1.0": the name is not read.
ACCESS_MODE_SYSTEM_NAME = "mode acces VIHF 2.0"
ACCESS_NORMAL = "normal"
ACCESS_EMERGENCY = "bris_de_glace"
ACCESS_REGULATION = "centre_15"
ACCESS_MODES = {
    ACCESS_NORMAL: "Accès normal",
    ACCESS_EMERGENCY: "Accès en bris de glace",
    ACCESS_REGULATION: "Accès par un centre de régulation médicale",
}

# Professions (role code system, ANS "professions" G15 / TRE_G15).
PROFESSION_SYSTEM = "1.2.250.1.71.1.2.7"
PROFESSIONS = {"10": "Médecin", "21": "Pharmacien", "40": "Chirurgien-Dentiste", "50": "Sage-Femme", "60": "Infirmier"}
PROFESSION_DOCTOR = "10"
# Specialties (the VIHF's second role, ANS TRE_R38 SpecialiteOrdinale): SM26 is the general
# practitioner of the examples; SM25 "Médecine du travail" makes an occupational doctor, a column
# of its own in the DMP's rights matrix.
SPECIALTY_SYSTEM = "1.2.250.1.71.4.2.5"
SPECIALTY_GENERAL_PRACTICE = "SM26"
SPECIALTY_OCCUPATIONAL_MEDICINE = "SM25"
SPECIALTIES = {
    SPECIALTY_GENERAL_PRACTICE: "Qualifié en Médecine Générale (SM)",
    SPECIALTY_OCCUPATIONAL_MEDICINE: "Médecine du travail (SM)",
}
# The patient acting on their own record. Not an ANS code: checked against public ANS / DMPi
# material (DMP integration guide as summarized by the ANS-derived devbox-sante DMP client docs:
# the VIHF subject role is a profession code of the SUBJECT_ROLE set, e.g. "10" Médecin; no
# patient role is defined, since the public DMP reaches patients through its own portal, "Mon
# espace santé", not through the LPS web services). So this server names the role itself, in
# its own code system, and a patient VIHF is accepted only when a patient portal signs it (an
# organisation certificate whose structure DMP_XDS_PATIENT_PORTALS lists).
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
# National id assigning authority (CI-SIS) of professionals' ids, "8" + RPPS or "0" + ADELI.
NATIONAL_ID_ROOT = "1.2.250.1.71.4.2.1"
RPPS_PREFIX = "8"
# A professional's national id (ANS "idNat_PS") is a type digit then the number, per
# ansforge/IG-FHIR-PDSM4DMP-EEDS, input/fsh/Model/PSIdNat.fsh: 0 + ADELI; 8 + RPPS; and for the
# staff of a structure, type + the structure's id + "/" + an internal id (1 cabinet ADELI,
# 3 FINESS, 4 SIREN, 5 SIRET, 6 cabinet RPPS). The "/" is part of the id: cut there, every staff
# member of a structure would be one person.
NATIONAL_ID_ADELI_PREFIX = "0"
NATIONAL_ID_STAFF_TYPES = "13456"
# Where IGC-Santé certificates carry identities. A card (PS) certificate has the holder's idNat_PS
# as its CN, in one multi-valued RDN with their surname and given name, their profession's name
# in title, C=FR, and no O or OU; an organisation (ORG) certificate has the structure's national
# id in OU, its name in O, and a free name in CN. Source: ANS, ansforge/DRIM-M_DRIMbox Readme.md,
# "Authentification vers le DMP", which shows one of each, "CN=899700367917 + SURNAME=… +
# GIVENNAME=…, T=Médecin, C=FR" and "CN=DRIMbox, OU=499700367909006, O=CABINET M DOC0036790,
# ST=Paris (75), C=FR", and says a PS certificate has no OU. (The ASIP gabarits, "IGC-Santé - Les
# gabarits des certificats X.509", were not readable here; these two ANS examples agree with the
# test cards open-source DMP clients parse, e.g. "SN=…+CN=899700075122+GN=…,title=Pharmacien,C=FR".)
SUBJECT_NATIONAL_ID = NameOID.COMMON_NAME
SUBJECT_FAMILY_NAME = NameOID.SURNAME
SUBJECT_GIVEN_NAME = NameOID.GIVEN_NAME
SUBJECT_PSEUDONYM = NameOID.PSEUDONYM  # staff cards may name their holder by a pseudonym only
SUBJECT_PROFESSION = NameOID.TITLE  # the profession's name ("Médecin"), not its code
SUBJECT_ORGANIZATION = NameOID.ORGANIZATION_NAME
SUBJECT_STRUCTURE_ID = NameOID.ORGANIZATIONAL_UNIT_NAME
# Private extensions of the GIP-CPS card certificates (read in the DMP's signed direct example
# token with openssl; the kit reads the card type so, AssertionLibrary/cps/SamlPsAssertion.cs): the
# card type, an INTEGER of ANS TRE_G02 TypeProduit (its OID is the extension's: 0 CPS, 1 CPF, 2 CPE); the profession, an INTEGER code of TRE_G15 (same OID as the VIHF role system); the
# specialties, a SEQUENCE of UTF8String codes of TRE_R38 (same OID as the VIHF specialty system).
EXT_CARD_TYPE = "1.2.250.1.71.1.2.2"
EXT_PROFESSION = PROFESSION_SYSTEM
EXT_SPECIALTIES = SPECIALTY_SYSTEM
CARD_CPS, CARD_CPF, CARD_CPE, CARD_CPA = "CPS", "CPF", "CPE", "CPA"
CARD_TYPES = {0: CARD_CPS, 1: CARD_CPF, 2: CARD_CPE, 3: CARD_CPA}

# --- document visibility (CI-SIS JDV_J08 confidentiality codes) -----------------------------
CONFIDENTIALITY_DMP_SYSTEM = "1.2.250.1.213.1.1.4.13"
MASKED_FROM_PROFESSIONALS = (CONFIDENTIALITY_DMP_SYSTEM, "MASQUE_PS")
INVISIBLE_TO_PATIENT = (CONFIDENTIALITY_DMP_SYSTEM, "INVISIBLE_PATIENT")
INVISIBLE_TO_REPRESENTATIVES = (CONFIDENTIALITY_DMP_SYSTEM, "INVISIBLE_REPRESENTANTS_LEGAUX")
