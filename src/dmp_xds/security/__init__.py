"""Who is calling and what they may do: CPS certificates (cps.py), the VIHF identity assertion
(vihf.py), the access policy (policy.py, pure), and the test PKI generator (pki.py)."""
