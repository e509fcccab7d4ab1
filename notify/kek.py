"""Where a subscriber's PSK S/MIME key (KEK) comes from (TS 33.328 Annex I, decision (b)).

The KEK of a subscriber is the TEK of its MIKEY-TICKET crypto session whose
Prot type is "PSK S/MIME" (decision (a): 242); the key identifier is that
crypto session's SPI.  Three sources, in the order the notifier asks them:

1. the crypto session established **in the SUBSCRIBE itself**: a ``Key-Mgmt``
   header carrying the base64 TRANSFER_INIT (``Key-Mgmt: prot=mikey;
   data="..."``, modelled on RFC 4567 §4.1); the 200 carries the TRANSFER_RESP
   the same way.  A :class:`SubscribeKeyExchange` runs it
   (:class:`notify.mikey.NotifyMikeyExchange`); the KEK belongs to that
   subscription only;
2. :class:`CallKekProvider`: the PSK S/MIME crypto session the participant
   negotiated in its INVITE (``FocusCall.mikey.smime``, filled by the focus's
   MIKEY-TICKET responder);
3. :class:`StaticKekProvider`: keys set directly (tests, operators).

See docs/notify.md.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from notify.subscription import NotifyRemoteError

KEY_MGMT_HEADER = "Key-Mgmt"
MAX_KEY_MGMT_SIZE = 8192  # bytes of base64 accepted in one header


@dataclass(frozen=True, slots=True)
class NotifyKek:
    """A KEK and its identifier (the crypto session SPI); the key never appears in repr."""

    kek: bytes = field(repr=False)
    key_id: bytes

    def __post_init__(self) -> None:
        if len(self.kek) not in (16, 32):
            raise ValueError(f"a KEK is 16 or 32 bytes, got {len(self.kek)}")
        if not self.key_id:
            raise ValueError("the key identifier (SPI) must not be empty")


class KekProvider(Protocol):
    """Looks a subscriber's KEK up; None when it has none."""

    def lookup(self, conference: str, identity: str) -> NotifyKek | None: ...


class SubscribeKeyExchange(Protocol):
    """Runs the MIKEY-TICKET exchange carried in a SUBSCRIBE (see the module docstring).

    ``answer`` gets the conference URI, the subscriber's authorized identity
    (its AOR) and the decoded TRANSFER_INIT, and returns the TRANSFER_RESP to
    put in the 200 and the KEK it established.  It raises
    :class:`~notify.subscription.NotifyRemoteError` to refuse the SUBSCRIBE
    (403 when the Initiator's KMS identity is not the subscriber, 488 for an
    unacceptable message, 503 when the KMS is unreachable).
    """

    async def answer(
        self, conference_uri: str, identity: str, message: bytes
    ) -> tuple[bytes, NotifyKek]: ...


class StaticKekProvider:
    """KEKs set directly: ``set(conference, identity, kek, key_id)``."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], NotifyKek] = {}

    def set(self, conference: str, identity: str, kek: bytes, key_id: bytes) -> None:
        self._keys[(conference, identity)] = NotifyKek(kek, key_id)

    def remove(self, conference: str, identity: str) -> None:
        self._keys.pop((conference, identity), None)

    def lookup(self, conference: str, identity: str) -> NotifyKek | None:
        return self._keys.get((conference, identity))


def parse_key_mgmt(value: str) -> tuple[str, bytes]:
    """``(prot, message)`` of ``prot=mikey; data="<base64>"``; ValueError if malformed."""
    params: dict[str, str] = {}
    for part in value.split(";"):
        name, eq, item = part.strip().partition("=")
        if eq:
            params[name.strip().lower()] = item.strip().strip('"')
    prot, data = params.get("prot"), params.get("data")
    if not prot or not data:
        raise ValueError("Key-Mgmt needs prot= and data=")
    if len(data) > MAX_KEY_MGMT_SIZE:
        raise ValueError("Key-Mgmt data too long")
    try:
        return prot.lower(), base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"Key-Mgmt data is not base64: {exc}") from None


def format_key_mgmt(prot: str, message: bytes) -> str:
    """The header value for ``message`` (the 200's TRANSFER_RESP)."""
    return f'prot={prot}; data="{base64.b64encode(message).decode("ascii")}"'


class CallKekProvider:
    """KEKs from the PSK S/MIME crypto sessions negotiated in participants' INVITEs.

    ``calls()`` returns the focus's live calls; a call whose ``mikey`` keys
    carry ``smime = (TEK, SPI)`` (``focus.keying``, the crypto session with Prot
    type PSK S/MIME) gives its participant's KEK for that conference.
    """

    def __init__(self, calls: Callable[[], Iterable[Any]]) -> None:
        self.calls = calls

    def lookup(self, conference: str, identity: str) -> NotifyKek | None:
        for call in self.calls():
            if call.conference.name != conference or str(call.identity.aor) != identity:
                continue
            smime = getattr(getattr(call, "mikey", None), "smime", None)
            if smime is not None and smime[0]:  # wiped at hang-up: no KEK then
                tek, spi = smime
                return NotifyKek(bytes(tek), spi)  # a copy for this NOTIFY only
        return None


class ChainedKekProvider:
    """The first KEK any of ``providers`` knows."""

    def __init__(self, providers: Sequence[KekProvider]) -> None:
        self.providers = tuple(providers)

    def lookup(self, conference: str, identity: str) -> NotifyKek | None:
        for provider in self.providers:
            found = provider.lookup(conference, identity)
            if found is not None:
                return found
        return None

    def set(self, conference: str, identity: str, kek: bytes, key_id: bytes) -> None:
        """Keys set directly go to the first provider that takes them."""
        for provider in self.providers:
            setter = getattr(provider, "set", None)
            if callable(setter):
                setter(conference, identity, kek, key_id)
                return


def key_mgmt_message(value: str) -> bytes:
    """The MIKEY message of a ``Key-Mgmt`` header; 488 when malformed or not MIKEY."""
    try:
        prot, message = parse_key_mgmt(value)
    except ValueError as exc:
        raise NotifyRemoteError(488, "Not Acceptable Here", warning=str(exc)) from exc
    if prot != "mikey":
        raise NotifyRemoteError(
            488, "Not Acceptable Here", warning=f"key management protocol {prot[:32]!r}"
        )
    return message
