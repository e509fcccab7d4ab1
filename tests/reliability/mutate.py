"""Mutation engines for hostile-input runs, in the spirit of PROTOS c07-sip.

PROTOS test-suite c07-sip (University of Oulu, 2002) sends INVITEs whose
fields are replaced, one at a time, by overflows, format strings, bad
integers, bad encodings, missing or repeated elements and truncations.  These
generators do the same from *our* base messages, deterministically from a
seed, so a failing case can be replayed: ``SipMutator(seed).mutate(base)``.

* :class:`SipMutator` mutates a SIP request at the text level (Request-Line,
  headers, Content-Length, body).
* :class:`TextMutator` mutates any CRLF-framed text protocol (MSRP, RFC 4975).
* :class:`SipEncodingMutator` puts bytes that are not UTF-8 (raw, or %-escaped
  where a URI allows escapes, RFC 3261 §19.1.2) into the user part of every
  URI (Request-URI, From, To, Contact, P-Asserted-Identity), into display
  names and into every header value, one place per mutation.
* :class:`BinaryMutator` mutates TLV/binary messages (BFCP RFC 8855 common
  header + attributes, MIKEY RFC 3830 payload chains): length fields, type
  octets, truncation, extension, bit flips.

Pure functions of (seed, base): no I/O, no clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

OVERFLOW_SIZES = (256, 1024, 4096, 16384, 70000)
FORMAT_STRINGS = ("%s%s%s%s%s", "%n%n%n%n", "%x" * 32, "%99999999999s", "%.1024d", "{0}{1}{!r}")
BAD_INTEGERS = (
    "-1", "0", "4294967295", "4294967296", "18446744073709551616", "99999999999999999999999",
    "0x7fffffff", "1e9", "-2147483649", "", " ", "NaN", "١٢٣", "+5", "00000000000000000001",
)  # fmt: skip
BAD_ENCODINGS = (
    b"\xff\xfe\xfd", b"\xc0\x80", b"\xed\xa0\x80", b"\x00", b"\x00" * 64, b"\x1b[2J", b"\r",
    b"\n", b"\r\n\r\n", b"\xe2\x80\xae", b"\xf4\x90\x80\x80", b"\x7f\x08", b"%00", b"\t" * 40,
)  # fmt: skip

# Byte sequences that are not UTF-8 (RFC 3629 §3: lone continuation bytes, overlong
# forms, UTF-16 surrogates, code points past U+10FFFF, truncated sequences) and NUL.
NON_UTF8 = (
    b"\xff", b"\xfe\xff", b"\x80", b"\xbf\xbf", b"\xc0\xaf", b"\xc3\x28", b"\xe2\x28\xa1",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x28\x8c\xbc", b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\x00",
)  # fmt: skip
URI_HEADERS = (b"From", b"To", b"Contact", b"P-Asserted-Identity", b"Refer-To", b"Route")


def _pick_bytes(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return b"A" * rng.choice(OVERFLOW_SIZES)
    if kind == 1:
        return rng.choice(FORMAT_STRINGS).encode() * rng.choice((1, 4, 64))
    if kind == 2:
        return rng.choice(BAD_INTEGERS).encode()
    return rng.choice(BAD_ENCODINGS) * rng.choice((1, 3, 100))


def _split_message(message: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def _join_message(lines: Sequence[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class TextMutator:
    """Mutations of a CRLF-framed text message (start line, headers, body)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.operations: list[tuple[str, Callable[[bytes], bytes]]] = [
            ("overflow-value", self._overflow_value),
            ("format-string", self._format_value),
            ("bad-integer", self._bad_integer),
            ("bad-encoding", self._bad_encoding),
            ("drop-header", self._drop_header),
            ("repeat-header", self._repeat_header),
            ("truncate", self._truncate),
            ("start-line", self._start_line),
            ("bit-flip", self._bit_flip),
            ("no-crlf", self._bare_lf),
            ("empty-name", self._empty_name),
            ("overflow-token", self._overflow_token),
        ]

    def mutate(self, message: bytes) -> tuple[str, bytes]:
        """One mutation of ``message``: (operation name, mutated bytes)."""
        name, operation = self.rng.choice(self.operations)
        return name, operation(message)

    # -- helpers -------------------------------------------------------------

    def _header_index(self, lines: list[bytes]) -> int | None:
        return self.rng.randrange(1, len(lines)) if len(lines) > 1 else None

    def _replace_value(self, message: bytes, value: bytes) -> bytes:
        lines, body = _split_message(message)
        index = self._header_index(lines)
        if index is None:
            return message + value
        name, _, old = lines[index].partition(b":")
        if self.rng.random() < 0.5 and old:  # replace one token of the value
            tokens = old.split(b";")
            tokens[self.rng.randrange(len(tokens))] = value
            lines[index] = name + b":" + b";".join(tokens)
        else:
            lines[index] = name + b": " + value
        return _join_message(lines, body)

    # -- operations ----------------------------------------------------------

    def _overflow_value(self, message: bytes) -> bytes:
        return self._replace_value(
            message, self.rng.choice(b'A%<@;:,"').to_bytes() * self.rng.choice(OVERFLOW_SIZES)
        )

    def _format_value(self, message: bytes) -> bytes:
        return self._replace_value(message, self.rng.choice(FORMAT_STRINGS).encode())

    def _bad_integer(self, message: bytes) -> bytes:
        return self._replace_value(message, self.rng.choice(BAD_INTEGERS).encode())

    def _bad_encoding(self, message: bytes) -> bytes:
        position = self.rng.randrange(len(message) + 1)
        return message[:position] + self.rng.choice(BAD_ENCODINGS) + message[position:]

    def _drop_header(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        index = self._header_index(lines)
        if index is not None:
            del lines[index]
        return _join_message(lines, body)

    def _repeat_header(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        index = self._header_index(lines)
        if index is not None:
            lines[index:index] = [lines[index]] * self.rng.choice((1, 2, 50, 500))
        return _join_message(lines, body)

    def _truncate(self, message: bytes) -> bytes:
        return message[: self.rng.randrange(len(message))]

    def _start_line(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        parts = lines[0].split(b" ")
        parts[self.rng.randrange(len(parts))] = _pick_bytes(self.rng)
        lines[0] = b" ".join(parts)
        return _join_message(lines, body)

    def _bit_flip(self, message: bytes) -> bytes:
        data = bytearray(message)
        for _ in range(self.rng.choice((1, 2, 8, 32))):
            data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
        return bytes(data)

    def _bare_lf(self, message: bytes) -> bytes:
        return message.replace(b"\r\n", self.rng.choice((b"\n", b"\r", b"\r\r\n", b"\n\r")))

    def _empty_name(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        lines.insert(
            self.rng.randrange(1, len(lines) + 1), self.rng.choice((b":x", b" : ", b"X", b"\t;"))
        )
        return _join_message(lines, body)

    def _overflow_token(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        lines.insert(1, b"X-" + b"H" * self.rng.choice(OVERFLOW_SIZES) + b": v")
        return _join_message(lines, body)


class SipMutator(TextMutator):
    """SIP-specific mutations on top of :class:`TextMutator` (RFC 3261 §7, §20)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.operations += [
            ("content-length", self._content_length),
            ("truncated-body", self._truncated_body),
            ("cseq", self._cseq),
            ("via", self._via),
            ("max-forwards", self._max_forwards),
            ("request-uri", self._request_uri),
            ("sdp", self._sdp),
        ]

    def _set_header(self, message: bytes, name: bytes, value: bytes) -> bytes:
        lines, body = _split_message(message)
        for index, line in enumerate(lines[1:], 1):
            if line.split(b":", 1)[0].strip().lower() == name.lower():
                lines[index] = name + b": " + value
                return _join_message(lines, body)
        lines.append(name + b": " + value)
        return _join_message(lines, body)

    def _content_length(self, message: bytes) -> bytes:
        value = self.rng.choice((*BAD_INTEGERS, "100000000", "65536", "1", "20"))
        return self._set_header(message, b"Content-Length", value.encode())

    def _truncated_body(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        cut = self.rng.randrange(len(body) + 1)
        return _join_message(lines, body[:cut])  # Content-Length still the full size

    def _cseq(self, message: bytes) -> bytes:
        number = self.rng.choice(BAD_INTEGERS)
        method = self.rng.choice(("INVITE", "BYE", "ACK", "", "X" * 300, "invite"))
        return self._set_header(message, b"CSeq", f"{number} {method}".encode())

    def _via(self, message: bytes) -> bytes:
        values = (
            b"SIP/2.0/UDP", b"SIP/2.0/UDP 127.0.0.1:99999;branch=z9hG4bK1", b"SIP/3.0/XYZ h",
            b"SIP/2.0/UDP [::1;branch=z9hG4bK1", b"SIP/2.0/UDP 127.0.0.1;rport=-1;branch=",
            b"SIP/2.0/UDP 127.0.0.1;received=" + b"9" * 300, b"SIP/2.0/TCP 255.255.255.255:0",
        )  # fmt: skip
        return self._set_header(message, b"Via", self.rng.choice(values))

    def _max_forwards(self, message: bytes) -> bytes:
        return self._set_header(message, b"Max-Forwards", self.rng.choice(BAD_INTEGERS).encode())

    def _request_uri(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        parts = lines[0].split(b" ")
        uris = (b"sip:", b"sip:@", b"sip:a@b:99999", b"sips:[::1", b"tel:" + b"9" * 500,
                b"sip:x@" + b"h." * 200 + b"com", b"sip:%00@127.0.0.1", b"<sip:a@b>",
                b"http://x")  # fmt: skip
        if len(parts) >= 2:
            parts[1] = self.rng.choice(uris)
        lines[0] = b" ".join(parts)
        return _join_message(lines, body)

    def _sdp(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        sdp_lines = body.split(b"\r\n") if body else [b"v=0"]
        index = self.rng.randrange(len(sdp_lines))
        key = sdp_lines[index][:2] or b"a="
        sdp_lines[index] = key + _pick_bytes(self.rng)
        new_body = b"\r\n".join(sdp_lines)
        joined = _join_message(lines, new_body)
        return self._set_header(joined, b"Content-Length", str(len(new_body)).encode())


class SipEncodingMutator:
    """Bytes that are not UTF-8 in one URI user part, display name or header value."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.operations: list[tuple[str, Callable[[bytes], bytes]]] = [
            ("request-uri-user", self._request_uri_user),
            ("header-uri-user", self._header_uri_user),
            ("display-name", self._display_name),
            ("header-value", self._header_value),
            ("header-name", self._header_name),
        ]

    def mutate(self, message: bytes) -> tuple[str, bytes]:
        name, operation = self.rng.choice(self.operations)
        return name, operation(message)

    def _junk(self, *, escaped: bool) -> bytes:
        """One or a few non-UTF-8 sequences, %-escaped when ``escaped``."""
        data = b"".join(self.rng.choice(NON_UTF8) for _ in range(self.rng.choice((1, 1, 2, 5))))
        if not escaped:
            return data
        return b"".join(b"%%%02X" % byte for byte in data)

    def _in_user(self, uri: bytes) -> bytes:
        """``uri`` with junk inside its user part (one is made when it has none)."""
        scheme, colon, rest = uri.partition(b":")
        if not colon:
            return uri + self._junk(escaped=False)
        user, at, host = rest.rpartition(b"@")
        if not at:
            user, host = b"", rest
        cut = self.rng.randrange(len(user) + 1)
        junk = self._junk(escaped=self.rng.random() < 0.7)  # escapes are valid URI syntax
        return scheme + b":" + user[:cut] + junk + user[cut:] + b"@" + host

    def _request_uri_user(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        parts = lines[0].split(b" ")
        if len(parts) >= 2:
            parts[1] = self._in_user(parts[1])
        lines[0] = b" ".join(parts)
        return _join_message(lines, body)

    def _uri_lines(self, lines: list[bytes]) -> list[int]:
        names = {name.lower() for name in URI_HEADERS}
        return [i for i, line in enumerate(lines[1:], 1)
                if line.split(b":", 1)[0].strip().lower() in names]  # fmt: skip

    def _header_uri_user(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        candidates = self._uri_lines(lines)
        if not candidates:
            return self._header_value(message)
        index = self.rng.choice(candidates)
        line = lines[index]
        start, end = line.find(b"<"), line.find(b">")
        if 0 <= start < end:
            lines[index] = line[: start + 1] + self._in_user(line[start + 1 : end]) + line[end:]
        else:
            name, _, value = line.partition(b":")
            lines[index] = name + b": " + self._in_user(value.strip())
        return _join_message(lines, body)

    def _display_name(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        candidates = self._uri_lines(lines)
        if not candidates:
            return self._header_value(message)
        index = self.rng.choice(candidates)
        name, _, value = lines[index].partition(b":")
        quoted = self.rng.random() < 0.5
        junk = self._junk(escaped=False)
        display = b'"' + junk + b'" ' if quoted else b"N" + junk + b" "
        lines[index] = name + b": " + display + value.strip()
        return _join_message(lines, body)

    def _header_value(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        index = self.rng.randrange(1, len(lines)) if len(lines) > 1 else 0
        line = lines[index]
        colon = line.find(b":")
        start = colon + 1 if index and colon >= 0 else 0
        cut = self.rng.randrange(start, len(line) + 1)
        lines[index] = line[:cut] + self._junk(escaped=False) + line[cut:]
        return _join_message(lines, body)

    def _header_name(self, message: bytes) -> bytes:
        lines, body = _split_message(message)
        lines.insert(self.rng.randrange(1, len(lines) + 1), b"X-" + self._junk(escaped=False)
                     + b": v")  # fmt: skip
        return _join_message(lines, body)


class BinaryMutator:
    """Mutations of a binary TLV message (BFCP, MIKEY)."""

    def __init__(self, seed: int, length_offsets: Sequence[tuple[int, int]] = ()) -> None:
        self.rng = random.Random(seed)
        self.length_offsets = tuple(length_offsets)  # (offset, width) of known length fields
        self.operations: list[tuple[str, Callable[[bytes], bytes]]] = [
            ("bit-flip", self._bit_flip),
            ("byte-set", self._byte_set),
            ("truncate", self._truncate),
            ("extend", self._extend),
            ("length", self._length),
            ("splice", self._splice),
            ("zero", self._zero),
            ("duplicate-tail", self._duplicate_tail),
        ]

    def mutate(self, message: bytes) -> tuple[str, bytes]:
        name, operation = self.rng.choice(self.operations)
        return name, operation(message)

    def _bit_flip(self, data: bytes) -> bytes:
        out = bytearray(data)
        for _ in range(self.rng.choice((1, 1, 2, 4, 16))):
            out[self.rng.randrange(len(out))] ^= 1 << self.rng.randrange(8)
        return bytes(out)

    def _byte_set(self, data: bytes) -> bytes:
        out = bytearray(data)
        out[self.rng.randrange(len(out))] = self.rng.choice((0, 1, 0x7F, 0x80, 0xFE, 0xFF))
        return bytes(out)

    def _truncate(self, data: bytes) -> bytes:
        return data[: self.rng.randrange(len(data))]

    def _extend(self, data: bytes) -> bytes:
        return data + self.rng.randbytes(self.rng.choice((1, 3, 64, 1024, 70000)))

    def _length(self, data: bytes) -> bytes:
        out = bytearray(data)
        if self.length_offsets and self.rng.random() < 0.7:
            offset, width = self.rng.choice(self.length_offsets)
        else:
            width = self.rng.choice((1, 2, 4))
            offset = self.rng.randrange(max(1, len(out) - width))
        if offset + width > len(out):
            return bytes(out)
        value = self.rng.choice((0, 1, (1 << (8 * width)) - 1, 1 << (8 * width - 1), 3, 255))
        out[offset : offset + width] = value.to_bytes(width)
        return bytes(out)

    def _splice(self, data: bytes) -> bytes:
        a, b = sorted(self.rng.randrange(len(data) + 1) for _ in range(2))
        return data[:a] + data[b:] + data[a:b]

    def _zero(self, data: bytes) -> bytes:
        a, b = sorted(self.rng.randrange(len(data) + 1) for _ in range(2))
        return data[:a] + bytes(b - a) + data[b:]

    def _duplicate_tail(self, data: bytes) -> bytes:
        cut = self.rng.randrange(len(data))
        return data + data[cut:] * self.rng.choice((1, 10))
