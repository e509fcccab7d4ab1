"""BFCP (RFC 8855; RFC 4582 version 1), sans-I/O: codec, connection, floor control server.

* :mod:`mrf.bfcp.codes`: the IANA code points as ``IntEnum`` s;
* :mod:`mrf.bfcp.attribute`: the attribute table and codec (grouped included);
* :mod:`mrf.bfcp.message`: the common header, the message grammar, stream framing;
* :mod:`mrf.bfcp.connection`: transactions and Error answers on one TCP/TLS connection;
* :mod:`mrf.bfcp.floor` / :mod:`mrf.bfcp.server`: the floor control server.
"""

from mrf.bfcp.attribute import BfcpAttribute, BfcpErrorValue, BfcpGroup, BfcpStatus
from mrf.bfcp.codes import (
    BfcpAttributeType,
    BfcpErrorCode,
    BfcpPrimitive,
    BfcpPriority,
    BfcpRequestStatus,
)
from mrf.bfcp.connection import BfcpConfig, BfcpConnection, BfcpRole
from mrf.bfcp.errors import BfcpError, BfcpLocalError, BfcpRemoteError
from mrf.bfcp.message import BfcpMessage, BfcpStreamParser
from mrf.bfcp.server import BfcpFloorServer, BfcpOutgoing

__all__ = [
    "BfcpAttribute",
    "BfcpAttributeType",
    "BfcpConfig",
    "BfcpConnection",
    "BfcpError",
    "BfcpErrorCode",
    "BfcpErrorValue",
    "BfcpFloorServer",
    "BfcpGroup",
    "BfcpLocalError",
    "BfcpMessage",
    "BfcpOutgoing",
    "BfcpPrimitive",
    "BfcpPriority",
    "BfcpRemoteError",
    "BfcpRequestStatus",
    "BfcpRole",
    "BfcpStatus",
    "BfcpStreamParser",
]
