"""The XDS rules that depend on what the registry holds, pure over snapshots the store reads."""
