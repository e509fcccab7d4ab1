"""Media-plane metrics for ``GET /metrics`` (Prometheus text exposition format 0.0.4).

``prometheus_text(focus, pool)`` renders, per participant stream (labels
``conference``, ``participant``, ``stream``):

* ``mrf_rtp_packets_received_total`` / ``mrf_rtp_packets_sent_total``
* ``mrf_rtp_packets_lost`` — cumulative loss from the peer (RFC 3550 §6.4.1)
* ``mrf_rtp_jitter_seconds`` — interarrival jitter of the peer (RFC 3550 §A.8)
* ``mrf_srtp_auth_failures_total`` / ``mrf_srtp_replays_total``

and, per conference mixer (label ``conference``):

* ``mrf_mixer_participants``, ``mrf_mixer_ticks_total``,
  ``mrf_mixer_dropped_ticks_total``, ``mrf_mixer_tick_p99_seconds`` (recent ticks)
* ``mrf_mixer_jitter_underruns_total``, ``mrf_mixer_late_packets_total``

`collect()` returns the same as `RtpMetricSample` rows for other renderers.

Label values come from a :class:`MetricNames`: :data:`PLAIN_NAMES` puts the
conference name and the participant's URI in them (for a scraper holding the
scrape token); :class:`OpaqueNames` puts keyed hashes instead -- stable for the
process's life, unlinkable to a name without its key, one per call for a
participant -- so an anonymous scrape names no one (web/metrics.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from focus.call import FocusCall
from mrf.rtp.conference import RtpMixerPool

_HELP = {
    "mrf_rtp_packets_received_total": ("counter", "Authenticated RTP packets received"),
    "mrf_rtp_packets_sent_total": ("counter", "RTP packets sent"),
    "mrf_rtp_packets_lost": ("gauge", "Cumulative RTP packets lost from the peer (RFC 3550)"),
    "mrf_rtp_jitter_seconds": ("gauge", "Interarrival jitter of the peer's RTP (RFC 3550)"),
    "mrf_srtp_auth_failures_total": ("counter", "SRTP/SRTCP packets failing authentication"),
    "mrf_srtp_replays_total": ("counter", "SRTP/SRTCP packets rejected as replays"),
    "mrf_mixer_participants": ("gauge", "Streams mixed in the conference"),
    "mrf_mixer_ticks_total": ("counter", "20 ms mixer ticks run"),
    "mrf_mixer_dropped_ticks_total": ("counter", "Mixer ticks skipped because the loop was late"),
    "mrf_mixer_tick_p99_seconds": ("gauge", "99th percentile compute time of recent ticks"),
    "mrf_mixer_jitter_underruns_total": ("counter", "Jitter-buffer underruns"),
    "mrf_mixer_late_packets_total": ("counter", "Packets too late for the jitter buffer"),
}


@dataclass(frozen=True, slots=True)
class RtpMetricSample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


class MetricNames(Protocol):
    """The label values that stand for a conference and a participant's call."""

    def conference(self, name: str) -> str: ...
    def participant(self, call: FocusCall) -> str: ...


class CallSource(Protocol):
    """Where the calls come from (``focus.service.FocusService``)."""

    @property
    def calls(self) -> list[FocusCall]: ...


class PlainNames:
    """The conference's name and the participant's URI."""

    def conference(self, name: str) -> str:
        return name

    def participant(self, call: FocusCall) -> str:
        return str(call.participant)


@dataclass(frozen=True, slots=True)
class OpaqueNames:
    """``c-`` / ``p-`` + 16 hex digits of HMAC-SHA256 under ``key`` (of the name; of the
    call's Call-ID, so two calls of one person are two unrelated labels)."""

    key: bytes = field(repr=False)

    def _tag(self, kind: str, value: str) -> str:
        digest = hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind[0]}-{digest[:16]}"

    def conference(self, name: str) -> str:
        return self._tag("conference", name)

    def participant(self, call: FocusCall) -> str:
        return self._tag("participant", str(call.call_id))


PLAIN_NAMES = PlainNames()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _stream_samples(calls: Iterable[FocusCall], names: MetricNames) -> list[RtpMetricSample]:
    rows: list[RtpMetricSample] = []
    for call in calls:
        for index, stream in sorted(call.streams.items()):
            labels = (
                ("conference", names.conference(call.conference.name)),
                ("participant", names.participant(call)),
                ("stream", str(index)),
            )
            values = {
                "mrf_rtp_packets_received_total": stream.packets_in,
                "mrf_rtp_packets_sent_total": stream.packets_out,
                "mrf_rtp_packets_lost": stream.packets_lost,
                "mrf_rtp_jitter_seconds": stream.jitter_ms / 1000,
                "mrf_srtp_auth_failures_total": stream.auth_failures,
                "mrf_srtp_replays_total": stream.replays,
            }
            rows += [RtpMetricSample(name, labels, float(v)) for name, v in values.items()]
    return rows


def _mixer_samples(pool: RtpMixerPool, names: MetricNames) -> list[RtpMetricSample]:
    rows: list[RtpMetricSample] = []
    for name, conference in sorted(pool.conferences.items()):
        labels = (("conference", names.conference(name)),)
        members = conference.mixer.participants
        values = {
            "mrf_mixer_participants": len(members),
            "mrf_mixer_ticks_total": conference.ticks,
            "mrf_mixer_dropped_ticks_total": conference.dropped_ticks,
            "mrf_mixer_jitter_underruns_total": sum(p.jitter.underruns for p in members),
            "mrf_mixer_late_packets_total": sum(p.jitter.late for p in members),
            "mrf_mixer_tick_p99_seconds": conference.tick_percentile(99),
        }
        rows += [RtpMetricSample(n, labels, float(v)) for n, v in values.items()]
    return rows


def collect(
    focus: CallSource, pool: RtpMixerPool | None = None, names: MetricNames = PLAIN_NAMES
) -> list[RtpMetricSample]:
    """Every metric of the media plane: `focus.calls` streams and `pool` mixers."""
    rows = _stream_samples(focus.calls, names)
    return rows + (_mixer_samples(pool, names) if pool is not None else [])


def render(samples: Iterable[RtpMetricSample]) -> str:
    """Prometheus text format: HELP/TYPE once per metric name, then its samples."""
    lines: list[str] = []
    seen: set[str] = set()
    for sample in sorted(samples, key=lambda s: s.name):
        if sample.name not in seen:
            seen.add(sample.name)
            kind, text = _HELP.get(sample.name, ("untyped", sample.name))
            lines += [f"# HELP {sample.name} {text}", f"# TYPE {sample.name} {kind}"]
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels)
        lines.append(f"{sample.name}{{{labels}}} {sample.value:g}")
    return "\n".join(lines) + ("\n" if lines else "")


def prometheus_text(
    focus: CallSource, pool: RtpMixerPool | None = None, names: MetricNames = PLAIN_NAMES
) -> str:
    """What ``GET /metrics`` serves for the media plane."""
    return render(collect(focus, pool, names))


__all__ = [
    "PLAIN_NAMES", "CallSource", "MetricNames", "OpaqueNames", "PlainNames", "RtpMetricSample",
    "collect", "prometheus_text", "render",
]  # fmt: skip
