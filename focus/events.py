"""What the focus tells the rest of the server: participants joining, changing, leaving.

The events travel on one explicit :class:`FocusEventBus` (the focus's
``events``; the composition root may hand one in).  Listeners (the mixer, the
live roster of the web UI, the conference event package, floor control)
register with :meth:`FocusEventBus.subscribe` (or
:meth:`focus.service.FocusService.subscribe`, the same bus) and are called
synchronously, in order, right after the focus changed its state; a listener
must not block (schedule work instead).  A listener that raises is logged and
skipped: it cannot break call handling.  Whoever changes a participant's state
(the focus, its dial-out) publishes with :meth:`FocusEventBus.emit`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    """A participant was admitted and answered (its streams are keyed and bound)."""

    conference: str  # conference name
    call_id: str
    participant: str  # AOR or "anonymous"
    role: str
    joined_by: str  # "dial-in" or "dial-out"


@dataclass(frozen=True, slots=True)
class ParticipantUpdated:
    """Streams, keys, hold state or mute changed (re-INVITE, mute from the API)."""

    conference: str
    call_id: str
    participant: str
    state: str  # roster state: "connected", "on-hold", ...
    muted: bool


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    """The participant is gone; its streams are released and its keys wiped."""

    conference: str
    call_id: str
    participant: str
    reason: str  # "bye", "no ACK", "removed from the authorized list", "shutdown", ...


type FocusEvent = ParticipantJoined | ParticipantUpdated | ParticipantLeft


class FocusEventBus:
    """Participant events from the focus to its listeners, in subscription order."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[FocusEvent], None]] = []

    def subscribe(self, listener: Callable[[FocusEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns an unsubscriber."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: FocusEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("focus event listener %r failed on %s", listener, event)
