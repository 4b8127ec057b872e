"""One SOAP call inside spyne: what our transport hands a service method, and how its result or
its failure comes back out of spyne to the dispatcher (soap/service.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lxml import etree
from spyne import MethodContext

from dmp_xds.services.context import Services, TransactionResult
from dmp_xds.services.gate import DocumentAccess
from dmp_xds.transport.soap.envelope import SoapRequest
from dmp_xds.xds.xop import Attachment


@dataclass
class CallContext:
    """What our transport gives a spyne call (spyne's `ctx.udc`), and what it brings back."""

    services: Services
    request: SoapRequest
    attachments: Mapping[str, Attachment]
    result: TransactionResult | None = None
    error: BaseException | None = None
    principal: object | None = None
    access: DocumentAccess | None = None  # what the caller may see (None: no authentication)
    extra: dict[str, object] = field(default_factory=dict)


def run_call(ctx: MethodContext, work: Callable[[CallContext], TransactionResult]) -> etree._Element:
    """Run a service method's work and keep its result, or its exception, for the dispatcher."""
    call: CallContext = ctx.udc
    try:
        result = work(call)
    except BaseException as exc:
        # Spyne turns any exception into an anonymous InternalError: keep the original so the
        # dispatcher can tell a protocol fault from a bug.
        call.error = exc
        raise
    call.result = result
    return result.payload
