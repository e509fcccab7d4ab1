"""What the focus tells the rest of the server: participants joining, changing, leaving.

Listeners (the mixer, the live roster of the web UI, the conference event
package) register with :meth:`focus.service.FocusService.subscribe` and are
called synchronously, in order, right after the focus changed its state; a
listener must not block (schedule work instead).  A listener that raises is
logged and skipped: it cannot break call handling.
"""

from __future__ import annotations

from dataclasses import dataclass


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
