"""The web front: its HTTP binding, templates and server-rendered charts."""
