"""Clients of the product: the reference XDS.b client, the conformance harness, the bulk loader.
They use the product's public parts (xds, dmp, config, the transport's MTOM codec), never its
services; only the bulk loader writes through storage, on purpose (bulk inserts)."""
