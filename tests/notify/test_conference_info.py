"""conference-info documents (RFC 4575): every one validated against the §5 schema
(tests/vectors/conference_info/conference-info.xsd), full then partial, versions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from notify.conference_info import (
    MEDIA_SECURITY_NS,
    TALKER_NS,
    ConferenceInfoEndpoint,
    ConferenceInfoError,
    ConferenceInfoMedia,
    ConferenceInfoSnapshot,
    ConferenceInfoUser,
    parse_conference_info,
    render_deleted,
    render_full,
    render_partial,
)
from tests.notify.rig import assert_valid, schema

NS = {"c": "urn:ietf:params:xml:ns:conference-info", "m": MEDIA_SECURITY_NS}
WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CONF = "sip:retro@127.0.0.1"


def endpoint(entity: str, status: str = "connected", **kw: object) -> ConferenceInfoEndpoint:
    media = (ConferenceInfoMedia("0", "audio", "sendrecv", "sdes", "AES_CM_128_HMAC_SHA1_80"),)
    fields: dict[str, object] = dict(joined_at=WHEN, media=media)
    fields.update(kw)
    return ConferenceInfoEndpoint(entity, status, **fields)  # type: ignore[arg-type]


def snapshot(*users: ConferenceInfoUser) -> ConferenceInfoSnapshot:
    return ConferenceInfoSnapshot(
        CONF, "retro", conf_uris=(CONF,), host_uris=("sip:127.0.0.1",), users=users
    )


ALICE = ConferenceInfoUser("sip:alice@example.com", roles=("participant",),
                           endpoints=(endpoint("sip:a@127.0.0.1:5070"),))  # fmt: skip
BOB = ConferenceInfoUser("sip:bob@example.com", roles=("chair",),
                         endpoints=(endpoint("sip:b@127.0.0.1:5080"),))  # fmt: skip


def test_full_document_has_every_part_and_validates() -> None:
    root = assert_valid(render_full(snapshot(ALICE, BOB), 1))
    assert root.get("state") == "full" and root.get("version") == "1"
    assert root.get("entity") == CONF
    assert root.xpath("string(c:conference-description/c:display-text)", namespaces=NS) == "retro"
    assert root.xpath("string(c:host-info/c:uris/c:entry/c:uri)", namespaces=NS)
    assert root.xpath("string(c:conference-state/c:user-count)", namespaces=NS) == "2"
    assert root.xpath("string(c:conference-state/c:active)", namespaces=NS) == "true"
    ep = root.xpath("c:users/c:user[1]/c:endpoint", namespaces=NS)[0]
    assert ep.xpath("string(c:status)", namespaces=NS) == "connected"
    assert ep.xpath("string(c:joining-method)", namespaces=NS) == "dialed-in"
    assert ep.xpath("string(c:joining-info/c:when)", namespaces=NS) == "2025-03-01T12:00:00+00:00"
    media = ep.xpath("c:media", namespaces=NS)[0]
    assert media.xpath("string(c:type)", namespaces=NS) == "audio"
    protection = media.xpath("m:protection", namespaces=NS)[0]
    assert protection.get("key-mode") == "sdes"
    assert ep.xpath("c:call-info", namespaces=NS) == []  # no dialog IDs (RFC 4575 §5.7.3)


def test_document_starts_with_an_unprefixed_root() -> None:
    """sipp's subscriber (and humans) look for ``<conference-info ... state="full"``."""
    text = render_full(snapshot(), 7).decode()
    assert '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"' in text
    assert_valid(text.encode())


def test_partial_only_carries_what_changed() -> None:
    before = snapshot(ALICE)
    after = snapshot(ALICE, BOB)
    root = assert_valid(render_partial(before, after, 2) or b"")
    assert root.get("state") == "partial"
    users = root.xpath("c:users/c:user", namespaces=NS)
    assert [u.get("entity") for u in users] == [BOB.entity]
    assert root.xpath("string(c:conference-state/c:user-count)", namespaces=NS) == "2"
    assert not root.xpath("c:conference-description", namespaces=NS)
    assert render_partial(after, after, 3) is None


def test_partial_for_a_departed_and_a_deleted_endpoint() -> None:
    left = replace(
        ALICE.endpoints[0], status="disconnected", disconnection_method="departed",
        disconnected_at=WHEN, disconnection_reason="bye", media=(),
    )  # fmt: skip
    gone = snapshot(replace(ALICE, endpoints=(left,)), BOB)
    root = assert_valid(render_partial(snapshot(ALICE, BOB), gone, 5) or b"")
    user = root.xpath("c:users/c:user", namespaces=NS)[0]
    assert user.get("state") == "partial"
    ep = user.xpath("c:endpoint", namespaces=NS)[0]
    assert ep.xpath("string(c:disconnection-method)", namespaces=NS) == "departed"
    assert ep.xpath("string(c:disconnection-info/c:reason)", namespaces=NS) == "bye"
    removed = assert_valid(render_partial(gone, snapshot(BOB), 6) or b"")
    assert [u.get("state") for u in removed.xpath("c:users/c:user", namespaces=NS)] == ["deleted"]
    replaced = snapshot(replace(BOB, endpoints=(endpoint("sip:b2@127.0.0.1"),)))
    swap = assert_valid(render_partial(snapshot(BOB), replaced, 7) or b"")
    states = [e.get("state") for e in swap.xpath(".//c:endpoint", namespaces=NS)]
    assert states == ["full", "deleted"]


def test_deleted_document() -> None:
    root = assert_valid(render_deleted(CONF, 9))
    assert (root.get("state"), root.get("version"), len(root)) == ("deleted", "9", 0)


def test_the_vendored_schema_refuses_what_rfc_4575_does_not_allow() -> None:
    """The fixture is the real §5 schema, not one that accepts anything."""
    document = render_full(snapshot(ALICE), 1)
    assert schema().validate(etree.fromstring(document))
    for bad in (
        document.replace(b"<status>connected</status>", b"<status>speaking</status>"),
        document.replace(f' entity="{CONF}"'.encode(), b"", 1),  # entity is required
        document.replace(b'state="full"', b'state="complete"', 1),
        document.replace(b"<user-count>1</user-count>", b"<user-count>-1</user-count>"),
    ):
        assert bad != document
        assert not schema().validate(etree.fromstring(bad)), bad.decode()


@pytest.mark.parametrize("status", ["on-hold", "muted-via-focus", "dialing-in", "disconnected"])
def test_endpoint_statuses_validate(status: str) -> None:
    user = replace(ALICE, endpoints=(endpoint("sip:x@h", status),))
    assert_valid(render_full(snapshot(user), 1))


def test_bad_values_are_local_errors() -> None:
    with pytest.raises(ValueError):
        ConferenceInfoEndpoint("sip:x@h", "online")
    with pytest.raises(ValueError):
        render_full(snapshot(), 2**32)


def test_parse_round_trip() -> None:
    notice = parse_conference_info(render_full(snapshot(ALICE, BOB), 4))
    assert (notice.entity, notice.state, notice.version, notice.user_count) == (CONF, "full", 4, 2)
    assert notice.endpoints == {
        "sip:a@127.0.0.1:5070": "connected",
        "sip:b@127.0.0.1:5080": "connected",
    }


@pytest.mark.parametrize(
    "data",
    [b"", b"<x/>", b"<conference-info xmlns='urn:ietf:params:xml:ns:conference-info'/>",
     b'<!DOCTYPE a [<!ENTITY b "c">]><a/>', b"<a" * 10],
)  # fmt: skip
def test_parse_refuses_garbage(data: bytes) -> None:
    with pytest.raises(ConferenceInfoError):
        parse_conference_info(data)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize(
    "doctype",
    ['<!DOCTYPE c [<!ENTITY b "c">]>', '<!DOCTYPE c SYSTEM "file:///etc/hostname">',
     "<!DOCTYPE conference-info>"],
)  # fmt: skip
def test_dtds_are_refused_after_decoding(encoding: str, doctype: str) -> None:
    """The parser stops at ``<!DOCTYPE`` in the decoded text: a byte search for it
    misses UTF-16 (with a BOM or without); the same document without one is read."""
    declaration = f'<?xml version="1.0" encoding="{encoding.upper()[:6]}"?>'
    body = f'<conference-info xmlns="{NS["c"]}" entity="{CONF}" version="3"/>'
    with pytest.raises(ConferenceInfoError, match="DTDs and entity declarations"):
        parse_conference_info((declaration + doctype + body).encode(encoding))
    assert parse_conference_info((declaration + body).encode(encoding)).version == 3


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_parse_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_conference_info(data)
    except ConferenceInfoError:
        pass


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=20), st.sampled_from(["connected", "on-hold", "pending"]))
def test_any_display_text_and_status_still_validates(text: str, status: str) -> None:
    clean = "".join(ch for ch in text if ch.isprintable()) or "x"
    user = ConferenceInfoUser("sip:u@h", display_text=clean, endpoints=(endpoint("e", status),))
    assert_valid(render_full(snapshot(user), 1))


def test_a_talking_stream_carries_the_talker_extension_and_stays_schema_valid() -> None:
    talking = (ConferenceInfoMedia("0", "audio", "sendrecv", "sdes", talking=True),)
    alice = replace(ALICE, endpoints=(endpoint("sip:a@127.0.0.1:5070", media=talking),))
    root = assert_valid(render_full(snapshot(alice, BOB), 1))
    ns = {**NS, "t": TALKER_NS}
    assert root.xpath("string(//c:media/t:talking)", namespaces=ns) == "true"
    assert len(root.xpath("//t:talking", namespaces=ns)) == 1  # bob is not talking
    partial = assert_valid(render_partial(snapshot(ALICE, BOB), snapshot(alice, BOB), 2))
    assert partial.xpath("string(//c:endpoint/c:media/t:talking)", namespaces=ns) == "true"
    notice = parse_conference_info(render_full(snapshot(alice, BOB), 3))
    assert notice.talking == {"sip:a@127.0.0.1:5070"}
    assert parse_conference_info(render_full(snapshot(ALICE, BOB), 4)).talking == set()


def test_a_locked_conference_says_so_in_conference_state() -> None:
    """Policy ``locked`` (web Lock) → RFC 4575 §5.5 ``conference-state/locked``, in the
    full document and as a partial one when it changes."""
    from focus.conference import ConferenceInfo, ConferencePolicy
    from notify.roster import ConferenceRoster

    def info(locked: bool) -> ConferenceInfo:
        return ConferenceInfo(1, "retro", None, ConferencePolicy(locked=locked))

    roster = ConferenceRoster("retro")
    open_, locked = (roster.snapshot(info(v), [], CONF, "sip:127.0.0.1") for v in (False, True))
    document = assert_valid(render_full(locked, 1))
    assert document.findtext("c:conference-state/c:locked", namespaces=NS) == "true"
    change = render_partial(open_, locked, 2)
    assert change is not None
    partial = assert_valid(change)
    assert partial.findtext("c:conference-state/c:locked", namespaces=NS) == "true"
