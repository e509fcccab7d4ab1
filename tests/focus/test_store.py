"""focus.store / focus.conference: conference CRUD on SQLite, AOR normalisation, policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from focus.conference import (
    AuthorizedEntry,
    ConferencePolicy,
    InvalidInput,
    normalize_aor,
    validate_conference_name,
)
from focus.sip.message import SipRemoteError
from focus.sip.uri import SipUri
from focus.store import (
    Account,
    ConferenceExists,
    ConferenceNotFound,
    ConferenceStore,
    StoreError,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConferenceStore]:
    with ConferenceStore(f"sqlite:///{tmp_path}/data/mrf.db") as opened:
        opened.create_all()
        yield opened


def count_participants(store: ConferenceStore) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(text("SELECT count(*) FROM authorized_participants")).scalar_one()
        )


def test_sqlite_file_uses_wal_and_foreign_keys(store: ConferenceStore, tmp_path: Path) -> None:
    assert (tmp_path / "data" / "mrf.db").exists(), "the data directory is created"
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1


def test_create_get_list_delete(store: ConferenceStore) -> None:
    created = store.create_conference(
        "retro", [("sip:alice@127.0.0.1", "participant"), ("Bob@Example.COM", "chair")]
    )
    assert created.name == "retro"
    assert created.uri("127.0.0.1") == "sip:retro@127.0.0.1"
    assert created.participants == (
        AuthorizedEntry("sip:alice@127.0.0.1", "participant"),
        AuthorizedEntry("sip:Bob@example.com", "chair"),
    )
    assert created.authorized() == {
        "sip:alice@127.0.0.1": "participant",
        "sip:Bob@example.com": "chair",
    }
    assert created.policy == ConferencePolicy()
    assert created.created_at.tzinfo is not None
    assert store.get_conference("retro") == created
    assert store.get_conference_by_id(created.id) == created
    assert store.get_conference("nope") is None
    store.create_conference("alpha", allow_anonymous=True)
    assert [c.name for c in store.list_conferences()] == ["alpha", "retro"]
    assert store.get_conference("alpha").policy.allow_anonymous is True  # type: ignore[union-attr]
    assert store.delete_conference("retro") is True
    assert store.delete_conference("retro") is False
    assert [c.name for c in store.list_conferences()] == ["alpha"]
    assert count_participants(store) == 0


def test_data_persists_across_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/mrf.db"
    with ConferenceStore(url) as first:
        first.create_all()
        first.create_conference("keep", ["sip:a@x.example"])
    with ConferenceStore(url) as second:
        second.create_all()
        info = second.get_conference("keep")
    assert info is not None and info.participants[0].uri == "sip:a@x.example"


def test_in_memory_database_is_shared_between_calls() -> None:
    with ConferenceStore("sqlite://") as memory:
        memory.create_all()
        memory.create_conference("mem", ["sip:a@b.example"])
        assert memory.get_conference("mem") is not None


def test_duplicate_name_is_conference_exists(store: ConferenceStore) -> None:
    store.create_conference("dup")
    with pytest.raises(ConferenceExists, match="a conference named 'dup' exists already"):
        store.create_conference("dup", ["sip:a@b.example"])
    assert count_participants(store) == 0, "the failed create left nothing behind"


def test_duplicate_participant_is_rejected(store: ConferenceStore) -> None:
    with pytest.raises(InvalidInput, match="participant sip:a@b.example is listed twice"):
        store.create_conference("x", ["sip:a@B.example", ("sips:a@b.example:5061", "chair")])
    assert store.get_conference("x") is None


def test_delete_cascades_in_the_database(store: ConferenceStore) -> None:
    store.create_conference("gone", ["sip:a@b.example", "sip:c@d.example"])
    assert count_participants(store) == 2
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM conferences WHERE name = 'gone'"))
    assert count_participants(store) == 0


def test_set_participants_replaces_the_list(store: ConferenceStore) -> None:
    store.create_conference("team", ["sip:a@b.example"])
    info = store.set_participants(
        "team", [AuthorizedEntry("sip:c@d.example", "chair", use_mikey=True), "sip:e@f.example"]
    )
    assert [(e.uri, e.role, e.use_mikey) for e in info.participants] == [
        ("sip:c@d.example", "chair", True),
        ("sip:e@f.example", "participant", False),
    ]
    assert info.updated_at >= info.created_at
    assert store.set_participants("team", []).participants == ()
    with pytest.raises(ConferenceNotFound, match="no conference named 'nope'"):
        store.set_participants("nope", [])


def test_update_policy(store: ConferenceStore) -> None:
    store.create_conference("pol")
    info = store.update_policy(
        "pol",
        key_modes=["mikey-ticket", "sdes", "sdes"],
        notify_protection="required",
        chair_uri="<sips:Chair@Example.com>",
        require_media_security=False,
    )
    assert info.policy == ConferencePolicy(
        allow_anonymous=False,
        require_media_security=False,
        key_modes=("mikey-ticket", "sdes"),
        notify_protection="required",
        chair_uri="sip:Chair@example.com",
    )
    assert store.get_conference("pol").policy == info.policy  # type: ignore[union-attr]
    with pytest.raises(ConferenceNotFound):
        store.update_policy("nope", allow_anonymous=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key_modes": ["zrtp"]}, "unknown key mode 'zrtp'"),
        ({"key_modes": []}, "key_modes must be a non-empty list"),
        ({"key_modes": "sdes"}, "key_modes must be a non-empty list"),
        ({"notify_protection": "maybe"}, "notify_protection must be one of optional, required"),
        ({"allow_anonymous": "yes"}, "allow_anonymous must be true or false"),
        ({"colour": "red"}, "unknown policy field 'colour'"),
        ({"chair_uri": "mailto:x@y"}, "unsupported URI scheme 'mailto'"),
    ],
)
def test_policy_validation(store: ConferenceStore, fields: dict[str, object], message: str) -> None:
    store.create_conference("pol")
    with pytest.raises(InvalidInput, match=message):
        store.update_policy("pol", **fields)
    assert store.get_conference("pol").policy == ConferencePolicy()  # type: ignore[union-attr]


def test_policy_from_json_round_trip() -> None:
    policy = ConferencePolicy(allow_anonymous=True, key_modes=("dtls",))
    assert ConferencePolicy.from_json(policy.to_json()) == policy


def test_owner_and_accounts(store: ConferenceStore) -> None:
    with Session(store.engine) as session:
        account = Account(name="ana", password_hash="scrypt$...")
        session.add(account)
        session.commit()
        owner = account.id
    assert owner is not None
    store.create_conference("mine", owner_id=owner)
    store.create_conference("theirs")
    assert [c.name for c in store.list_conferences(owner_id=owner)] == ["mine"]
    with pytest.raises(InvalidInput, match="owner_id does not name an existing account"):
        store.create_conference("orphan", owner_id=owner + 100)


def test_to_json_is_serialisable(store: ConferenceStore) -> None:
    info = store.create_conference("j", [("sip:a@b.example", "chair")])
    data = json.loads(json.dumps(info.to_json("conf.example")))
    assert data["uri"] == "sip:j@conf.example"
    assert data["participants"] == [{"uri": "sip:a@b.example", "role": "chair", "use_mikey": False}]
    assert data["policy"]["key_modes"] == ["sdes", "mikey-ticket", "dtls", "fingerprint"]


@pytest.mark.parametrize("name", ["", "Retro", "a b", "x" * 65, "caf\u00e9", "a@b", "a;b", 7])
def test_invalid_conference_names(store: ConferenceStore, name: object) -> None:
    with pytest.raises(InvalidInput, match="invalid conference name"):
        store.create_conference(name)  # type: ignore[arg-type]


def test_valid_conference_names() -> None:
    for name in ("a", "retro-2024", "team_a.b", "0" * 64):
        assert validate_conference_name(name) == name


@pytest.mark.parametrize(
    ("text", "aor"),
    [
        ("sip:alice@example.com", "sip:alice@example.com"),
        ("sips:alice@example.com", "sip:alice@example.com"),
        ("SIP:Alice@EXAMPLE.COM", "sip:Alice@example.com"),
        ("<sip:alice@example.com>", "sip:alice@example.com"),
        ('"Alice" <sip:alice@example.com;transport=tcp>;tag=1', "sip:alice@example.com"),
        ("alice@example.com", "sip:alice@example.com"),
        ("sip:alice:secret@example.com:5070", "sip:alice@example.com"),
        ("sip:alice@example.com;transport=tls?subject=hi", "sip:alice@example.com"),
        ("sip:alice@127.0.0.1:5060", "sip:alice@127.0.0.1"),
        ("sip:alice@[2001:DB8::1]:5060", "sip:alice@[2001:db8::1]"),
        (
            "sip:+15550100;phone-context=x@example.com;user=phone",
            "sip:+15550100;phone-context=x@example.com",
        ),
        ("sip:al%20ice@example.com", "sip:al%20ice@example.com"),
        ("sip:%61lice@example.com", "sip:alice@example.com"),
        ("  sip:alice@example.com  ", "sip:alice@example.com"),
        ("tel:+1-555-010-0123", "tel:+15550100123"),
        ("TEL:+1.(555).0100;ext=7", "tel:+15550100"),
    ],
)
def test_normalize_aor(text: str, aor: str) -> None:
    assert normalize_aor(text) == aor


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mailto:alice@example.com", "unsupported URI scheme 'mailto'"),
        ("alice", "not a SIP or tel URI"),
        ("sip:example.com", "SIP URI needs user@host"),
        ("sip:@example.com", "Invalid URI user part"),
        ("sip:al ice@example.com", "Invalid URI user part"),
        ("sip:alice@", "Invalid host"),
        ("sip:alice@exa mple.com", "Invalid host"),
        ("sip:alice@example.com:50x0", "Invalid port"),
        ("sip:alice@[2001:db8::1", "Invalid IPv6 reference"),
        ("sip:alice@[example.com]", "Invalid IPv6 reference"),
        ("sip:alice@[127.0.0.1]", "Invalid IPv6 reference"),
        ("<sip:alice@example.com", "unbalanced"),
        ("tel:5550100;phone-context=example.com", "tel URI must be a global number"),
        ("tel:5550100", "invalid URI 'tel:5550100': Local tel URI without phone-context"),
        (None, "URI must be a string"),
    ],
)
def test_normalize_aor_rejects(text: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        normalize_aor(text)


@given(st.text(max_size=80))
def test_normalize_aor_never_crashes_and_is_idempotent(text: str) -> None:
    try:
        aor = normalize_aor(text)
    except InvalidInput:
        return
    assert normalize_aor(aor) == aor


@given(
    st.from_regex(r"[a-zA-Z0-9._~+-]{1,12}", fullmatch=True),
    st.from_regex(r"[a-z]{1,10}\.[a-zA-Z]{2,5}", fullmatch=True),
    st.sampled_from(["sip", "sips", "SIP"]),
    st.sampled_from(["", ":5060", ";transport=tcp", ":5061;lr"]),
)
def test_normalize_aor_canonical_form(user: str, host: str, scheme: str, suffix: str) -> None:
    assert normalize_aor(f"{scheme}:{user}@{host}{suffix}") == f"sip:{user}@{host.lower()}"


@given(
    st.text(alphabet="abAB09%:;@.-+[]?=", max_size=40).map(lambda t: "sip:" + t)
    | st.text(alphabet="abAB09%:;@.-+[]?=", max_size=40).map(lambda t: "sips:a@" + t)
)
def test_normalize_aor_agrees_with_sip_uri_aor(text: str) -> None:
    """An authorized entry equals the identity focus.policy derives from the same URI."""
    try:
        uri = SipUri.parse(text)
    except SipRemoteError:
        with pytest.raises(InvalidInput):
            normalize_aor(text)
        return
    if uri.user:
        assert normalize_aor(text) == uri.aor


def test_store_errors_share_a_base() -> None:
    assert issubclass(ConferenceExists, StoreError) and issubclass(InvalidInput, ValueError)
