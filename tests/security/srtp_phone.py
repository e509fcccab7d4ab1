"""An SRTP "phone" for the security tests: sends a tone, keeps what it hears.

:class:`SrtpPhone` owns one UDP socket (the RTP port its offer names) and a
thread that every 20 ms sends one PCMU frame (RFC 3551) -- a sine of
``frequency`` Hz, or silence -- protected with the phone's own SDES key, and
unprotects whatever the focus sends with the focus's key from the answer
(:class:`mrf.rtp.srtp.SrtpContext`).  ``heard()`` is the decoded audio since
the last ``reset()``; ``tone_margin_db()`` says how far a frequency stands
above the rest of the spectrum, which is how a test knows the participant
still hears the room.  Packets that fail authentication are counted: after a
re-key the old key would fail them all.
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import threading
import time

import numpy as np

from mrf.rtp.codec import G711Codec
from mrf.rtp.packet import RtpPacket
from mrf.rtp.srtp import SrtpContext, SrtpDirection, SrtpRemoteError

SUITE = "AES_CM_128_HMAC_SHA1_80"
FRAME = 160  # 20 ms at 8 kHz


def answer_media(answer: bytes) -> tuple[str, int, bytes]:
    """The focus's media address and SDES key+salt (``a=crypto ... inline:``) of an answer."""
    text = answer.decode()
    host = re.findall(r"^c=IN IP4 (\S+)", text, re.M)[-1]
    port = int(re.findall(r"^m=audio (\d+) ", text, re.M)[0])
    key = re.findall(rf"a=crypto:\d+ {SUITE} inline:([A-Za-z0-9+/=]+)", text)[0]
    return host, port, base64.b64decode(key)


class SrtpPhone:
    """One participant's media: tone out (its key), audio in (the focus's key)."""

    def __init__(self, host: str = "127.0.0.1", frequency: float | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.005)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.key_salt = secrets.token_bytes(30)  # ours, offered in a=crypto
        self.frequency = frequency
        self.received = self.auth_failures = 0
        self._codec = G711Codec("PCMU")
        self._audio: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, answer: bytes) -> None:
        """Key both directions from the focus's answer and start sending and hearing."""
        host, port, focus_key = answer_media(answer)
        self._tx = SrtpContext(SUITE, self.key_salt, SrtpDirection.OUTBOUND)
        self._rx = SrtpContext(SUITE, focus_key, SrtpDirection.INBOUND)
        self._thread = threading.Thread(target=self._run, args=((host, port),), daemon=True)
        self._thread.start()

    def reset(self) -> None:
        with self._lock:
            self._audio.clear()

    def heard(self) -> np.ndarray:
        with self._lock:
            return np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)

    def wait_heard(self, seconds: float, timeout: float = 10.0) -> np.ndarray:
        """At least ``seconds`` of audio since the last reset (else what there is)."""
        deadline = time.monotonic() + timeout
        while self.heard().shape[0] < seconds * 8000 and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.heard()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        for context in (getattr(self, "_tx", None), getattr(self, "_rx", None)):
            if context is not None:
                context.wipe()
        self.sock.close()

    def _run(self, focus: tuple[str, int]) -> None:
        seq, stamp, ssrc = secrets.randbelow(30000), secrets.randbits(31), secrets.randbits(32)
        n, next_at = 0, time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_at:
                packet = RtpPacket(0, (seq + n) & 0xFFFF, (stamp + FRAME * n) & 0xFFFFFFFF,
                                   ssrc, self._frame(n))  # fmt: skip
                self.sock.sendto(self._tx.protect(bytes(packet)), focus)
                n, next_at = n + 1, next_at + 0.02
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            self._hear(data)

    def _frame(self, n: int) -> bytes:
        if self.frequency is None:
            return bytes([0xFF]) * FRAME  # PCMU silence
        t = (np.arange(FRAME) + n * FRAME) / 8000
        return self._codec.encode((0.3 * np.sin(2 * np.pi * self.frequency * t)).astype(np.float32))

    def _hear(self, data: bytes) -> None:
        if len(data) < 12 or 200 <= data[1] <= 204:  # RTCP
            return
        try:
            packet = RtpPacket.parse(self._rx.unprotect(data))
        except SrtpRemoteError:
            self.auth_failures += 1
            return
        self.received += 1
        if packet.payload_type == 0:
            with self._lock:
                self._audio.append(self._codec.decode(packet.payload).copy())


def tone_margin_db(audio: np.ndarray, frequency: float) -> float:
    """dB by which ``frequency`` (±15 Hz) stands above the strongest other band."""
    if audio.shape[0] < FRAME:
        return float("-inf")
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / 8000)
    near = np.abs(freqs - frequency) < 15
    far = np.abs(freqs - frequency) > 100
    return float(20 * np.log10((spectrum[near].max() + 1e-9) / (spectrum[far].max() + 1e-9)))
