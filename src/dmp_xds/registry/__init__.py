"""The registry: tables, migrations entry points, the atomic store of a submission, queries."""
