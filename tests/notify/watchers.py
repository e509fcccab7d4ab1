"""Subscribers of the interop tests and what they saw.

* ``mrf ue subscribe`` / ``mrf ue join --subscribe`` print ``notify`` events
  with the merged roster (``users``, ``endpoints``, ``floors``) and, with the
  opt-ins, dump the KEK and save every body;
* the sipp watcher (``sipp/uac_subscribe_watch.xml``) answers every NOTIFY
  until a terminated one; its bodies come from the ``-trace_msg`` log and are
  merged with the same :class:`mrf.ue.notify.UeRoster` logic;
* :func:`reached` checks that both saw the same roster changes, in order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrf.ue.notify import UeRoster
from notify.conference_info import parse_conference_info
from tests.interop.harness import free_port, require_peer
from tests.notify.rig import assert_valid, openssl_decrypt, xmllint_validates
from tests.peers import SIPP_DIR

HERE = SIPP_DIR
_RECEIVED = re.compile(
    rb"message received \[\d+\] bytes :\s*\n\s*(NOTIFY .*?)(?=\n-{20,}|\Z)", re.S
)
type Summary = dict[str, dict[str, str]]
type Check = Callable[[Summary], bool]


def sipp_watch_argv(host: str, port: int, conference: str, who: str, workdir: Path) -> list[str]:
    """sipp subscribing to ``conference`` as ``who`` until a terminated NOTIFY."""
    argv = [require_peer("sipp"), f"{host}:{port}", "-sf", str(HERE / "uac_subscribe_watch.xml")]
    argv += ["-s", conference, "-i", "127.0.0.1", "-p", str(free_port()), "-t", "u1", "-m", "1"]
    argv += ["-nostdin", "-timeout", "90", "-timeout_error", "-key", "from_uri", who]
    argv += ["-trace_logs", "-log_file", str(workdir / "watch.logs.log")]
    argv += ["-trace_msg", "-message_file", str(workdir / "watch.messages.log")]
    return argv


def sipp_notify_bodies(messages: Path) -> list[bytes]:
    """The bodies of the NOTIFYs sipp received, in order (from its ``-trace_msg`` log)."""
    text = messages.read_bytes()
    bodies = []
    for match in _RECEIVED.finditer(text):
        raw = match[1]
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            head, _, rest = raw.partition(b"\n\n")
        length = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        size = int(length[1]) if length else 0
        if size:
            bodies.append(rest[:size])
    return bodies


def sipp_summaries(messages: Path) -> list[Summary]:
    """Every sipp body validated against the schema and merged into the roster view."""
    roster, seen = UeRoster(), []
    for body in sipp_notify_bodies(messages):
        assert_valid(body)
        notice = parse_conference_info(body)
        assert notice.state == "deleted" or roster.apply(notice), f"version gap at {notice}"
        seen.append(roster.summary())
    return seen


def ue_events(path: Path, kind: str | None = None) -> list[dict[str, Any]]:
    lines = path.read_bytes().split(b"\n")[:-1] if path.exists() else []
    found = [json.loads(line) for line in lines if line.startswith(b"{")]
    return [e for e in found if kind is None or e["event"] == kind]


def ue_summaries(path: Path) -> list[Summary]:
    notifies = [e for e in ue_events(path, "notify") if e.get("version") is not None]
    versions = [e["version"] for e in notifies]
    assert versions == list(range(1, len(versions) + 1)), versions
    return [{k: e.get(k, {}) for k in ("users", "endpoints", "floors")} for e in notifies]


def reached(summaries: list[Summary], checks: list[Check]) -> bool:
    """Each check holds for some summary, in this order."""
    position = 0
    for check in checks:
        while position < len(summaries) and not check(summaries[position]):
            position += 1
        if position == len(summaries):
            return False
    return True


def user_is(user: str, status: str) -> Check:
    return lambda s: s["users"].get(user) == status


def floor_is(user: str, status: str | None) -> Check:
    return lambda s: s["floors"].get(user) == status


def check_protected_bodies(bodies: Path, key_dump: Path, workdir: Path) -> int:
    """Open every saved ``.der`` body with ``openssl cms`` under the dumped KEK; xmllint it."""
    keys = {}
    for line in key_dump.read_text().splitlines():
        _, _, key_id, kek = line.split()
        keys[key_id] = kek
    files = sorted(bodies.glob("*.der"))
    for index, path in enumerate(files):
        opened = None
        for key_id, kek in keys.items():  # one key per subscription; try each
            try:
                opened = openssl_decrypt(path.read_bytes(), bytes.fromhex(kek),
                                         bytes.fromhex(key_id), workdir)  # fmt: skip
                break
            except AssertionError:
                continue
        assert opened is not None, f"{path} opens under no dumped KEK"
        head, _, document = opened.partition(b"\r\n\r\n")
        assert b"application/conference-info+xml" in head.lower()
        plain = workdir / f"opened-{index:03d}.xml"
        plain.write_bytes(document)
        result = xmllint_validates(plain)
        assert result.returncode == 0, f"{plain}: {result.stderr}"
    return len(files)
