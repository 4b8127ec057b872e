"""SOAP 1.2: envelopes and WS-Addressing, faults, MTOM/XOP, the spyne dispatch of each endpoint."""
