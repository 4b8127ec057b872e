"""Conformance harness: runs NIST XDS testkit plans and our CI-SIS plans against any endpoint."""
