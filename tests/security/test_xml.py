"""XML with a DTD is refused after decoding, whatever its encoding (README "Dependencies").

The conference-info documents the product reads are the NOTIFY bodies ``mrf
ue`` receives (:mod:`mrf.ue.notify`).  A probe plays the notifier: it accepts
``mrf ue subscribe``'s SUBSCRIBE and sends a NOTIFY whose body is UTF-16 --
so the bytes hold no ``<!DOCTYPE`` an ASCII search could find -- with an
internal subset declaring nested entities (the start of a "billion laughs",
small enough that expat's own amplification limit lets it through) and an
external one (``file:///etc/hostname``).  The subscriber must refuse the body
(before this fix it read it, expansion and all); the same document without
the DTD, also in UTF-16, is then read (the control).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from focus.sip.message import SipRequest
from tests.interop.harness import REPO, clean_env, reap, wait_for
from tests.security.rig import ALICE
from tests.security.sip_probe import SipProbe
from tests.security.table import RefusalLog

CONFERENCE_INFO = "application/conference-info+xml"
DOCUMENT = (
    '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
    'entity="sip:room@127.0.0.1" state="full" version="1"><users>'
    '<user entity="{user}" state="full"><display-text>{text}</display-text>'
    '<endpoint entity="sip:alice@127.0.0.1:5070"><status>connected</status></endpoint></user>'
    "</users></conference-info>"
)
HOSTILE = (  # a..d: 10,000 characters from 4 lines (an unpatched parser expands them)
    '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE conference-info [\n'
    '<!ENTITY a "aaaaaaaaaa">\n'
    + "".join(f'<!ENTITY {chr(ord(a) + 1)} "{("&" + a + ";") * 10}">\n' for a in "abc")
    + '<!ENTITY x SYSTEM "file:///etc/hostname">\n]>\n'
    + DOCUMENT.format(user=ALICE, text="&d;")
)
CLEAN = '<?xml version="1.0" encoding="UTF-16"?>\n' + DOCUMENT.format(user=ALICE, text="alice")


def _events(out: Path) -> list[dict[str, object]]:
    lines = out.read_bytes().split(b"\n")[:-1]
    return [json.loads(line) for line in lines if line.startswith(b"{")]


def test_utf16_document_with_a_dtd_is_refused(tmp_path: Path, refusal: RefusalLog) -> None:
    hostile, clean = HOSTILE.encode("utf-16"), CLEAN.encode("utf-16")
    assert b"<!DOCTYPE" not in hostile and b"<!ENTITY" not in hostile  # the old check's blind spot
    out, err = tmp_path / "ue.jsonl", tmp_path / "ue.log"
    with SipProbe(("127.0.0.1", 9)) as notifier, out.open("wb") as stdout, err.open("wb") as stderr:
        uri = f"sip:room@127.0.0.1:{notifier.port}"
        argv = [sys.executable, "-m", "mrf", "ue", "subscribe", uri, "--as", ALICE,
                "--duration", "20"]  # fmt: skip
        ue = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
                              env=clean_env(PYTHONPATH=str(REPO)), cwd=tmp_path)  # fmt: skip
        try:
            subscribe = notifier.wait_request("SUBSCRIBE", timeout=20.0)
            assert isinstance(subscribe, SipRequest), err.read_text()[-2000:]
            via = subscribe.vias[0]
            notifier.server = (via.host, int(via.params.get("rport") or via.port or 5060))
            assert wait_for(lambda: any(e["event"] == "subscribed" for e in _events(out)), 10.0)
            first = notifier.notify(subscribe, 1, hostile, CONFERENCE_INFO)
            second = notifier.notify(subscribe, 2, clean, CONFERENCE_INFO)
            wait_for(lambda: len([e for e in _events(out) if e["event"] == "notify"]) >= 2, 10.0)
        finally:
            _leave(ue)
            reap(ue, 15, (stdout, stderr))
    events = _events(out)
    errors = [str(e["detail"]) for e in events if e["event"] == "error"]
    notices = [e for e in events if e["event"] == "notify"]
    read = [e for e in notices if e.get("version") == 1]
    refusal.record("DTD in UTF-16 XML", "NOTIFY to mrf ue: UTF-16 conference-info with nested "
                   "and external entities (DOCTYPE invisible to a byte search)",
                   f"NOTIFYs answered {first.response.status}/{second.response.status}; "
                   f"{errors[0] if errors else 'no error'}, hostile document read as version "
                   f"{notices[0]['version'] if notices else None}; then the same document "
                   f"without DTD: {len(read)} read as version 1")  # fmt: skip
    assert errors and "DTDs and entity declarations are refused" in errors[0]
    assert len(notices) == 2 and notices[0]["version"] is None
    assert read and read[0]["endpoints"] == {"sip:alice@127.0.0.1:5070": "connected"}, notices


def _leave(ue: subprocess.Popen[bytes]) -> None:
    try:
        assert ue.stdin is not None
        ue.stdin.write(b"leave\n")
        ue.stdin.flush()
    except (BrokenPipeError, OSError):
        pass
