"""MIKEY-TICKET dial-in keying per second, with its references measured in the same run.

One "MIKEY dial-in keying" is what the focus does for a participant's offer
(``focus.keying.MikeyFocusKeying.resolve``): parse the TRANSFER_INIT, check the
timestamp and replay cache, RESOLVE_INIT to the KMS, the KMS core opens the
ticket and forks the keys (RESOLVE_RESP), the focus verifies both MACs, derives
the TEKs (SRTP pair + TLS) and builds TRANSFER_RESP.  The KMS runs in memory
(``KmsCore.handle``), so HTTP is not counted; ``--http`` adds a loopback KMS.

References, in the same run:

* SDES keying: ``plan_answer`` on an SDES offer (parse a=crypto, draw a key);
* the raw primitives the exchange is made of: one HMAC-SHA-256 over 300
  bytes, and one AES-128-CTR encryption of 96 bytes (a KEMAC).

    .venv/bin/python bench/mikey.py [--seconds 2] [--http]

Prints one line per measurement and the ratios.  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

from focus.keying import MikeyFocusKeying  # noqa: E402
from focus.kms.core import KmsConfig, KmsCore  # noqa: E402
from focus.kms.http import KmsHttpServer  # noqa: E402
from focus.mikey.exchange import MikeyProfile  # noqa: E402
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator  # noqa: E402
from focus.mikey.media import srtp_policy  # noqa: E402
from focus.mikey.message import MikeyGenericIdEntry  # noqa: E402
from focus.mikey.payload import MikeySecurityPolicy  # noqa: E402
from focus.sdp.attributes import SdpKeyMgmt  # noqa: E402
from focus.sdp.offer_answer import plan_answer  # noqa: E402
from focus.sdp.session import SdpAttribute, SdpConnection, SdpMedia, SdpOrigin, SdpSession  # noqa: E402

ALICE, CONF = b"sip:alice@127.0.0.1", b"sip:retro@127.0.0.1"
USERS = {ALICE: secrets.token_bytes(32), CONF: secrets.token_bytes(32)}


def rate(label: str, work: Callable[[], object], seconds: float, limit: int = 1 << 62) -> float:
    """Calls per second of ``work`` over about ``seconds`` (at most ``limit`` calls)."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds and count + 20 <= limit:
        for _ in range(20):
            work()
        count += 20
    per_second = count / elapsed
    print(f"{label:<42} {per_second:>12,.0f} /s  {1e6 / per_second:>9.1f} µs")
    return per_second


def offers(kms: KmsCore, count: int) -> list[SdpSession]:
    """``count`` distinct MIKEY offers (one ticket, fresh TRANSFER_INITs: no replays)."""
    now = time.time()
    request = MikeyTicketRequest.build(ALICE, USERS[ALICE], responders=[CONF], now=now)
    granted = request.process_response(kms.handle(bytes(request.message), now), now=now)
    sessions = [MikeyGenericIdEntry(1, 0, (0,), b"\0\0\0\1"), MikeyGenericIdEntry(2, 0, (0,)),
                MikeyGenericIdEntry(3, 241, (1,))]  # fmt: skip
    policies = [srtp_policy(0, "AES_CM_128_HMAC_SHA1_80"), MikeySecurityPolicy(1, 241)]
    result = []
    for _ in range(count):
        transfer = MikeyTransferInitiator.build(granted, CONF, sessions, policies, now=now)
        result.append(
            _offer([SdpAttribute("key-mgmt", str(SdpKeyMgmt("mikey", bytes(transfer.message))))])
        )
    return result


def _offer(session: list[SdpAttribute], crypto: str | None = None) -> SdpSession:
    attributes = [SdpAttribute("rtpmap", "0 PCMU/8000"), SdpAttribute("sendrecv")]
    if crypto:
        attributes.append(SdpAttribute("crypto", crypto))
    chat = SdpMedia("message", 4002, "TCP/TLS/MSRP", ["*"],
                    attributes=[SdpAttribute("path", "msrps://127.0.0.1:4002/x;tcp")])  # fmt: skip
    return SdpSession(
        origin=SdpOrigin("ue", 1, 1, "127.0.0.1", "IP4"), connection=SdpConnection("127.0.0.1"),
        attributes=session,
        media=[SdpMedia("audio", 4000, "RTP/SAVP", ["0"], attributes=attributes), chat],
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--http", action="store_true", help="also through a loopback HTTP KMS")
    args = parser.parse_args()
    kms = KmsCore(USERS.get, {1: secrets.token_bytes(32)}, 1, KmsConfig())

    async def in_memory(url: str, body: bytes) -> bytes:
        return kms.handle(body, time.time())

    keying = MikeyFocusKeying("mem", USERS.get, MikeyProfile(), exchange=in_memory)
    size = int(2000 * args.seconds) + 100  # distinct offers: a replay would be refused
    pool = iter(offers(kms, 2 * size))
    loop = asyncio.new_event_loop()
    allowed = {ALICE.decode()}.__contains__

    def mikey() -> object:
        return loop.run_until_complete(
            keying.resolve(next(pool), CONF.decode(), allowed, now=time.time())
        )

    sdes = _offer([], "1 AES_CM_128_HMAC_SHA1_80 inline:" + "QUFB" * 10)
    key, data, block = secrets.token_bytes(32), secrets.token_bytes(300), secrets.token_bytes(96)
    aes = Cipher(algorithms.AES(key[:16]), modes.CTR(bytes(16)))
    seconds = args.seconds
    results = {
        "mikey": rate("MIKEY-TICKET dial-in keying (KMS in memory)", mikey, seconds, size),
        "sdes": rate("SDES keying (plan_answer)", lambda: plan_answer(sdes), seconds),
        "hmac": rate("HMAC-SHA-256, 300 bytes",
                     lambda: hmac.new(key, data, hashlib.sha256).digest(), seconds),
        "aes": rate("AES-128-CTR, 96 bytes (a KEMAC)",
                    lambda: aes.encryptor().update(block), seconds),
    }  # fmt: skip
    if args.http:
        server = KmsHttpServer(kms, "/kms")
        host, port = loop.run_until_complete(server.start("127.0.0.1", 0))
        keying.exchange = MikeyFocusKeying.__dataclass_fields__["exchange"].default  # type: ignore[assignment]
        keying.kms_url = f"http://{host}:{port}/kms"
        results["http"] = rate("MIKEY-TICKET dial-in keying (HTTP KMS)", mikey, args.seconds, size)
        loop.run_until_complete(server.close())
    loop.close()
    print(f"ratio SDES / MIKEY-TICKET keying:  {results['sdes'] / results['mikey']:.1f}")
    print(f"MIKEY keying = {results['hmac'] / results['mikey']:.0f} HMACs "
          f"= {results['aes'] / results['mikey']:.0f} AES-CTR calls")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
