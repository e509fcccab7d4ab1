"""Fixtures of the interop suite: the server under test and the third-party peers.

``mrf_server(conferences, trusted_proxies=())`` writes a TOML config in the
test's directory, creates the conferences with the CLI, starts ``python -m mrf
serve`` and waits until it answers OPTIONS; at teardown it sends SIGINT (kill
after 10 s) and fails the test if the server logged a traceback.  Every peer
fixture stops its process at teardown.  When a test fails, the tails of all its
logs (server stderr, SIP traces, peer consoles) are attached to the report; the
full files stay in the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path

import pytest

from .harness import Artifacts, Conference, MrfServer, tail
from .peers import Baresip, Kamailio, LinphoneDaemon, Sipp

ARTIFACTS = pytest.StashKey[Artifacts]()

ServerFactory = Callable[..., MrfServer]


@pytest.fixture(autouse=True)
def _interop_gate() -> None:
    """``MRF_SKIP_INTEROP=1`` skips the suite (with a reason); nothing else does."""
    if os.environ.get("MRF_SKIP_INTEROP") == "1":
        pytest.skip("MRF_SKIP_INTEROP=1: third-party interop peers not run")


@pytest.fixture
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Artifacts:
    """The test's log files, attached to its report when it fails."""
    found = Artifacts(tmp_path)
    request.node.stash[ARTIFACTS] = found
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the tail of every registered log to a failed test's report."""
    report = yield
    found = item.stash.get(ARTIFACTS, None)
    if found is not None and report.failed:
        for name, path in found.logs.items():
            report.sections.append((f"interop log {name} ({path})", tail(path, 80)))
    return report


def start_server(
    workdir: Path, conferences: Iterable[Conference], trusted_proxies: Iterable[str] = ()
) -> MrfServer:
    """Config, conferences (CLI), ``mrf serve``; ready when OPTIONS is answered."""
    if os.environ.get("MRF_SKIP_INTEROP") == "1":  # module fixtures run before the gate
        pytest.skip("MRF_SKIP_INTEROP=1: third-party interop peers not run")
    server = MrfServer(workdir, trusted_proxies=trusted_proxies)
    for conference in conferences:
        server.create_conference(conference)
    server.start()
    return server


def finish_server(server: MrfServer) -> None:
    """Stop (SIGINT) and fail if the server logged an unhandled exception."""
    server.stop()
    text = server.log_text()
    if "Traceback (most recent call last)" in text:
        pytest.fail(f"the server logged a traceback:\n{tail(server.log, 80)}", pytrace=False)


@pytest.fixture
def mrf_server(artifacts: Artifacts) -> Iterator[ServerFactory]:
    """Factory: ``mrf_server([Conference(...)], trusted_proxies=[...]) -> MrfServer``."""
    servers: list[MrfServer] = []

    def make(conferences: Iterable[Conference], trusted_proxies: Iterable[str] = ()) -> MrfServer:
        name = f"server{len(servers)}"
        workdir = artifacts.directory / name
        artifacts.logs[f"{name} stderr"] = workdir / MrfServer.LOG_NAME
        artifacts.logs[f"{name} cli"] = workdir / MrfServer.CLI_LOG_NAME
        servers.append(start_server(workdir, conferences, trusted_proxies))
        return servers[-1]

    yield make
    for server in servers:
        finish_server(server)


@pytest.fixture
def sipp(artifacts: Artifacts) -> Sipp:
    """Runs the scenarios in tests/peers/sipp (each run bounded)."""
    return Sipp(artifacts)


@pytest.fixture
def baresip_factory(artifacts: Artifacts) -> Iterator[Callable[[], Baresip]]:
    """Factory of baresip UAs (account sip:alice@127.0.0.1, srtp-mand), all stopped."""
    made: list[Baresip] = []

    def make() -> Baresip:
        made.append(Baresip(artifacts, name=f"baresip{len(made)}"))
        return made[-1]

    yield make
    for ua in made:
        ua.close()


@pytest.fixture
def linphone_factory(artifacts: Artifacts) -> Iterator[Callable[[str], LinphoneDaemon]]:
    """Factory of linphone-daemons (``identity`` is the From URI), all stopped."""
    made: list[LinphoneDaemon] = []

    def make(identity: str) -> LinphoneDaemon:
        made.append(LinphoneDaemon(artifacts, identity))
        return made[-1]

    yield make
    for daemon in made:
        daemon.close()


@pytest.fixture
def kamailio_factory(artifacts: Artifacts) -> Iterator[Callable[..., Kamailio]]:
    """Factory of kamailio P-CSCF hops (``as_uri=...``), all stopped."""
    made: list[Kamailio] = []

    def make(
        *,
        as_uri: str,
        listen_ip: str = "127.0.0.2",
        tls_cfg: Path | None = None,
        assert_answerer: bool = False,
    ) -> Kamailio:
        name = f"kamailio{len(made)}"
        made.append(
            Kamailio(
                artifacts,
                as_uri=as_uri,
                listen_ip=listen_ip,
                tls_cfg=tls_cfg,
                name=name,
                assert_answerer=assert_answerer,
            )  # fmt: skip
        )
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()
