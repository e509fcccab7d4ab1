"""MIKEY codec: vectors round-trip byte for byte, negative vectors fail exactly, fuzzing."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.mikey.buffer import MikeyLocalError, MikeyRemoteError
from focus.mikey.constants import (
    MikeyDataType,
    MikeyErrorCode,
    MikeyKeyType,
    MikeyKeyValidity,
    MikeyMapType,
    MikeyPayloadType,
)
from focus.mikey.keydata import (
    MikeyKeyData,
    MikeyKeyValidityData,
    pull_key_data_list,
    push_key_data_list,
)
from focus.mikey.message import MikeyGenericIdEntry, MikeyHeader, MikeyMessage, MikeySrtpIdEntry
from focus.mikey.payload import (
    PAYLOADS,
    MikeyCert,
    MikeyChash,
    MikeyDh,
    MikeyErr,
    MikeyGeneralExtension,
    MikeyId,
    MikeyIdRole,
    MikeyKemac,
    MikeyPke,
    MikeyRand,
    MikeyRandRole,
    MikeySecurityPolicy,
    MikeySign,
    MikeyTimestamp,
    MikeyTimestampRole,
    MikeyVerification,
)
from focus.mikey.tp import MikeyTicket, MikeyTicketPolicy

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "tests" / "vectors" / "mikey"
POSITIVE = sorted(p.stem for p in VECTORS.glob("*.bin") if not p.stem.startswith("neg_"))


def _generator():  # the vector generator holds describe()
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_message_type_has_a_vector() -> None:
    types = {MikeyMessage.parse((VECTORS / f"{n}.bin").read_bytes()).data_type for n in POSITIVE}
    assert {
        MikeyDataType.PSK_INIT, MikeyDataType.REQUEST_INIT_PSK, MikeyDataType.REQUEST_RESP,
        MikeyDataType.TRANSFER_INIT, MikeyDataType.TRANSFER_RESP, MikeyDataType.RESOLVE_INIT_PSK,
        MikeyDataType.RESOLVE_RESP, MikeyDataType.ERROR,
    } <= types  # fmt: skip


@pytest.mark.parametrize("name", POSITIVE)
def test_vector_round_trips_and_matches_decoded_fields(name: str) -> None:
    data = (VECTORS / f"{name}.bin").read_bytes()
    message = MikeyMessage.parse(data)
    assert bytes(message) == data
    assert _generator().describe(message) + "\n" == (VECTORS / f"{name}.txt").read_text()


def test_vectors_are_what_the_generator_makes() -> None:
    for name, data in _generator().vectors().items():
        assert (VECTORS / f"{name}.bin").read_bytes() == data, name


def test_hdr_vector_fields() -> None:
    """RFC 3830 §6.1 HDR: version 1, PSK init, V=0, MIKEY-1, CSB 0x12345678, #CS 0, SRTP-ID."""
    message = MikeyMessage.parse(bytes.fromhex("01000000123456780000"))
    assert message.header == MikeyHeader(0, 0x12345678, 0, False, MikeyMapType.SRTP_ID)
    assert message.payloads == ()
    srtp = MikeyMessage.parse((VECTORS / "hdr_srtp_id_map.bin").read_bytes())
    assert srtp.header.cs_map == (
        MikeySrtpIdEntry(1, 0x12345678, 0),
        MikeySrtpIdEntry(2, 0x23456789, 1),
    )


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("neg_truncated", "truncated MIKEY data"),
        ("neg_version2", "unsupported MIKEY version 2"),
        ("neg_unknown_payload", "unsupported payload type 30"),
    ],
)
def test_negative_vectors(name: str, error: str) -> None:
    with pytest.raises(MikeyRemoteError, match=error):
        MikeyMessage.parse((VECTORS / f"{name}.bin").read_bytes())


def test_every_payload_round_trips() -> None:
    payloads = (
        MikeyTimestamp(0, 0xE1234567_89ABCDEF), MikeyTimestamp(3, 0xE1234567),
        MikeyTimestampRole(3, 2, 7), MikeyRand(b"r" * 16), MikeyRandRole(3, b"k" * 16),
        MikeyId(1, b"sip:a@b"), MikeyCert(0, b"der"), MikeyIdRole(5, 2, b"app"),
        MikeySecurityPolicy(3, 241, ((1, b"\x10"), (20, b"\x10"))),
        MikeyErr(MikeyErrorCode.INVALID_TPPAR), MikeyGeneralExtension(0, b"vendor"),
        MikeyChash(2, bytes(32)), MikeyPke(1, b"e" * 40),
        MikeyDh(1, bytes(96), MikeyKeyValidityData(MikeyKeyValidity.INTERVAL, b"", b"1", b"2")),
        MikeyKemac(1, b"\x00" * 9, 2, bytes(32)),
        MikeyTicketPolicy(1, 1, 1, 1, 0xABC, (MikeyIdRole(2, 1, b"?@?"),)),
        MikeyTicket(1, 1, 1, 1, 0xFFF, (), b"opaque", b""),
        MikeyVerification(1, bytes(20)),
        MikeySign(1, b"s" * 64),
    )  # fmt: skip
    header = MikeyHeader(
        14, 1, 1, True, MikeyMapType.GENERIC_ID,
        (MikeyGenericIdEntry(1, 0, (0, 1), bytes(range(10)), b"\x09", True),),
    )  # fmt: skip
    message = MikeyMessage(header, payloads)
    data = bytes(message)
    assert MikeyMessage.parse(data) == message
    assert {type(p).payload_type for p in payloads} == set(PAYLOADS)


def test_kemac_null_null_with_one_tek_round_trips() -> None:
    """RFC 3830 §6.2: a KEMAC with NULL/NULL and one TEK sub-payload round-trips."""
    tek = MikeyKeyData(
        MikeyKeyType.TEK_SALT, b"k" * 16, b"s" * 14, MikeyKeyValidityData(1, b"\x01")
    )
    kemac = MikeyKemac(0, push_key_data_list([tek]))
    message = MikeyMessage(MikeyHeader(0, 5, 0, map_type=MikeyMapType.SRTP_ID), (kemac,))
    again = MikeyMessage.parse(bytes(message))
    assert again == message
    found = again.find(MikeyKemac)
    assert found is not None and pull_key_data_list(found.encr_data) == (tek,)


def test_sign_must_be_last_and_key_salt_consistency() -> None:
    header = MikeyHeader(2, 1, map_type=MikeyMapType.EMPTY)
    with pytest.raises(MikeyLocalError, match="SIGN must be the last"):
        bytes(MikeyMessage(header, (MikeySign(0, b"x"), MikeyRand(b"r"))))
    with pytest.raises(MikeyLocalError, match="salt"):
        push_key_data_list([MikeyKeyData(MikeyKeyType.TEK, b"k", b"salt")])


def test_signed_part_excludes_initiator_data() -> None:
    ticket = MikeyTicket(1, 1, 1, 1, 0, (), b"T", b"initiator-data")
    message = MikeyMessage(MikeyHeader(14, 1), (ticket, MikeyVerification(2, b"m" * 32)))
    assert b"initiator-data" in message.signed_part()
    assert b"initiator-data" not in message.signed_part(exclude_initiator_data=True)
    assert message.signed_part() == bytes(message)[:-32]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_remote_error(data: bytes) -> None:
    try:
        message = MikeyMessage.parse(data)
    except MikeyRemoteError:
        return
    assert MikeyMessage.parse(bytes(message)) == message  # reserved bits are zeroed


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(POSITIVE), st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_mutated_vectors_parse_or_raise_remote_error(name: str, where: int, value: int) -> None:
    data = bytearray((VECTORS / f"{name}.bin").read_bytes())
    data[where % len(data)] = value
    try:
        message = MikeyMessage.parse(bytes(data))
    except MikeyRemoteError:
        return
    assert MikeyMessage.parse(bytes(message)) == message


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(MikeyRand, st.binary(max_size=255)),
            st.builds(
                MikeyIdRole, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=300)
            ),
            st.builds(MikeyRandRole, st.integers(0, 255), st.binary(max_size=255)),
            st.builds(MikeyTimestamp, st.just(0), st.integers(0, 2**64 - 1)),
            st.builds(MikeyErr, st.integers(0, 255)),
        ),
        max_size=8,
    ),
    st.integers(0, 2**32 - 1),
)
def test_built_messages_round_trip(payloads: list, csb_id: int) -> None:  # type: ignore[type-arg]
    message = MikeyMessage(MikeyHeader(13, csb_id, map_type=MikeyMapType.EMPTY), tuple(payloads))
    assert MikeyMessage.parse(bytes(message)) == message


def test_payload_type_enum_covers_the_table() -> None:
    assert MikeyPayloadType.TICKET == 17 and MikeyPayloadType.KEY_DATA == 20


def test_mikey_core_imports_only_stdlib_cryptography_and_itself() -> None:
    import sys

    for path in (ROOT / "focus" / "mikey").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert (
                    top in sys.stdlib_module_names
                    or top == "cryptography"
                    or (name.startswith("focus.mikey"))
                ), (path.name, name)
