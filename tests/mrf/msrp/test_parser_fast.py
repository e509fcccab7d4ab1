"""The parser's fast path frames exactly what the line-by-line path frames.

Differential property: for any input, a parser with the fast path and one
without return equal messages, or raise the same error (status, reason,
transaction id).  The inputs are valid streams of the vectors, mutated at one
place, and streams of generated messages with random headers and bodies.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mrf.msrp.errors import MsrpRemoteError
from mrf.msrp.parser import MsrpStreamParser

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "msrp"
SEEDS = [p.read_bytes() for p in sorted(VECTORS.glob("*.txt"))]
STREAM = b"".join(p.read_bytes() for p in sorted(VECTORS.glob("rfc*.txt")))


def mostly(valid: list[bytes], odd: list[bytes]) -> st.SearchStrategy[bytes]:
    """Valid choices nine times in ten, so that many messages get through."""
    return st.integers(0, 9).flatmap(lambda n: st.sampled_from(odd if n == 0 else valid))


PATHS = b"To-Path: msrp://b.example:7/s1;tcp\r\nFrom-Path: msrps://a.example:9/s2;tcp\r\n"
names = st.sampled_from(
    [b"Message-ID", b"Byte-Range", b"Content-Type", b"content-type", b"X-1", b"-x", b"Status"]
)
values = mostly(
    [b"abcd", b"1-5/5", b"text/plain", b"", b" spaced ", b"\xc3\xa9\xc2\x85"],
    [b"\xff", b"a\nb", b"a\rb", b"x\n", b"a\x00"],
)
headers = st.lists(st.tuples(names, st.sampled_from([b": ", b":", b":  "]), values), max_size=4)


@st.composite
def message(draw: st.DrawFn) -> bytes:
    tid = draw(mostly([b"t1234", b"abcdEFGH", b"x.y-z+1%"], [b"bad", b"a" * 33]))
    start = draw(mostly([b"SEND", b"REPORT", b"200 OK", b"200", b"481 No"], [b"099 x", b"200 "]))
    head = b"MSRP " + tid + b" " + start + b"\r\n"
    paths = draw(mostly([PATHS, PATHS.replace(b"To", b"to")], [b"", PATHS[:36]]))
    extra = b"".join(n + sep + v + b"\r\n" for n, sep, v in draw(headers))
    flag = draw(mostly([b"$", b"+", b"#"], [b"!"]))
    end = b"-------" + draw(mostly([tid], [b"other1"])) + flag + b"\r\n"
    if draw(st.booleans()):
        if draw(st.integers(0, 9)):
            extra += b"Content-Type: " + draw(values) + b"\r\n"
        body = draw(st.binary(max_size=30) | st.just(b"x\r\n-------" + tid + b"+z"))
        return head + paths + extra + b"\r\n" + body + b"\r\n" + end
    return head + paths + extra + end


mutated = st.builds(
    lambda seed, cut, junk, keep: seed[:cut] + junk + seed[cut + keep :],
    st.sampled_from([*SEEDS, STREAM]),
    st.integers(0, 2000),
    st.binary(max_size=12),
    st.integers(0, 12),
)
streams = st.one_of(st.lists(message(), min_size=1, max_size=3).map(b"".join), mutated)


def outcome(data: bytes, *, fast: bool, pieces: int) -> object:
    parser = MsrpStreamParser(piece_size=16, fast=fast)
    step = max(1, len(data) // pieces)
    out: list[object] = []
    try:
        for index in range(0, len(data), step):
            out += parser.feed(data[index : index + step])
    except MsrpRemoteError as exc:
        out.append(("error", exc.status, exc.reason, exc.transaction_id))
    return out


@settings(max_examples=600, deadline=None)
@given(streams, st.sampled_from([1, 2, 5]))
def test_fast_path_equals_line_by_line(data: bytes, pieces: int) -> None:
    assert outcome(data, fast=True, pieces=pieces) == outcome(data, fast=False, pieces=pieces)


def test_fast_path_is_taken_for_whole_messages() -> None:
    parser = MsrpStreamParser()
    lines: list[bytes | None] = []
    slow_line = parser._line

    def counting_line() -> bytes | None:
        lines.append(line := slow_line())
        return line

    parser._line = counting_line  # type: ignore[method-assign]
    messages = parser.feed(STREAM)
    assert len(messages) == 7 and not parser._buffer
    assert lines == []  # the line-by-line path was never needed
