"""The patient's record: consent, closure, reopening, destruction, authorizations (records.py),
the messages of its SOAP administration endpoint (vocabulary.py, messages.py; the operations
are in soap/dmp_admin.py) and its command line (cli.py)."""
