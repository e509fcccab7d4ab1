"""The MIKEY-TICKET key management service (RFC 6043; TS 33.328 project decision (c)).

``core`` is sans-I/O (bytes + ``now`` in, bytes out), ``keys`` the KMS's own
keys file, ``http`` the asyncio HTTP listener, ``client`` the HTTP client.
"""
