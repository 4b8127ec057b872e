"""The patient's record: consent, closure, reopening, destruction, authorizations (records.py),
its SOAP administration endpoint (service.py) and its command line (cli.py)."""
