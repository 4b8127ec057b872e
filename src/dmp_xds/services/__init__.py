"""What the server does, free of any transport: one module per IHE transaction and the request
pipeline around them (authenticate, record gate, transaction, trace)."""
