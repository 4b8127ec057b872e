"""The reference XDS.b client: zeep SOAP client, metadata builder, `submit`/`retrieve` commands."""
