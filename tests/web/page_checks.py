"""What every page of the browser tests is checked for, at desktop and phone sizes.

* **Accessibility**: axe-core (npm, installed by :func:`axe_script` into the
  ignored ``.cache/axe`` of the repository, never committed) run in the page;
  findings of impact ``serious`` or ``critical`` fail the test.
* **No mid-word breaks**: every word of the page's text (SIP URIs in
  ``code.uri`` excepted: they may wrap anywhere) must lie on one line box.
* **Screenshots** at 1280×800 and 390×844, kept in the test's tmp directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
AXE_DIR = REPO / ".cache" / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.14"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# words laid out on more than one line box (the text of code.uri excepted)
BROKEN_WORDS_JS = """() => {
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest("code.uri, .sr-only, script, [hidden]")) continue;
    if (!parent.getClientRects().length) continue;
    const text = node.textContent;
    const re = /\\S+/g;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)
                              .map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
  return broken;
}"""


def axe_script() -> Path:
    """axe-core's ``axe.min.js``, installed from the npm registry on first use."""
    if AXE_JS.exists():
        return AXE_JS
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm not found: install the Debian package npm (axe-core comes from npm)")
    AXE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR),
         f"axe-core@{AXE_VERSION}"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return AXE_JS


def serious_findings(page: Any) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_script()))
    result = page.evaluate("async () => JSON.stringify((await axe.run(document)).violations)")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}"
        for v in json.loads(result)
        if v["impact"] in ("serious", "critical")
    ]


def check_page(page: Any, shots: Path, name: str) -> dict[str, int]:
    """Screenshot, axe and broken-word checks at both sizes; the page heights measured."""
    shots.mkdir(parents=True, exist_ok=True)
    heights = {}
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(50)
        page.screenshot(path=shots / f"{name}-{label}.png", full_page=True)
        findings = serious_findings(page)
        assert findings == [], f"{name} at {label}: {findings}"
        broken = page.evaluate(BROKEN_WORDS_JS)
        assert broken == [], f"{name} at {label}: words broken across lines: {broken}"
        heights[label] = int(page.evaluate("() => document.documentElement.scrollHeight"))
    page.set_viewport_size(DESKTOP)
    return heights
