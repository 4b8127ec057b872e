"""`python -m dmp_xds.conformance nist|plans ...`."""

from dmp_xds.conformance.cli import conformance

if __name__ == "__main__":
    conformance()
