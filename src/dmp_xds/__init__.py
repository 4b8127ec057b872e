"""dmp-xds: IHE XDS.b registry and repository for the French DMP."""

__version__ = "0.1.0"
