"""The principal of a patient (or a minor's legal representative) signed in to the web space.

The web has no VIHF: the patient proves who they are to the web front itself (password and a
one-time code), which then acts as they would over SOAP. The principal says so in its
`authentication_mode` (WEB) and names no signer: no structure vouches for a patient on the web,
and their trace rows say nothing of a portal. Built by the web's sign-in and by the tests alike.
"""

from __future__ import annotations

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder
from dmp_xds.security.vihf import Principal

# Who signed a web principal: nobody, but the patient themself (no certificate, no structure).
_NO_SIGNER = Holder("citizen", "", "", "", "", "", "", "", "")


def patient_principal(patient_id: str, name: str = "", representative_id: str = "", session_id: str = "") -> Principal:
    """The patient `patient_id` (their INS, as the record keys it) on the web; with a
    `representative_id`, that legal representative acting for the (minor) patient. `session_id`
    names the web session, where a VIHF would name its assertion."""
    citizen = sv.REPRESENTATIVE_ROLE if representative_id else sv.PATIENT_ROLE
    return Principal(
        kind="representative" if representative_id else "patient",
        user_id=representative_id or patient_id,
        name=name,
        roles=(citizen,),
        structure_id="",
        sector="",
        access_mode=sv.ACCESS_NORMAL,
        access_reason="",
        patient_id=patient_id,
        software="dmp-xds web",
        authentication_mode=sv.AUTHENTICATION_WEB,
        assertion_id=session_id,
        signer=_NO_SIGNER,
    )
