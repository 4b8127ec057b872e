"""`dmp-xds`: the command line of the server and of its tools, one module per command group."""
