"""The DMP's HL7 V3 patient services, free of any I/O: the GDP messages ("gestion du dossier
patient partagé": TD0.2, TD1.1-1.4) and PDQ V3 (TD0.5) read into dataclasses (parse.py) and
answered (build.py), with every code, OID and action of theirs in vocabulary.py; and the LPS's
side, its requests and its reading of the answers (request.py).
"""
