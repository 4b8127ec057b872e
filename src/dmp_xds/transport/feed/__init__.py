"""ITI-8 Patient Identity Feed: HL7 v2 messages (hl7.py) over MLLP (mllp.py)."""
