"""The bus between nodes: PostgreSQL ``LISTEN``/``NOTIFY`` (docs/scaling.md).

Each node listens on the channel ``mrf.<node name>``.  A node that is asked
about a conference homed elsewhere sends the home a request and waits for
its reply on its own channel::

    {"op": "roster", "id": 7, "reply": "mrf.mrf-1", "conference": "retro", ...}
    {"reply_to": 7, "ok": true, "result": {...}}

Operations (served by the home, :meth:`ClusterBus._serve`): ``roster`` (the
home's live roster of the conference), ``dial-out`` (the home places the
call), ``mute`` (a participant of the home).  Payloads are JSON, compressed
(zlib, base64) so that a roster of a few hundred participants fits
PostgreSQL's 8000-byte NOTIFY limit; a larger reply is refused with an error
(``too_large``) rather than cut.  Requests time out after ``timeout`` seconds
(the home died, or is overloaded): the caller answers 503.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import zlib
from typing import Any

import psycopg
from psycopg import sql

from focus.dialout import DialOutError

logger = logging.getLogger(__name__)

MAX_PAYLOAD = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more


class BusError(Exception):
    """A request got no usable answer (timeout, home gone, reply too large)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def channel_of(node: str) -> str:
    return f"mrf.{node}"


def encode(message: dict[str, Any]) -> str:
    return base64.b64encode(zlib.compress(json.dumps(message).encode(), 6)).decode("ascii")


MAX_DECODED = 1 << 20  # a small NOTIFY may not inflate to more than this


def decode(payload: str) -> dict[str, Any]:
    inflater = zlib.decompressobj()
    data = inflater.decompress(base64.b64decode(payload, validate=True), MAX_DECODED)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("message inflates too far, or is cut")
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


class ClusterBus:
    """One node's end of the bus: serves its homes' operations, asks other homes."""

    def __init__(self, conninfo: str, node: str, focus: Any, *, timeout: float = 5.0) -> None:
        self.conninfo = conninfo
        self.node = node
        self.focus = focus
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._sender: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()

    async def start(self) -> None:
        self._listener = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        self._sender = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        await self._listener.execute(
            sql.SQL("LISTEN {}").format(sql.Identifier(channel_of(self.node)))
        )
        self._task = asyncio.get_running_loop().create_task(self._receive())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for connection in (self._listener, self._sender):
            if connection is not None:
                with contextlib.suppress(psycopg.Error):
                    await connection.close()
        self._listener = self._sender = None
        for future in self._waiting.values():
            future.cancel()

    async def _send(self, node: str, message: dict[str, Any]) -> None:
        payload = encode(message)
        if len(payload) > MAX_PAYLOAD:
            raise BusError("too_large", f"bus message of {len(payload)} bytes")
        assert self._sender is not None
        async with self._send_lock:
            await self._sender.execute("SELECT pg_notify(%s, %s)", (channel_of(node), payload))

    async def request(self, node: str, op: str, **arguments: Any) -> dict[str, Any]:
        """Ask ``node`` (a home) to run ``op``; its ``result``, or :class:`BusError`."""
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        message = {"op": op, "id": number, "reply": self.node, **arguments}
        try:
            await self._send(node, message)
            reply = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise BusError("unavailable", f"no answer from {node} within "
                                          f"{self.timeout:.0f} s") from None  # fmt: skip
        except psycopg.Error as exc:
            raise BusError("unavailable", f"bus: {type(exc).__name__}") from exc
        finally:
            self._waiting.pop(number, None)
        if not reply.get("ok"):
            raise BusError(str(reply.get("code", "error")), str(reply.get("detail", "")))
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    async def _receive(self) -> None:
        assert self._listener is not None
        async for notify in self._listener.notifies():
            try:
                message = decode(notify.payload)
            except (ValueError, zlib.error) as exc:  # not ours, or damaged: dropped
                logger.warning("bus: undecodable message dropped (%s)", type(exc).__name__)
                continue
            if "reply_to" in message:
                future = self._waiting.get(message["reply_to"])
                if future is not None and not future.done():
                    future.set_result(message)
            elif "op" in message and isinstance(message.get("reply"), str):
                asyncio.get_running_loop().create_task(self._answer(message))

    async def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"reply_to": message.get("id")}
        try:
            reply.update(ok=True, result=self._serve(message))
        except BusError as exc:
            reply.update(ok=False, code=exc.code, detail=exc.detail)
        except DialOutError as exc:
            reply.update(ok=False, code=f"dial-out:{exc.status}", detail=exc.detail)
        try:
            await self._send(message["reply"], reply)
        except BusError as exc:  # e.g. a roster too large for one NOTIFY
            refusal = {"reply_to": message.get("id"), "ok": False, "code": exc.code,
                       "detail": exc.detail}  # fmt: skip
            await self._send(message["reply"], refusal)
        except psycopg.Error as exc:
            logger.warning("bus: reply to %s lost (%s)", message["reply"], type(exc).__name__)

    def _serve(self, message: dict[str, Any]) -> dict[str, Any]:
        """Run one operation for another node, on this node (the conference's home)."""
        op, conference = message.get("op"), message.get("conference")
        if not isinstance(conference, str):
            raise BusError("invalid", "conference must be a name")
        if op == "roster":
            return {"participants": self.focus.roster(conference)}
        if op == "dial-out":
            target = message.get("uri")
            if self.focus.dialout is None:
                raise BusError("not_implemented", "dial-out is not enabled on the home")
            if not isinstance(target, str) or not target.strip() or len(target) > 512:
                raise BusError("invalid", "uri must be a SIP URI")
            if self.focus.homing is not None:
                self.focus.homing.claim(conference)  # renew: the call is placed here
            call = self.focus.dialout.start(conference, target)
            logger.info("conference %s: dial-out to %s (asked by %s)", conference,
                        call.participant, message["reply"])  # fmt: skip
            return {"entry": call.roster_entry()}
        if op == "mute":
            call = self.focus.find_call(str(message.get("call_id")))
            if call is None or call.conference.name != conference:
                raise BusError("not_found", "no such participant in this conference")
            self.focus.set_muted(call.call_id, bool(message.get("muted")))
            return {"entry": call.roster_entry()}
        raise BusError("invalid", f"unknown operation {op!r}")
