"""Who is calling: CPS certificates (cps.py), the VIHF identity assertion (vihf.py), TLS (tls.py),
the test PKI generator (pki.py). Identity only: what the caller may do is the DMP policy's."""
