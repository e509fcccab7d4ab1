"""mrf: a secure SIP conference server (MRF/focus) for IMS networks (TS 33.328 Annex G/H/I).

The package holds the media plane, the TLS helpers, the settings and the one
composition root (``mrf serve``); ``mrf.__main__`` is the ``mrf`` command line.
"""

__version__ = "0.1.0"
