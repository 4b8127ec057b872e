"""The CI-SIS layer on the XDS rules: value sets, CI-SIS metadata rules, the CDA layer (schema,
schematrons), and the validators a deployment builds from its settings."""
