"""The conference event package on the wire with sipp as the subscriber (UDP).

``python -m mrf serve`` (optional notify_protection, the default) against a
subscriber that comes and goes (``tests/peers/sipp/uac_subscribe_once.xml``: full
NOTIFY, un-subscribe, terminated NOTIFY), a non-authorized subscriber (403), and
a subscriber that watches a sipp dial-in join and leave (two partial NOTIFYs,
versions 2 and 3; the server's default rate cap of one NOTIFY per 5 s applies).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.harness import (
    Artifacts,
    BackgroundProcess,
    Conference,
    MrfServer,
    clean_env,
    free_port,
    require_peer,
    run_bounded,
    tail,
    wait_for,
)
from tests.interop.peers import Sipp
from tests.peers import SIPP_DIR

pytestmark = pytest.mark.interop

HERE = SIPP_DIR
WATCHER = "sip:watcher@example.com"
ALICE = "sip:alice@example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MrfServer]:
    started = MrfServer(tmp_path_factory.mktemp("mrf-notify"))
    started.create_conference(Conference("conf1", (WATCHER, ALICE)))
    started.start()
    yield started
    started.stop()
    assert "Traceback (most recent call last)" not in started.log_text(), tail(started.log, 80)


@pytest.fixture
def sipp(tmp_path: Path, server: MrfServer) -> Sipp:
    artifacts = Artifacts(tmp_path)
    artifacts.logs["server"] = server.log
    return Sipp(artifacts)


def subscriber_argv(server: MrfServer, scenario: Path, tmp_path: Path, *keys: str) -> list[str]:
    """sipp as a subscriber to conf1 (``-s conf1``), logs in ``tmp_path``."""
    argv = [require_peer("sipp"), f"{server.host}:{server.port}", "-sf", str(scenario)]
    argv += ["-s", "conf1", "-i", "127.0.0.1", "-p", str(free_port()), "-t", "u1", "-m", "1"]
    argv += ["-nostdin", "-timeout", "40", "-timeout_error"]
    argv += ["-trace_logs", "-log_file", str(tmp_path / f"{scenario.stem}.logs.log")]
    argv += ["-trace_msg", "-message_file", str(tmp_path / f"{scenario.stem}.messages.log")]
    for pair in zip(keys[::2], keys[1::2], strict=True):
        argv += ["-key", *pair]
    return argv


def run_subscriber(server: MrfServer, scenario: Path, tmp_path: Path, *keys: str) -> str:
    """Run to the end (bounded); the ``-trace_logs`` text; fail on a non-zero exit."""
    argv = subscriber_argv(server, scenario, tmp_path, *keys)
    result = run_bounded(argv, tmp_path / f"{scenario.stem}.out.log", timeout=30, env=clean_env())
    logs = (tmp_path / f"{scenario.stem}.logs.log").read_text(errors="replace")
    trace = tail(tmp_path / f"{scenario.stem}.messages.log", 120)
    assert result.returncode == 0, f"sipp rc={result.returncode}\n{logs}\n{trace}"
    return logs


def test_subscriber_gets_full_then_terminated(server: MrfServer, tmp_path: Path) -> None:
    scenario = HERE / "uac_subscribe_once.xml"
    logs = run_subscriber(server, scenario, tmp_path, "from_uri", WATCHER)
    full = re.search(r"^NOTIFY full ok .* active;expires=(\d+) ", logs, re.MULTILINE)
    assert full is not None and 0 < int(full.group(1)) <= 300, logs  # at most what we asked
    assert "NOTIFY terminated ok" in logs, logs


def test_unauthorized_subscriber_gets_403(server: MrfServer, tmp_path: Path) -> None:
    scenario = HERE / "uac_subscribe_refused.xml"
    logs = run_subscriber(server, scenario, tmp_path, "from_uri", "sip:mallory@example.com")
    assert "REFUSED 403" in logs


def test_roster_changes_reach_the_subscriber_as_partial_notifies(
    sipp: Sipp, server: MrfServer, tmp_path: Path
) -> None:
    scenario = HERE / "uac_subscribe_roster.xml"
    argv = subscriber_argv(server, scenario, tmp_path, "from_uri", WATCHER)
    logs = tmp_path / f"{scenario.stem}.logs.log"
    subscriber = BackgroundProcess(argv, tmp_path / "subscriber.out.log", env=clean_env())
    try:
        subscribed = wait_for(lambda: "subscribed to conf1" in server.log_text(), 10)
        assert subscribed, tail(server.log)
        time.sleep(0.3)
        dial = sipp.run(
            "uac_invite_accept.xml",
            f"{server.host}:{server.port}",
            keys={
                "ruri": server.request_uri("conf1"),
                "from_uri": ALICE,
                "pai_uri": ALICE,
                "privacy": "none",
            },
            pause_ms=6000,  # longer than the rate cap: join and leave in two NOTIFYs
        )
        assert dial.returncode == 0, dial.explain()
        status = subscriber.wait(35)
    finally:
        subscriber.stop()
    text = logs.read_text(errors="replace") if logs.exists() else ""
    trace = tail(tmp_path / f"{scenario.stem}.messages.log", 150)
    assert status == 0, f"subscriber rc={status}\n{text}\n{trace}"
    for line in ("NOTIFY full ok", "NOTIFY joined ok", "NOTIFY left ok", "NOTIFY final ok"):
        assert line in text, f"{line!r} missing:\n{text}\n{trace}"
