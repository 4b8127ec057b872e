"""Command-line tools around ITI-18: `dmp-xds query ...` and `dmp-xds bench-load`."""
