"""`python -m dmp_xds.cli ...`: the `dmp-xds` command."""

from dmp_xds.cli.main import main

main()
