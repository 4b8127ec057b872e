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
AUTHENTICATION_INDIRECT_REINFORCED = "INDIRECTE_RENFORCEE"  # indirect, the user strongly authenticated

# Access modes: ANS TRE_R248_ModeAcces.
ACCESS_MODE_SYSTEM = "1.2.250.1.213.1.1.4.248"
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
# Specialties, the VIHF's second role (dmpi.md section 5: SM26 @1.2.250.1.71.4.2.5).
SPECIALTY_SYSTEM = "1.2.250.1.71.4.2.5"
PROFESSIONS = {"10": "Médecin", "21": "Pharmacien", "40": "Chirurgien-Dentiste", "50": "Sage-Femme", "60": "Infirmier"}
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
# The card's type, in a private extension of IGC-Santé card certificates ("GipCardType"): DER
# whose last byte is 0 CPS, 1 CPF, 2 CDE/CPE, 3 CPA. Source: the DMP's official C# kit,
# AssertionLibrary/cps/SamlPsAssertion.cs (getCardType, translateCardType).
CARD_TYPE_EXTENSION = "1.2.250.1.71.1.2.2"
CARD_TYPE_CPS = "CPS"  # a health professional's card
CARD_TYPE_CPF = "CPF"  # a professional in training
CARD_TYPE_CPE = "CPE"  # an establishment's staff card (secretary...), CDE/CPE
CARD_TYPE_CPA = "CPA"  # an authorized staff member's card
CARD_TYPES = {0: CARD_TYPE_CPS, 1: CARD_TYPE_CPF, 2: CARD_TYPE_CPE, 3: CARD_TYPE_CPA}

# --- document visibility (CI-SIS JDV_J08 confidentiality codes) -----------------------------
CONFIDENTIALITY_DMP_SYSTEM = "1.2.250.1.213.1.1.4.13"
MASKED_FROM_PROFESSIONALS = (CONFIDENTIALITY_DMP_SYSTEM, "MASQUE_PS")
INVISIBLE_TO_PATIENT = (CONFIDENTIALITY_DMP_SYSTEM, "INVISIBLE_PATIENT")
INVISIBLE_TO_REPRESENTATIVES = (CONFIDENTIALITY_DMP_SYSTEM, "INVISIBLE_REPRESENTANTS_LEGAUX")
