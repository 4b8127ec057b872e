"""Every name of the DMP administration endpoint, in one place: its namespace (also the target
namespace of schemas/dmp/DMP_Administration.xsd), its operations and their WS-Addressing actions,
and the fault subcodes it answers with.

The namespace is this project's own: the public DMP's administration web services (TD0.x of
the DMPi guide) are not published as a WSDL one could implement, so the endpoint names its
messages itself, on the IHE model (document/literal, SOAP 1.2, action = namespace + operation,
response action = request action + "Response").
"""

from __future__ import annotations

import datetime as dt
from typing import Final

NS_DMP_ADMIN: Final = "urn:dmp-xds:2026:dmp-admin"
ACTION_PREFIX: Final = NS_DMP_ADMIN + ":"

# Operation names: the request element is `<name>Request`, the response `<name>Response`, the
# action `ACTION_PREFIX + name`.
CREATE_DMP: Final = "CreateDmp"
UPDATE_DMP: Final = "UpdateDmp"
CLOSE_DMP: Final = "CloseDmp"
REOPEN_DMP: Final = "ReopenDmp"
DESTROY_DMP: Final = "DestroyDmp"
GRANT_AUTHORIZATION: Final = "GrantAuthorization"
RENEW_AUTHORIZATION: Final = "RenewAuthorization"
REVOKE_AUTHORIZATION: Final = "RevokeAuthorization"
GET_DMP_STATUS: Final = "GetDmpStatus"
GET_ACCESS_HISTORY: Final = "GetAccessHistory"
GET_NOTIFICATIONS: Final = "GetNotifications"
ACKNOWLEDGE_NOTIFICATIONS: Final = "AcknowledgeNotifications"
DECLARE_REPRESENTATIVE: Final = "DeclareLegalRepresentative"
REMOVE_REPRESENTATIVE: Final = "RemoveLegalRepresentative"
LIST_REPRESENTATIVES: Final = "ListLegalRepresentatives"
BLOCK_PROFESSIONAL: Final = "BlockProfessional"
UNBLOCK_PROFESSIONAL: Final = "UnblockProfessional"
OPERATIONS: Final = (
    CREATE_DMP,
    UPDATE_DMP,
    CLOSE_DMP,
    REOPEN_DMP,
    DESTROY_DMP,
    GRANT_AUTHORIZATION,
    RENEW_AUTHORIZATION,
    REVOKE_AUTHORIZATION,
    GET_DMP_STATUS,
    GET_ACCESS_HISTORY,
    GET_NOTIFICATIONS,
    ACKNOWLEDGE_NOTIFICATIONS,
    DECLARE_REPRESENTATIVE,
    REMOVE_REPRESENTATIVE,
    LIST_REPRESENTATIVES,
    BLOCK_PROFESSIONAL,
    UNBLOCK_PROFESSIONAL,
)


def action(operation: str) -> str:
    return ACTION_PREFIX + operation


def tag(local: str) -> str:
    return f"{{{NS_DMP_ADMIN}}}{local}"


def request_tag(operation: str) -> str:
    return tag(operation + "Request")


def response_tag(operation: str) -> str:
    return tag(operation + "Response")


# SOAP fault subcodes (in NS_DMP_ADMIN), after the Sender code.
FAULT_INVALID_REQUEST: Final = (NS_DMP_ADMIN, "InvalidRequest")  # the message breaks the schema or a rule
FAULT_ACCESS_DENIED: Final = (NS_DMP_ADMIN, "AccessDenied")  # the policy refuses (HTTP 403)
FAULT_UNKNOWN_DMP: Final = (NS_DMP_ADMIN, "UnknownDmp")  # the patient has no DMP
FAULT_INVALID_STATE: Final = (NS_DMP_ADMIN, "InvalidState")  # the record's state forbids it (already closed...)
FAULT_AUTHENTICATION_REQUIRED: Final = (NS_DMP_ADMIN, "AuthenticationRequired")  # DMP_XDS_AUTH=none

# GetAccessHistory: entries returned when the request names no Limit, and at most.
HISTORY_DEFAULT_LIMIT: Final = 200
HISTORY_MAX_LIMIT: Final = 1000


def stamp(value: dt.datetime) -> str:
    """An xs:dateTime in UTC, as the messages (and the trace details of their operations) write it."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
