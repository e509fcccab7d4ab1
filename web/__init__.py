"""The conference web UI and REST API (Starlette); see :func:`web.app.create_app`.

Sits on top of the services: ``web`` imports ``focus`` and ``mrf.settings``;
nothing imports ``web`` (``mrf serve`` loads it by name).
"""

from web.app import create_app

__all__ = ["create_app"]
