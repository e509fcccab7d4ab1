"""Regenerate the MIKEY vectors: ``python tests/vectors/mikey/make_vectors.py``.

Every message comes from the project's own builders with fixed keys, RANDs,
CSB IDs, timestamps and a deterministic stand-in for the KMS's random source,
so the output is stable.  ``describe(message)`` is the decoded-field dump
stored next to each ``.bin`` as ``.txt``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from focus.kms import core as kms_core  # noqa: E402
from focus.mikey import exchange  # noqa: E402
from focus.mikey.constants import (  # noqa: E402
    MikeyDataType,
    MikeyEncrAlg,
    MikeyErrorCode,
    MikeyKeyType,
    MikeyKeyValidity,
    MikeyMacAlg,
    MikeyMapType,
    MikeyPrfFunc,
    MikeySrtpParam,
    MikeyTsType,
)
from focus.mikey.exchange import error_message  # noqa: E402
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator  # noqa: E402
from focus.mikey.kdf import kemac_crypt, mac, rfc3830_message_keys  # noqa: E402
from focus.mikey.keydata import MikeyKeyData, MikeyKeyValidityData, push_key_data_list  # noqa: E402
from focus.mikey.message import (  # noqa: E402
    MikeyGenericIdEntry,
    MikeyHeader,
    MikeyMessage,
    MikeySrtpIdEntry,
)
from focus.mikey.payload import (  # noqa: E402
    MikeyIdRole,
    MikeyKemac,
    MikeyRand,
    MikeySecurityPolicy,
    MikeyTimestamp,
)
from focus.mikey.responder import MikeyTransferResponder  # noqa: E402
from focus.mikey.timestamp import ntp_from_unix  # noqa: E402

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ALICE, CONF = b"sip:alice@127.0.0.1", b"sip:retro@127.0.0.1"
USERS = {ALICE: bytes(range(32)), CONF: bytes(range(32, 64))}
SECRET = bytes(range(64, 96))
SRTP_POLICY = MikeySecurityPolicy(
    0, 0, ((MikeySrtpParam.ENCR_ALG, b"\x01"), (MikeySrtpParam.AUTH_TAG_LENGTH, b"\x0a"))
)


class _Counter:
    """Deterministic stand-in for ``secrets`` in the KMS core."""

    def __init__(self) -> None:
        self.n = 0

    def token_bytes(self, n: int) -> bytes:
        self.n += 1
        return hashlib.sha256(b"vector%d" % self.n).digest()[:n] * (1 + n // 32)


def describe(value: Any, indent: str = "") -> str:
    """A stable, readable dump of a parsed message (bytes as hex, enums by value)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        lines = [f"{type(value).__name__}"]
        for f in dataclasses.fields(value):
            lines.append(f"{indent}  {f.name}: {describe(getattr(value, f.name), indent + '  ')}")
        return "\n".join(lines)
    if isinstance(value, bytes):
        return value.hex() or "''"
    if isinstance(value, tuple):
        if not value:
            return "()"
        return "\n".join([""] + [f"{indent}  - {describe(v, indent + '    ')}" for v in value])
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(int(value))
    return repr(value)


def psk_i_message() -> MikeyMessage:
    """RFC 3830 §3.1 PSK I_MESSAGE: HDR, T, RAND, IDi(IDR), SP, KEMAC (HMAC-SHA-1)."""
    header = MikeyHeader(
        MikeyDataType.PSK_INIT, 0x12345678, MikeyPrfFunc.MIKEY_1, True, MikeyMapType.SRTP_ID,
        (MikeySrtpIdEntry(0, 0x23456789, 0),),
    )  # fmt: skip
    rand = bytes(range(16))
    t = ntp_from_unix(NOW)
    keys = rfc3830_message_keys(
        0, USERS[ALICE], 0x12345678, rand, MikeyEncrAlg.AES_CM_128, MikeyMacAlg.HMAC_SHA_1_160
    )
    spi = MikeyKeyValidityData(MikeyKeyValidity.SPI, spi=b"\x01")
    tgk = MikeyKeyData(MikeyKeyType.TGK, bytes(range(100, 116)), kv=spi)
    encrypted = kemac_crypt(1, keys, 0x12345678, t, push_key_data_list([tgk]), encrypt=True)
    body = [
        MikeyTimestamp(MikeyTsType.NTP_UTC, t), MikeyRand(rand), MikeyIdRole(1, 1, ALICE),
        SRTP_POLICY,
        MikeyKemac(MikeyEncrAlg.AES_CM_128, encrypted, MikeyMacAlg.HMAC_SHA_1_160, bytes(20)),
    ]  # fmt: skip
    message = MikeyMessage(header, tuple(body))
    encoded = bytes(message)
    tag = mac(MikeyMacAlg.HMAC_SHA_1_160, keys.auth_key, encoded[:-20])  # RFC 3830 §5.2
    return MikeyMessage.parse(encoded[:-20] + tag)


def ticket_messages() -> dict[str, MikeyMessage]:
    """The MIKEY-TICKET messages, with the random sources patched only meanwhile."""
    saved = kms_core.secrets, exchange.secrets
    kms_core.secrets = exchange.secrets = _Counter()  # type: ignore[assignment]
    try:
        return _ticket_messages()
    finally:
        kms_core.secrets, exchange.secrets = saved


def _ticket_messages() -> dict[str, MikeyMessage]:
    kms = kms_core.KmsCore(USERS.get, {1: SECRET}, 1)
    request = MikeyTicketRequest.build(
        ALICE, USERS[ALICE], responders=[b"?@?"], now=NOW, csb_id=0x01020304, rand=bytes(16)
    )
    request_resp = kms.handle(bytes(request.message), NOW)
    granted = request.process_response(request_resp, now=NOW)
    sessions = [MikeyGenericIdEntry(1, 0, (0,)), MikeyGenericIdEntry(2, 241, ())]
    transfer = MikeyTransferInitiator.build(
        granted, CONF, sessions, [SRTP_POLICY], now=NOW, csb_id=0x0A0B0C0D, rand=bytes([7]) * 16
    )
    responder = MikeyTransferResponder.receive(
        bytes(transfer.message), identity_r=CONF, kms_key=USERS[CONF], now=NOW, cache=None
    )
    resolve_resp = kms.handle(bytes(responder.resolve), NOW)
    resolved = responder.process_resolve_response(resolve_resp, now=NOW)
    answer, _ = responder.build_response(
        resolved,
        [
            MikeyGenericIdEntry(1, 0, (0,), bytes.fromhex("0000abcd"), b"\x01"),
            MikeyGenericIdEntry(2, 241, (1,), b"", b"\x02"),
        ],
        [MikeySecurityPolicy(1, 241, ())],
        now=NOW,
    )
    error = error_message(request.message.header, MikeyErrorCode.INVALID_ID, NOW)
    return {
        "request_init_psk": request.message,
        "request_resp": MikeyMessage.parse(request_resp),
        "transfer_init": transfer.message,
        "resolve_init_psk": responder.resolve,
        "resolve_resp": MikeyMessage.parse(resolve_resp),
        "transfer_resp": answer,
        "error": error,
    }


def vectors() -> dict[str, bytes]:
    out = {name: bytes(m) for name, m in ticket_messages().items()}
    out["psk_i_message"] = bytes(psk_i_message())
    out["hdr_psk_init"] = bytes.fromhex("01000000123456780000")  # RFC 3830 §6.1 HDR
    out["hdr_srtp_id_map"] = bytes.fromhex(
        "01000000123456780200011234567800000000022345678900000001"
    )  # RFC 3830 §6.1.1 SRTP-ID map entries
    return out


def main() -> None:
    for name, data in vectors().items():
        (HERE / f"{name}.bin").write_bytes(data)
        (HERE / f"{name}.txt").write_text(describe(MikeyMessage.parse(data)) + "\n")
    (HERE / "neg_truncated.bin").write_bytes(vectors()["request_init_psk"][:-5])
    (HERE / "neg_version2.bin").write_bytes(b"\x02" + vectors()["hdr_psk_init"][1:])
    (HERE / "neg_unknown_payload.bin").write_bytes(bytes.fromhex("01001e00123456780000"))


if __name__ == "__main__":
    main()
