"""MSRP (RFC 4975) sans-I/O core, with the RFC 7701 chat-room pieces.

``uri`` (MSRP URIs), ``message`` (requests, responses, Byte-Range, status
codes), ``parser`` (stream framing), ``reassembly`` (Byte-Range reassembly into
a storage), ``connection`` (one connection: sessions, responses, reports,
timers), ``cpim`` (message/cpim, RFC 3862), ``switch`` (the conference chat
room's routing decisions, RFC 7701).  No sockets here: ``mrf.chat`` is the
asyncio adapter of the focus, ``mrf.ue`` the client's.
"""

from mrf.msrp.errors import MsrpError, MsrpLocalError, MsrpRemoteError

__all__ = ["MsrpError", "MsrpLocalError", "MsrpRemoteError"]
