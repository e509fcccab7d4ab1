"""Property: arbitrary bytes, whole or byte by byte, only ever raise MsrpRemoteError."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mrf.msrp.connection import MsrpConnection
from mrf.msrp.errors import MsrpRemoteError
from mrf.msrp.parser import MsrpStreamParser

SEED = (
    Path(__file__).resolve().parents[2] / "vectors" / "msrp" / "rfc4975_s7_2_send.txt"
).read_bytes()
mutated = st.builds(
    lambda cut, junk, keep: SEED[:cut] + junk + SEED[cut + keep :],
    st.integers(0, len(SEED)),
    st.binary(max_size=40),
    st.integers(0, 40),
)
inputs = st.one_of(st.binary(max_size=600), mutated)


@settings(max_examples=300, deadline=None)
@given(inputs)
def test_whole_feed_only_raises_the_protocol_error(data: bytes) -> None:
    try:
        MsrpStreamParser(piece_size=64).feed(data)
    except MsrpRemoteError as exc:
        assert 100 <= exc.status <= 999


@settings(max_examples=150, deadline=None)
@given(inputs)
def test_bytewise_feed_only_raises_the_protocol_error(data: bytes) -> None:
    parser = MsrpStreamParser(piece_size=64)
    try:
        for index in range(len(data)):
            parser.feed(data[index : index + 1])
    except MsrpRemoteError:
        pass


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_connection_never_raises_on_peer_bytes(data: bytes) -> None:
    connection = MsrpConnection(resolver=lambda local, path: 200)
    connection.receive_data(data, 0.0)
    while connection.next_event() is not None:
        pass
    connection.data_to_send()
