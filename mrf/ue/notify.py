"""``mrf ue --subscribe``: the conference event package from the subscriber's side.

:class:`UeSubscription` sends a SUBSCRIBE for ``Event: conference`` (RFC 6665
§4.1, RFC 4575 §3) from the UE's SIP endpoint, answers every NOTIFY of its
dialog 200, opens PSK S/MIME bodies (TS 33.328 Annex I, :mod:`notify.smime`),
keeps the merged roster (full documents replace it, partial ones patch it,
RFC 4575 §4.6) and prints one ``notify`` event per NOTIFY::

    {"event": "notify", "version": 3, "state": "partial", "protected": true,
     "subscription_state": "active;expires=3597", "user_count": 2,
     "users": {"sip:bob@127.0.0.1": "connected"},
     "endpoints": {"sip:bob@127.0.0.1:5072": "connected"},
     "floors": {"sip:bob@127.0.0.1": "granted"}}

With ``--mikey`` the SUBSCRIBE carries a MIKEY-TICKET TRANSFER_INIT with one
crypto session of Prot type PSK S/MIME (``Key-Mgmt: prot=mikey; data=...``,
docs/notify.md); the 200's TRANSFER_RESP gives the KEK (its TEK) and the key
id (its SPI, decision (b)).  Opt-in debugging: ``--key-dump FILE`` appends
``PSK-SMIME <conference> <key id hex> <KEK hex>`` lines (never by default),
``--save-notify DIR`` writes every NOTIFY body as received.

``mrf ue join --mikey --subscribe`` needs no exchange in the SUBSCRIBE: its
INVITE's TRANSFER_INIT already carries the PSK S/MIME crypto session
(:mod:`mrf.ue.mikey`) and the focus finds that KEK by the caller's identity
(:class:`notify.kek.CallKekProvider`); it is passed here as ``kek``.

``mrf ue subscribe CONFERENCE-URI --as SIP-URI`` watches without joining
(:func:`run_subscribe`); ``mrf ue join ... --subscribe`` subscribes once joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focus.endpoint import SipEndpoint
from focus.kms.client import KmsUnavailable, kms_exchange
from focus.mikey.buffer import MikeyError
from focus.mikey.constants import MikeyProtTypes
from focus.mikey.exchange import MikeyProfile
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator
from focus.mikey.message import MikeyGenericIdEntry, MikeyMessage
from focus.sip.dialog import SipDialog, dialog_from_uac, uri_address
from focus.sip.headers import SipHeaders
from focus.sip.message import SipError, SipRequest, make_response
from focus.sip.refusal import warning_of
from focus.sip.transaction import RequestReceived, SipAddress
from focus.sip.uri import SipUri
from mrf.ue.chat import Emit
from notify.conference_info import (
    CONFERENCE_INFO_CONTENT_TYPE,
    ConferenceInfoError,
    ConferenceInfoNotice,
    parse_conference_info,
)
from notify.kek import KEY_MGMT_HEADER, NotifyKek, format_key_mgmt, parse_key_mgmt
from notify.smime import SmimeError, decrypt_auth_enveloped, parse_mime_entity

__all__ = ["UeRoster", "UeSubscription", "UeSubscriptionOptions"]

ACCEPT = f"{CONFERENCE_INFO_CONTENT_TYPE}, application/pkcs7-mime"
PSK_SMIME_CS = 1  # the CS ID of our one crypto session


@dataclass(frozen=True, slots=True)
class UeSubscriptionOptions:
    """What to subscribe to and how (a subset of ``mrf ue`` options)."""

    conference: str
    identity: str
    target: SipAddress
    transport: str = "udp"
    expires: int = 3600
    mikey: bool = False
    kms_url: str | None = None
    kms_key: str | None = None  # hex, from `mrf kms enroll`
    kms_identity: str | None = None
    prot_type_psk_smime: int = 242  # decision (a)
    key_dump: Path | None = None
    save_notify: Path | None = None


@dataclass(slots=True)
class UeRoster:
    """The merged view: endpoint entity -> (user, status, floor status)."""

    version: int | None = None
    endpoints: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)

    def apply(self, notice: ConferenceInfoNotice) -> bool:
        """Merge a document (RFC 4575 §4.6); False when a partial one skipped a version."""
        in_order = notice.state == "full" or (
            self.version is not None and notice.version == self.version + 1
        )
        if notice.state == "full":
            self.endpoints.clear()
        for user, state in notice.users.items():
            if state == "deleted":
                self.endpoints = {e: v for e, v in self.endpoints.items() if v[0] != user}
        for entity, status in notice.endpoints.items():
            if status == "deleted":
                self.endpoints.pop(entity, None)
            else:
                user = notice.endpoint_users.get(entity, "")
                self.endpoints[entity] = (user, status, notice.floors.get(entity))
        self.version = notice.version
        return in_order

    def summary(self) -> dict[str, dict[str, str]]:
        """``users`` (a present endpoint's status wins), ``endpoints`` and ``floors``."""
        users: dict[str, str] = {}
        floors: dict[str, str] = {}
        for user, status, floor in self.endpoints.values():
            if users.get(user) in (None, "disconnected"):
                users[user] = status
            if floor:
                floors[user] = floor
        endpoints = {entity: value[1] for entity, value in self.endpoints.items()}
        return {"users": users, "endpoints": endpoints, "floors": floors}


class UeSubscription:
    """One subscription of the UE (see the module docstring)."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        options: UeSubscriptionOptions,
        emit: Emit,
        *,
        kek: NotifyKek | None = None,
    ) -> None:
        """``kek``: a KEK already known (the INVITE's PSK S/MIME crypto session)."""
        self.endpoint = endpoint
        self.options = options
        self.emit = emit
        self.dialog: SipDialog | None = None
        self.kek: NotifyKek | None = kek
        self.roster = UeRoster()
        self.call_id = f"{secrets.token_hex(12)}@{options.target.host}"
        self.terminated = asyncio.Event()
        self.received = 0
        self._ready = asyncio.Event()
        self._queue: asyncio.Queue[SipRequest] = asyncio.Queue(maxsize=256)
        self._worker: asyncio.Task[None] | None = None
        self._transfer: MikeyTransferInitiator | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def subscribe(self) -> bool:
        """SUBSCRIBE (with the MIKEY exchange when asked); True on 2xx."""
        self._worker = asyncio.ensure_future(self._consume())
        try:
            request = self._request(await self._key_mgmt())
            response = await self.endpoint.request(request, self.options.target)
        except (KmsUnavailable, MikeyError, SipError, OSError, ValueError) as exc:
            self.emit({"event": "error", "detail": f"SUBSCRIBE failed: {exc}"})
            return False
        if not 200 <= response.status < 300:
            self.emit({"event": "refused", "request": "SUBSCRIBE", "status": response.status,
                       "reason": response.reason, "warning": warning_of(response)})  # fmt: skip
            self.terminated.set()
            return False
        self.dialog = dialog_from_uac(request, response, transport=self.options.transport)
        try:
            self._keys(response.headers.get(KEY_MGMT_HEADER))
        except (MikeyError, ValueError) as exc:
            self.emit({"event": "error", "detail": f"MIKEY-TICKET in the 200 refused: {exc}"})
            return False
        self._ready.set()
        granted = int(response.headers.get("Expires") or 0)
        if granted > 0:
            self._refresher = asyncio.ensure_future(self._refresh(granted))
        self.emit({
            "event": "subscribed", "conference": self.options.conference,
            "expires": int(response.headers.get("Expires") or 0),
            "protected": self.kek is not None,
            "key_id": self.kek.key_id.hex() if self.kek else None,
        })  # fmt: skip
        return True

    async def _key_mgmt(self) -> str | None:
        """REQUEST_INIT at the KMS, then the TRANSFER_INIT for one PSK S/MIME session."""
        options = self.options
        if not options.mikey:
            return None
        if not options.kms_url or not options.kms_key:
            raise ValueError("--mikey needs --kms URL and --kms-key HEX")
        profile = MikeyProfile(prot_types=MikeyProtTypes(psk_smime=options.prot_type_psk_smime))
        identity = str(SipUri.parse(options.kms_identity or options.identity).aor).encode()
        responder = str(SipUri.parse(options.conference).aor).encode()
        request = MikeyTicketRequest.build(
            identity, bytes.fromhex(options.kms_key), responders=[responder], now=time.time(),
            profile=profile,
        )  # fmt: skip
        reply = await kms_exchange(options.kms_url, bytes(request.message))
        granted = request.process_response(reply, now=time.time())
        session = MikeyGenericIdEntry(PSK_SMIME_CS, profile.prot_types.psk_smime)
        self._transfer = MikeyTransferInitiator.build(
            granted, responder, [session], [], now=time.time(), profile=profile
        )
        return format_key_mgmt("mikey", bytes(self._transfer.message))

    def _keys(self, value: str | None) -> None:
        """The KEK from the 200's TRANSFER_RESP: the TEK and SPI of our crypto session."""
        if self._transfer is None:
            self._dump()  # a KEK given at construction (or none)
            return
        if value is None:
            raise ValueError("the 200 carries no Key-Mgmt")
        prot, data = parse_key_mgmt(value)
        if prot != "mikey":
            raise ValueError(f"Key-Mgmt protocol {prot!r}")
        teks = self._transfer.process_response(data, now=time.time())
        entry = MikeyMessage.parse(data).header.generic_entry(PSK_SMIME_CS)
        if entry is None or PSK_SMIME_CS not in teks or not entry.spi:
            raise ValueError("no PSK S/MIME crypto session with an SPI in TRANSFER_RESP")
        self.kek = NotifyKek(teks[PSK_SMIME_CS][1], entry.spi)
        self._dump()

    def _dump(self) -> None:
        if self.options.key_dump is not None and self.kek is not None:  # explicit opt-in
            with self.options.key_dump.open("a") as out:
                out.write(f"PSK-SMIME {self.options.conference} {self.kek.key_id.hex()} "
                          f"{self.kek.kek.hex()}\n")  # fmt: skip

    def _request(self, key_mgmt: str | None) -> SipRequest:
        options = self.options
        local = self.endpoint.local_address(options.transport)
        params = "" if options.transport == "udp" else f";transport={options.transport}"
        user = SipUri.parse(options.identity).user or "ue"
        headers = SipHeaders()
        for name, value in (
            ("Max-Forwards", "70"),
            ("From", f"<{options.identity}>;tag={secrets.token_hex(8)}"),
            ("To", f"<{options.conference}>"),
            ("Call-ID", self.call_id),
            ("CSeq", "1 SUBSCRIBE"),
            ("Contact", f"<sip:{user}@{local.host}:{local.port}{params}>"),
            ("Event", "conference"),
            ("Accept", ACCEPT),
            ("Expires", str(options.expires)),
        ):
            headers.add(name, value)
        if key_mgmt is not None:
            headers.add(KEY_MGMT_HEADER, key_mgmt)
        return SipRequest("SUBSCRIBE", options.conference, headers)

    def owns(self, request: SipRequest) -> bool:
        """A NOTIFY of this subscription (it may overtake the 200, RFC 6665 §4.1.2.4)."""
        return request.method == "NOTIFY" and request.call_id == self.call_id

    def handle_notify(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        """Answer 200 at once, process in order (after the 200 to our SUBSCRIBE)."""
        try:
            self._queue.put_nowait(event.request)
        except asyncio.QueueFull:
            endpoint.respond(event.key, make_response(event.request, 503, "Busy"))
            return
        endpoint.respond(event.key, make_response(event.request, 200, "OK"))

    async def _consume(self) -> None:
        while True:
            request = await self._queue.get()
            await self._ready.wait()
            self._process(request)

    def _process(self, request: SipRequest) -> None:
        self.received += 1
        state = request.headers.get("Subscription-State") or ""
        report: dict[str, Any] = {"event": "notify", "version": None, "state": None,
                                  "protected": False, "subscription_state": state}  # fmt: skip
        if request.body:
            self._save(request)
            notice = self._notice(request, report)
            if notice is not None:
                if not self.roster.apply(notice):
                    self.emit({"event": "error", "detail": f"version gap at {notice.version}"})
                report.update(version=notice.version, state=notice.state,
                              user_count=notice.user_count, **self.roster.summary())  # fmt: skip
        self.emit(report)
        if state.strip().lower().startswith("terminated"):
            self.terminated.set()
            self.emit({"event": "unsubscribed", "subscription_state": state})

    def _notice(self, request: SipRequest, report: dict[str, Any]) -> ConferenceInfoNotice | None:
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        body = request.body
        try:
            if content_type == "application/pkcs7-mime":
                if self.kek is None:
                    raise SmimeError("a protected body but no KEK")
                entity = decrypt_auth_enveloped(body, self.kek.kek, self.kek.key_id)
                content_type, body = parse_mime_entity(entity)
                report["protected"] = True
            if content_type.split(";")[0].strip().lower() != CONFERENCE_INFO_CONTENT_TYPE:
                raise ConferenceInfoError(f"unexpected body type {content_type!r}")
            return parse_conference_info(body)
        except (SmimeError, ConferenceInfoError) as exc:
            self.emit({"event": "error", "detail": f"NOTIFY body refused: {exc}"})
            return None

    def _save(self, request: SipRequest) -> None:
        directory = self.options.save_notify
        if directory is None:
            return
        protected = (request.headers.get("Content-Type") or "").startswith("application/pkcs7")
        directory.mkdir(parents=True, exist_ok=True)
        name = f"notify-{self.call_id.split('@')[0][:8]}-{self.received:04d}"
        (directory / f"{name}.{'der' if protected else 'xml'}").write_bytes(request.body)

    async def _refresh(self, expires: int) -> None:
        """Refresh at 80 % of the granted duration (RFC 6665 §4.1.2.1), same Expires."""
        while self.dialog is not None and not self.terminated.is_set():
            await asyncio.sleep(max(1.0, expires * 0.8))
            request = self.dialog.create_request(
                "SUBSCRIBE", headers=[("Event", "conference"), ("Expires", str(expires))]
            )
            try:
                async with asyncio.timeout(10):
                    response = await self.endpoint.request(
                        request, uri_address(self.dialog.next_hop())
                    )
            except (TimeoutError, SipError, OSError) as exc:
                self.emit({"event": "error", "detail": f"refresh failed: {exc}"})
                return
            if not 200 <= response.status < 300:
                self.emit({"event": "error", "detail": f"refresh answered {response.status}"})
                return
            expires = int(response.headers.get("Expires") or expires)

    async def unsubscribe(self, timeout: float = 3.0) -> None:
        """``Expires: 0`` (RFC 6665 §4.1.2.3), then wait (bounded) for the final NOTIFY."""
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self.dialog is not None and not self.terminated.is_set():
            request = self.dialog.create_request(
                "SUBSCRIBE", headers=[("Event", "conference"), ("Expires", "0")]
            )
            with contextlib.suppress(TimeoutError, SipError, OSError):
                async with asyncio.timeout(timeout):
                    await self.endpoint.request(request, uri_address(self.dialog.next_hop()))
                    await self.terminated.wait()
        await self.close()

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self.kek = None
