"""CDA R2 documents (HL7 France / CI-SIS): header reading, and the document as readable HTML."""
