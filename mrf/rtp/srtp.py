"""SRTP/SRTCP contexts keyed per participant, on pylibsrtp (libsrtp 2).

Error tree::

    SrtpError
    ├── SrtpLocalError        our misuse (unknown suite, bad key length, wiped context)
    └── SrtpRemoteError       the peer's packet could not be unprotected
        ├── SrtpAuthError     tag mismatch (RFC 3711 §3.3 step 5) or unknown MKI (step 3)
        └── SrtpReplayError   replay-list rejection (RFC 3711 §3.3.2)

`SRTP_SUITES` maps the SDES crypto-suite names (RFC 4568 §6.2, RFC 6188 §7.1,
RFC 7714 §14.2) to libsrtp crypto policies.  pylibsrtp 1.0.0 exposes four
profiles (AES128_CM_SHA1_80/32, AEAD_AES_128/256_GCM); the RFC 6188
AES-256-CM suites are set on the libsrtp 2 `srtp_crypto_policy_t` directly
after checking that its layout is the one this module expects.

Inbound MKI (RFC 3711 §3.1, RFC 4568 §6.1 ``|mki-value:mki-length``): libsrtp is
driven through pylibsrtp, which has no MKI API, so a context given `rx_mki`
checks the MKI octets that sit between the encrypted portion (SRTCP: the
E-flag/index word) and the authentication tag, strips them -- the tag does not
cover them (RFC 3711 §4.2) -- and hands the rest to libsrtp.  Outbound packets
never carry an MKI.  AEAD suites refuse an MKI (`SrtpSuite.supports_mki`).

The media path avoids pylibsrtp's per-call copies: `SrtpContext.protect_rtp`
packs the RTP header and payload into the context's own buffer and libsrtp
protects it in place; `unprotect` (no MKI) copies the packet in once and the
plaintext out once.  Both call ``srtp_protect``/``srtp_unprotect`` of
pylibsrtp's compiled binding on the session's ``srtp_t`` (pylibsrtp 1.0
internals ``_binding.lib`` and ``Session._srtp``, checked by the tests).

Keys are never logged.  A context borrows its master key: given a
:class:`~focus.sdp.secret.SecretBytes` (the focus's plan holds the same
object) it keeps no copy of its own, given ``bytes`` it makes one holder.
`SrtpContext.wipe()` zeroes that holder, the key copy handed to libsrtp (the
policy's buffer) and the session's scratch buffer, and frees the libsrtp
session (libsrtp zeroises its own derived session keys on dealloc).  What it
cannot reach: pylibsrtp takes the key only as immutable ``bytes``, so one
short-lived copy is made for it at keying and left to the garbage collector.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pylibsrtp
from pylibsrtp._binding import lib as _srtp_lib  # type: ignore[import-not-found]  # send path

from focus.sdp.secret import SecretBytes

# libsrtp 2 srtp_crypto_policy_t: cipher_type, cipher_key_len, auth_type,
# auth_key_len, auth_tag_len, sec_serv -- six 32-bit ints (srtp.h).
_CRYPTO_POLICY = struct.Struct("=6i")
_SRTP_AES_ICM_256 = 5  # crypto_types.h
_SRTP_HMAC_SHA1 = 3
_SEC_SERV_CONF_AND_AUTH = 3
_MAX_PACKET_SIZE = 1500 - pylibsrtp.SRTP_MAX_SRTCP_TRAILER_LEN
_MAX_MKI_LENGTH = 128  # RFC 4568 §6.1 / §9.2: mki-length 1..128
_RTP_HEADER = 12  # RFC 3550 §5.1 fixed header
_SRTCP_HEADER = 8 + 4  # RTCP header + E-flag/SRTCP index, RFC 3711 §3.4
_RTP_FIXED_HEADER = struct.Struct("!BBHII")  # V=2 P X CC, M PT, seq, ts, SSRC (RFC 3550 §5.1)


class SrtpError(Exception):
    """Base class of SRTP errors."""


class SrtpLocalError(SrtpError):
    """Our misuse: unknown suite, wrong key length, use after wipe()."""


class SrtpRemoteError(SrtpError):
    """The peer's packet could not be unprotected."""


class SrtpAuthError(SrtpRemoteError):
    """Authentication failed: wrong key or tampered packet. # RFC 3711 §3.3"""


class SrtpReplayError(SrtpRemoteError):
    """Packet index already seen or too old. # RFC 3711 §3.3.2"""


class SrtpDirection(StrEnum):
    """Which way a context protects: peer-to-us or us-to-peer."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True, slots=True)
class SrtpSuite:
    """One SDES crypto suite and how libsrtp is configured for it."""

    name: str
    key_length: int
    salt_length: int
    profile: int
    # (rtp, rtcp) crypto policies to write over the profile's, or None.
    crypto_policy: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    srtp_tag_length: int = 10
    srtcp_tag_length: int = 10  # RFC 4568 §6.2.2, RFC 6188 §7.1: 80 bits for the _32 suites too
    aead: bool = False

    @property
    def key_salt_length(self) -> int:
        """Length of master key || master salt (the SDES inline key-salt)."""
        return self.key_length + self.salt_length

    @property
    def supports_mki(self) -> bool:
        """Whether an inbound MKI (RFC 3711 §3.1) can be handled for this suite.

        Only the AES-CM/HMAC-SHA1 suites: the MKI position for the RFC 7714
        AEAD suites could not be confirmed from the RFC text, so it is refused.
        """
        return not self.aead

    @classmethod
    def by_name(cls, name: str) -> SrtpSuite:
        """Look a suite up by its SDES name; `SrtpLocalError` if unknown."""
        try:
            return SRTP_SUITES[name]
        except KeyError:
            raise SrtpLocalError(f"unsupported SRTP crypto suite {name!r}") from None


def _aes256_cm(rtp_tag: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """RFC 6188 §3: AES-256 CM, HMAC-SHA1 with 160-bit key; SRTCP tag is 80 bits."""
    rtp = (_SRTP_AES_ICM_256, 46, _SRTP_HMAC_SHA1, 20, rtp_tag, _SEC_SERV_CONF_AND_AUTH)
    rtcp = (_SRTP_AES_ICM_256, 46, _SRTP_HMAC_SHA1, 20, 10, _SEC_SERV_CONF_AND_AUTH)
    return rtp, rtcp


_P = pylibsrtp.Policy
SRTP_SUITES: dict[str, SrtpSuite] = {
    s.name: s
    for s in (
        # RFC 4568 §6.2.1, §6.2.2
        SrtpSuite("AES_CM_128_HMAC_SHA1_80", 16, 14, _P.SRTP_PROFILE_AES128_CM_SHA1_80),
        SrtpSuite(
            "AES_CM_128_HMAC_SHA1_32", 16, 14, _P.SRTP_PROFILE_AES128_CM_SHA1_32, srtp_tag_length=4
        ),
        # RFC 7714 §14.2: 96-bit salt, 16-octet AEAD tag on SRTP and SRTCP
        SrtpSuite(
            "AEAD_AES_128_GCM",
            16,
            12,
            _P.SRTP_PROFILE_AEAD_AES_128_GCM,
            srtp_tag_length=16,
            srtcp_tag_length=16,
            aead=True,
        ),
        SrtpSuite(
            "AEAD_AES_256_GCM",
            32,
            12,
            _P.SRTP_PROFILE_AEAD_AES_256_GCM,
            srtp_tag_length=16,
            srtcp_tag_length=16,
            aead=True,
        ),
        # RFC 6188 §7.1: written over the AES128 profile (same 112-bit salt)
        SrtpSuite(
            "AES_256_CM_HMAC_SHA1_80", 32, 14, _P.SRTP_PROFILE_AES128_CM_SHA1_80, _aes256_cm(10)
        ),
        SrtpSuite(
            "AES_256_CM_HMAC_SHA1_32",
            32,
            14,
            _P.SRTP_PROFILE_AES128_CM_SHA1_80,
            _aes256_cm(4),
            srtp_tag_length=4,
        ),
    )
}


def mki_supported(suite_name: str) -> bool:
    """Whether an offer with this suite may carry an MKI (False for unknown suites)."""
    suite = SRTP_SUITES.get(suite_name)
    return suite is not None and suite.supports_mki


_REFERENCE_LAYOUT = (1, 30, _SRTP_HMAC_SHA1, 20, 10, _SEC_SERV_CONF_AND_AUTH)


def _crypto_policy_buffer(policy: pylibsrtp.Policy, which: str) -> Any:
    """Writable view of the policy's rtp/rtcp `srtp_crypto_policy_t`."""
    ffi = pylibsrtp.ffi  # type: ignore[attr-defined]  # cffi handle, not in __all__
    size = ffi.offsetof("srtp_policy_t", "rtcp") - ffi.offsetof("srtp_policy_t", "rtp")
    if size != _CRYPTO_POLICY.size:
        raise SrtpLocalError("libsrtp crypto policy layout not recognised")
    return ffi.buffer(ffi.addressof(policy._policy, which), size)


def _apply_crypto_policy(policy: pylibsrtp.Policy, suite: SrtpSuite) -> None:
    """Write the suite's crypto policy after checking the libsrtp 2 layout."""
    if suite.crypto_policy is None:
        return
    for which, values in zip(("rtp", "rtcp"), suite.crypto_policy, strict=True):
        buf = _crypto_policy_buffer(policy, which)
        if _CRYPTO_POLICY.unpack(bytes(buf)) != _REFERENCE_LAYOUT:
            raise SrtpLocalError(f"libsrtp crypto policy layout not recognised for {suite.name}")
        buf[:] = _CRYPTO_POLICY.pack(*values)


_AUTH_FAILURES = {"authentication failure"}
_REPLAYS = {"replay check failed (bad index)", "replay check failed (index too old)"}


def _remote_error(exc: Exception) -> SrtpRemoteError:
    message = str(exc)
    if message in _AUTH_FAILURES:
        return SrtpAuthError(message)
    if message in _REPLAYS:
        return SrtpReplayError(message)
    return SrtpRemoteError(message)


class SrtpContext:
    """One direction of SRTP+SRTCP for one participant stream.

    Replay protection is on with libsrtp's default window (128 packets,
    RFC 3711 §3.3.2 minimum 64).  SRTCP is always authenticated (RFC 3711 §3.4).
    `rx_mki` (inbound only) is the MKI the peer's packets carry, as it appears on
    the wire (mki-length octets, big-endian mki-value).
    """

    def __init__(
        self,
        suite: SrtpSuite | str,
        key_salt: SecretBytes | bytes,
        direction: SrtpDirection,
        *,
        rx_mki: bytes | None = None,
    ):
        self.suite = suite if isinstance(suite, SrtpSuite) else SrtpSuite.by_name(suite)
        self.direction = SrtpDirection(direction)
        if len(key_salt) != self.suite.key_salt_length:
            raise SrtpLocalError(
                f"{self.suite.name} needs {self.suite.key_salt_length} key+salt bytes, "
                f"got {len(key_salt)}"
            )
        self.rx_mki = self._check_mki(rx_mki)
        self._key = key_salt if isinstance(key_salt, SecretBytes) else SecretBytes(key_salt)
        self._policy: pylibsrtp.Policy | None = None
        self._session: pylibsrtp.Session | None = None
        self._srtp: Any = None  # the session's srtp_t, for protect_rtp()
        self._packet: Any = None  # the reused buffer of protect_rtp() / unprotect()
        self._packet_view: memoryview | None = None
        self._packet_length: Any = None
        self.protected = 0
        self.unprotected = 0
        self.auth_failures = 0
        self.replays = 0
        self.errors = 0
        self._open()

    def _check_mki(self, mki: bytes | None) -> bytes | None:
        if mki is None:
            return None
        if self.direction is not SrtpDirection.INBOUND:
            raise SrtpLocalError("outbound SRTP never uses an MKI")
        if not self.suite.supports_mki:
            raise SrtpLocalError(f"MKI is not supported with {self.suite.name}")
        if not 1 <= len(mki) <= _MAX_MKI_LENGTH:
            raise SrtpLocalError(f"MKI must be 1..{_MAX_MKI_LENGTH} bytes, got {len(mki)}")
        return bytes(mki)

    def _open(self) -> None:
        ssrc_type = (
            pylibsrtp.Policy.SSRC_ANY_INBOUND
            if self.direction is SrtpDirection.INBOUND
            else pylibsrtp.Policy.SSRC_ANY_OUTBOUND
        )
        policy = pylibsrtp.Policy(ssrc_type=ssrc_type, srtp_profile=self.suite.profile)
        _apply_crypto_policy(policy, self.suite)
        policy.key = bytes(self._key)  # pylibsrtp takes bytes only: a copy we cannot wipe
        try:
            self._session = pylibsrtp.Session(policy)
        except pylibsrtp.Error as exc:
            raise SrtpLocalError(f"libsrtp refused {self.suite.name}: {exc}") from exc
        self._policy = policy
        ffi = pylibsrtp.ffi  # type: ignore[attr-defined]  # cffi handle, not in __all__
        self._srtp = self._session._srtp[0]
        self._packet = ffi.new("char[]", 1500 + pylibsrtp.SRTP_MAX_TRAILER_LEN)
        self._packet_view = memoryview(ffi.buffer(self._packet))
        self._packet_length = ffi.new("int *")

    @property
    def key_length(self) -> int:
        """Key+salt length in bytes (safe to log; the suite's, so still right once wiped)."""
        return self.suite.key_salt_length

    @property
    def wiped(self) -> bool:
        return self._session is None

    def protect(self, rtp: bytes) -> bytes:
        """RTP → SRTP. # RFC 3711 §3.3"""
        return self._outbound(rtp, rtcp=False)

    def protect_rtp(
        self, marker_pt: int, seq: int, timestamp: int, ssrc: int, payload: bytes
    ) -> memoryview:
        """Build and protect one RTP packet in a reused buffer (the send path, RFC 3711 §3.3).

        The fixed header (RFC 3550 §5.1, no CSRC or extension) is packed straight
        into the buffer libsrtp protects in place: no intermediate objects.  The
        view is valid until the next call (hand it to ``sendto`` at once).
        """
        view = self._packet_view
        if view is None or self.direction is not SrtpDirection.OUTBOUND:
            raise SrtpLocalError("SRTP context has been wiped or is not outbound")
        size = _RTP_HEADER + len(payload)
        if size > _MAX_PACKET_SIZE:
            raise SrtpLocalError(f"packet of {size} bytes is too large to protect")
        _RTP_FIXED_HEADER.pack_into(view, 0, 0x80, marker_pt, seq, timestamp, ssrc)
        view[_RTP_HEADER:size] = payload
        length = self._packet_length
        length[0] = size
        if _srtp_lib.srtp_protect(self._srtp, self._packet, length):
            raise SrtpLocalError("protect failed")
        self.protected += 1
        return view[: length[0]]

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """RTCP → SRTCP (encrypted and authenticated). # RFC 3711 §3.4"""
        return self._outbound(rtcp, rtcp=True)

    def unprotect(self, srtp: bytes) -> bytes:
        """SRTP → RTP; raises `SrtpAuthError`, `SrtpReplayError` or `SrtpRemoteError`."""
        return self._inbound(srtp, rtcp=False)

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """SRTCP → RTCP; raises like `unprotect`."""
        return self._inbound(srtcp, rtcp=True)

    def _live_session(self, wanted: SrtpDirection) -> pylibsrtp.Session:
        if self._session is None:
            raise SrtpLocalError("SRTP context has been wiped")
        if self.direction is not wanted:
            raise SrtpLocalError(f"{self.direction} context cannot be used {wanted}")
        return self._session

    def _outbound(self, data: bytes, *, rtcp: bool) -> bytes:
        session = self._live_session(SrtpDirection.OUTBOUND)
        if len(data) > _MAX_PACKET_SIZE:
            raise SrtpLocalError(f"packet of {len(data)} bytes is too large to protect")
        try:
            out = session.protect_rtcp(bytes(data)) if rtcp else session.protect(bytes(data))
        except pylibsrtp.Error as exc:
            raise SrtpLocalError(f"protect failed: {exc}") from exc
        self.protected += 1
        return bytes(out)

    def _strip_mki(self, data: bytes, *, rtcp: bool) -> bytes:
        """Check and remove the MKI that precedes the tag. # RFC 3711 §3.1, §3.4"""
        mki = self.rx_mki
        if mki is None:
            return data
        end = len(data) - (self.suite.srtcp_tag_length if rtcp else self.suite.srtp_tag_length)
        start = end - len(mki)
        if start < (_SRTCP_HEADER if rtcp else _RTP_HEADER):
            self.errors += 1
            raise SrtpRemoteError(f"packet of {len(data)} bytes is too short for MKI and tag")
        if not hmac.compare_digest(data[start:end], mki):
            self.auth_failures += 1  # RFC 3711 §3.3 step 3: no master key for this MKI
            raise SrtpAuthError("MKI not recognised")
        return data[:start] + data[end:]

    def _inbound(self, data: bytes, *, rtcp: bool) -> bytes:
        view = self._packet_view
        if not rtcp and self.rx_mki is None and view is not None and len(data) <= 1500:
            return self._unprotect_in_place(data, view)
        session = self._live_session(SrtpDirection.INBOUND)
        if len(data) > _MAX_PACKET_SIZE + len(self.rx_mki or b""):
            self.errors += 1
            raise SrtpRemoteError(f"packet of {len(data)} bytes is too large")
        data = self._strip_mki(bytes(data), rtcp=rtcp)
        try:
            out = session.unprotect_rtcp(bytes(data)) if rtcp else session.unprotect(bytes(data))
        except pylibsrtp.Error as exc:
            raise self._counted(_remote_error(exc)) from exc
        self.unprotected += 1
        return bytes(out)

    def _counted(self, error: SrtpRemoteError) -> SrtpRemoteError:
        if isinstance(error, SrtpAuthError):
            self.auth_failures += 1
        elif isinstance(error, SrtpReplayError):
            self.replays += 1
        else:
            self.errors += 1
        return error

    def _unprotect_in_place(self, data: bytes, view: memoryview) -> bytes:
        """SRTP → RTP in the reused buffer: one copy in, one out (the receive path)."""
        if self.direction is not SrtpDirection.INBOUND:
            raise SrtpLocalError(f"{self.direction} context cannot be used inbound")
        size = len(data)
        view[:size] = data
        length = self._packet_length
        length[0] = size
        code = _srtp_lib.srtp_unprotect(self._srtp, self._packet, length)
        if code:
            errors = pylibsrtp.ERRORS
            message = errors[code] if 0 <= code < len(errors) else f"libsrtp error {code}"
            raise self._counted(_remote_error(Exception(message)))
        self.unprotected += 1
        return bytes(view[: length[0]])

    def wipe(self) -> None:
        """Overwrite the held master key copies and free the libsrtp session."""
        self._key.wipe()
        if self._policy is not None:
            key_buffer: Any = self._policy.key  # a writable cffi buffer over the key copy
            if key_buffer is not None:
                key_buffer[:] = bytes(len(key_buffer))
            self._policy.key = None
        if self._session is not None:
            # the session's scratch buffer holds the last plaintext packet
            scratch = self._session._buffer
            scratch[:] = bytes(len(scratch))
        if self._packet_view is not None:  # the last packet sent, in the clear before protect
            self._packet_view[:] = bytes(len(self._packet_view))
        self._policy = None
        self._session = None
        self._srtp = self._packet = self._packet_view = None

    def __repr__(self) -> str:
        state = "wiped" if self.wiped else f"{self.key_length}-byte key"
        if self.rx_mki is not None:
            state += f", {len(self.rx_mki)}-byte MKI"
        return f"<SrtpContext {self.suite.name} {self.direction} {state}>"
