"""The web front's HTTP binding: router, requests and responses, sessions, CSRF, security
headers, templates (templates/) and assets (static/). The pages' use cases are in services/."""
