"""The ``mrf`` command line, driven through ``main([...])``."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from mrf import __version__
from mrf.__main__ import main
from mrf.settings import Settings


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MRF_DATABASE_URL", "MRF_SIP_DOMAIN", "MRF_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MRF_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["serve", "--help"],
        ["version", "--help"],
        ["conference", "--help"],
        ["conference", "create", "--help"],
        ["conference", "list", "--help"],
        ["conference", "delete", "--help"],
    ],
)
def test_help_exits_zero(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, out, _ = run(capsys, *argv)
    assert status == 0
    assert out.startswith("usage: mrf")
    assert "--config FILE" in out


def test_version_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "version")
    assert status == 0
    data = json.loads(out)
    assert data["version"] == __version__ == "0.1.0"
    assert isinstance(data["features"], list)
    assert all(isinstance(feature, str) for feature in data["features"])


def test_conference_lifecycle(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    status, out, _ = run(
        capsys,
        "conference",
        "create",
        "retro",
        "--participant",
        "sip:alice@127.0.0.1",
        "--participant",
        "sip:bob@127.0.0.1,chair",
    )
    assert (status, out) == (0, "sip:retro@127.0.0.1\n")
    assert (data_dir / "mrf.db").exists()
    assert run(capsys, "conference", "create", "open", "--allow-anonymous")[0] == 0
    status, out, _ = run(capsys, "conference", "list")
    assert status == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["name"] for line in lines] == ["open", "retro"]
    assert lines[0]["policy"]["allow_anonymous"] is True
    assert lines[1]["uri"] == "sip:retro@127.0.0.1"
    # no --key-mode: every secure key mode (issue 13)
    assert lines[1]["policy"]["key_modes"] == ["sdes", "mikey-ticket", "dtls", "fingerprint"]
    assert run(capsys, "conference", "create", "narrow", "--key-mode", "sdes")[0] == 0
    status, out, _ = run(capsys, "conference", "list")
    narrow = [json.loads(line) for line in out.splitlines() if '"narrow"' in line]
    assert narrow[0]["policy"]["key_modes"] == ["sdes"]
    assert run(capsys, "conference", "delete", "narrow")[0] == 0
    assert lines[1]["participants"] == [
        {"uri": "sip:alice@127.0.0.1", "role": "participant", "use_mikey": False},
        {"uri": "sip:bob@127.0.0.1", "role": "chair", "use_mikey": False},
    ]
    assert run(capsys, "conference", "delete", "retro")[:2] == (0, "")
    status, out, _ = run(capsys, "conference", "list")
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["open"]


def test_delete_unknown_conference_fails(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "conference", "delete", "nope")
    assert (status, out) == (1, "")
    assert err.strip().splitlines()[-1] == "mrf: error: no conference named 'nope'"


def test_create_twice_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "conference", "create", "dup")[0] == 0
    status, _, err = run(capsys, "conference", "create", "dup")
    assert status == 1
    assert "mrf: error: a conference named 'dup' exists already" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["conference"], "the following arguments are required: ACTION"),
        (["conference", "create"], "the following arguments are required: name"),
        (["conference", "create", "Bad Name"], "invalid conference name 'Bad Name'"),
        (["conference", "create", "x", "--participant", "mailto:a@b"], "unsupported URI scheme"),
        (["conference", "create", "x", "--participant", "sip:a@b,boss"], "role must be one of"),
        (["version", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_exit_two(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("mrf: error: ") and err.count("\n") == 1
    assert message in err


def test_config_before_and_after_the_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "mrf.toml"
    config.write_text('[sip]\ndomain = "conf.example"\n')
    assert run(capsys, "--config", str(config), "conference", "create", "a")[1] == (
        "sip:a@conf.example\n"
    )
    assert run(capsys, "conference", "create", "b", "--config", str(config))[1] == (
        "sip:b@conf.example\n"
    )
    assert run(capsys, "conference", "create", "c")[1] == "sip:c@127.0.0.1\n"


def test_bad_settings_fail_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRF_SIP_PORT", "many")
    status, _, err = run(capsys, "conference", "list")
    assert status == 1
    assert err == "mrf: error: MRF_SIP_PORT: must be an integer, got 'many'\n"
    assert run(capsys, "version")[0] == 0, "version works even with broken settings"


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "serve", "--config", str(tmp_path / "nope.toml"))
    assert status == 1
    assert "config file not found" in err


def test_serve_calls_server_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Settings] = []
    fake = types.ModuleType("mrf.server")
    fake.run = lambda settings: seen.append(settings) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mrf.server", fake)
    monkeypatch.setenv("MRF_WEB_PORT", "9090")
    assert run(capsys, "serve")[0] == 0
    assert len(seen) == 1 and seen[0].web.port == 9090


def test_serve_without_server_module(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mrf.server", None)  # import raises ModuleNotFoundError
    status, _, err = run(capsys, "serve")
    assert status == 1
    assert "mrf: error: this installation has no server" in err
