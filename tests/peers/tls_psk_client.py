"""A TLS-PSK client (RFC 4279) on the standard library only, as a separate process.

    python tls_psk_client.py --port N --psk HEX [--identity ID] [--tls 1.2|1.3]
                             [--cipher LIST] [--send TEXT]

It connects to 127.0.0.1:N, completes the handshake with the pre-shared key,
sends ``--send`` (default ``ping``) plus a newline, reads one line back and
prints ``client ok: <version> <cipher> <line>``; exit status 0 then, 1 on any
failure (the error is printed).  An empty ``--identity`` sends the empty PSK
identity of TS 33.328 Annex H.2, which only TLS 1.2 allows (a TLS 1.3
external PSK needs a non-empty identity, RFC 8446 §4.2.11).

It shares no code with the product (``mrf.tls_psk``), so a test that runs it
against the product's server context checks that context independently.
Python 3.13's ``SSLContext.set_psk_client_callback`` does the PSK part.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys


def _context(tls: str, cipher: str, identity: str, psk: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    version = ssl.TLSVersion.TLSv1_2 if tls == "1.2" else ssl.TLSVersion.TLSv1_3
    context.minimum_version = context.maximum_version = version
    if tls == "1.2":
        context.set_ciphers(cipher)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nothing to verify: the key authenticates
    # the callback's identity None is the empty identity
    context.set_psk_client_callback(lambda _hint: (identity or None, psk))
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--psk", required=True, help="the pre-shared key, hex")
    parser.add_argument("--identity", default="", help="PSK identity (default: empty)")
    parser.add_argument("--tls", choices=("1.2", "1.3"), default="1.2")
    parser.add_argument("--cipher", default="PSK-AES128-GCM-SHA256", help="TLS 1.2 suites")
    parser.add_argument("--send", default="ping")
    args = parser.parse_args(argv)
    context = _context(args.tls, args.cipher, args.identity, bytes.fromhex(args.psk))
    try:
        with socket.create_connection(("127.0.0.1", args.port), timeout=10) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(args.send.encode() + b"\n")
                answer = b""
                while not answer.endswith(b"\n") and (chunk := tls.recv(4096)):
                    answer += chunk
                version, cipher = tls.version(), tls.cipher()[0]
    except (OSError, ssl.SSLError) as exc:
        print(f"client failed: {exc}")
        return 1
    if not answer:
        print(f"client failed: no answer over {version} {cipher}")
        return 1
    print(f"client ok: {version} {cipher} {answer.decode(errors='replace').strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
