"""BFCP code points (RFC 8855 §5, IANA "Binary Floor Control Protocol (BFCP)" registries).

Values from RFC 8855 §5.1 (primitives) and §5.2 (attributes), checked against
the IANA bfcp-parameters registry.  Wireshark 4.0 names primitives 15–18
by a draft numbering; these enums follow RFC 8855 (libre agrees).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "BfcpAttributeType",
    "BfcpErrorCode",
    "BfcpPrimitive",
    "BfcpPriority",
    "BfcpRequestStatus",
]


class BfcpPrimitive(IntEnum):
    """Message primitives (RFC 8855 §5.1, Table 1; IANA "BFCP Primitives")."""

    FLOOR_REQUEST = 1  # RFC 8855 §5.3.1
    FLOOR_RELEASE = 2  # RFC 8855 §5.3.2
    FLOOR_REQUEST_QUERY = 3  # RFC 8855 §5.3.3
    FLOOR_REQUEST_STATUS = 4  # RFC 8855 §5.3.4
    USER_QUERY = 5  # RFC 8855 §5.3.5
    USER_STATUS = 6  # RFC 8855 §5.3.6
    FLOOR_QUERY = 7  # RFC 8855 §5.3.7
    FLOOR_STATUS = 8  # RFC 8855 §5.3.8
    CHAIR_ACTION = 9  # RFC 8855 §5.3.9
    CHAIR_ACTION_ACK = 10  # RFC 8855 §5.3.10
    HELLO = 11  # RFC 8855 §5.3.11
    HELLO_ACK = 12  # RFC 8855 §5.3.12
    ERROR = 13  # RFC 8855 §5.3.13
    FLOOR_REQUEST_STATUS_ACK = 14  # RFC 8855 §5.3.14 (unreliable transport only)
    FLOOR_STATUS_ACK = 15  # RFC 8855 §5.3.16 (unreliable transport only)
    GOODBYE = 16  # RFC 8855 §5.3.17
    GOODBYE_ACK = 17  # RFC 8855 §5.3.18


class BfcpAttributeType(IntEnum):
    """Attribute types (RFC 8855 §5.2, Table 2; IANA "BFCP Attributes")."""

    BENEFICIARY_ID = 1  # RFC 8855 §5.2.1
    FLOOR_ID = 2  # RFC 8855 §5.2.2
    FLOOR_REQUEST_ID = 3  # RFC 8855 §5.2.3
    PRIORITY = 4  # RFC 8855 §5.2.4
    REQUEST_STATUS = 5  # RFC 8855 §5.2.5
    ERROR_CODE = 6  # RFC 8855 §5.2.6
    ERROR_INFO = 7  # RFC 8855 §5.2.7
    PARTICIPANT_PROVIDED_INFO = 8  # RFC 8855 §5.2.8
    STATUS_INFO = 9  # RFC 8855 §5.2.9
    SUPPORTED_ATTRIBUTES = 10  # RFC 8855 §5.2.10
    SUPPORTED_PRIMITIVES = 11  # RFC 8855 §5.2.11
    USER_DISPLAY_NAME = 12  # RFC 8855 §5.2.12
    USER_URI = 13  # RFC 8855 §5.2.13
    BENEFICIARY_INFORMATION = 14  # RFC 8855 §5.2.14 (grouped)
    FLOOR_REQUEST_INFORMATION = 15  # RFC 8855 §5.2.15 (grouped)
    REQUESTED_BY_INFORMATION = 16  # RFC 8855 §5.2.16 (grouped)
    FLOOR_REQUEST_STATUS = 17  # RFC 8855 §5.2.17 (grouped)
    OVERALL_REQUEST_STATUS = 18  # RFC 8855 §5.2.18 (grouped)


class BfcpErrorCode(IntEnum):
    """ERROR-CODE values (RFC 8855 §5.2.6, Table 5; IANA "BFCP Error Codes")."""

    CONFERENCE_DOES_NOT_EXIST = 1
    USER_DOES_NOT_EXIST = 2
    UNKNOWN_PRIMITIVE = 3
    UNKNOWN_MANDATORY_ATTRIBUTE = 4
    UNAUTHORIZED_OPERATION = 5
    INVALID_FLOOR_ID = 6
    FLOOR_REQUEST_ID_DOES_NOT_EXIST = 7
    MAX_FLOOR_REQUESTS_REACHED = 8
    USE_TLS = 9
    UNABLE_TO_PARSE_MESSAGE = 10
    USE_DTLS = 11
    UNSUPPORTED_VERSION = 12
    INCORRECT_MESSAGE_LENGTH = 13
    GENERIC_ERROR = 14


class BfcpRequestStatus(IntEnum):
    """REQUEST-STATUS values (RFC 8855 §5.2.5, Table 4)."""

    PENDING = 1
    ACCEPTED = 2
    GRANTED = 3
    DENIED = 4
    CANCELLED = 5
    RELEASED = 6
    REVOKED = 7


class BfcpPriority(IntEnum):
    """PRIORITY values (RFC 8855 §5.2.4, Table 3); values above 4 count as Highest."""

    LOWEST = 0
    LOW = 1
    NORMAL = 2
    HIGH = 3
    HIGHEST = 4
