"""How the server is reached: HTTP (serve.py), SOAP 1.2 and MTOM (soap/), HL7 v2 over MLLP (feed/),
ATNA syslog (atna.py). It turns the wire into service calls and back."""
