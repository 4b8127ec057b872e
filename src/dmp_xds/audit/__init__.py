"""The access trace: one append-only, hash-chained row per access or change (trail.py), read by
the patient, checked by `dmp-xds audit verify`, exported as RFC 3881 / ATNA messages (atna.py)."""
