"""TLS with client certificates under uvicorn, and the hook that shows the certificate to the app.

uvicorn terminates TLS but does not put the client's certificate in the ASGI scope. This
protocol class (uvicorn's httptools protocol with our connection limits, `http=` setting) reads it from the TLS
connection once, when the connection is made, and adds it to each request's scope as the ASGI
`tls` extension (`scope["extensions"]["tls"]["client_cert_chain"]`, PEM strings). Python 3.11
gives only the peer's own certificate; the intermediates come from DMP_XDS_TRUST_INTERMEDIATES.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from dmp_xds.config import Settings
from dmp_xds.transport.http_protocol import GuardedHttpToolsProtocol


class TlsHttpToolsProtocol(GuardedHttpToolsProtocol):
    _client_cert_chain: list[str] | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self._client_cert_chain = [ssl.DER_cert_to_PEM_cert(der)] if der else None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._client_cert_chain is not None:
            self.scope["extensions"] = {"tls": {"client_cert_chain": list(self._client_cert_chain)}}


def client_ca_bundle(settings: Settings) -> Path:
    """One PEM file with the trust anchors and intermediates, for OpenSSL's handshake check
    (the application checks again, with CRLs and key usage, in security/cps.py)."""
    bundle = settings.data_dir / "tls-client-cas.pem"
    parts = [
        p.read_bytes() for p in Settings.paths(settings.trust_anchors) + Settings.paths(settings.trust_intermediates)
    ]
    tmp = bundle.with_suffix(".tmp")
    tmp.write_bytes(b"\n".join(parts))
    tmp.replace(bundle)
    return bundle


def uvicorn_tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run() options: HTTPS with an optional client certificate (its absence is
    answered by a SOAP fault that says so, rather than by a failed handshake)."""
    if not settings.tls_certificate:
        return {}
    options: dict[str, Any] = {"ssl_certfile": settings.tls_certificate, "ssl_keyfile": settings.tls_key}
    if settings.auth != "none":
        options.update(
            ssl_ca_certs=str(client_ca_bundle(settings)), ssl_cert_reqs=ssl.CERT_OPTIONAL, http=TlsHttpToolsProtocol
        )
    return options
