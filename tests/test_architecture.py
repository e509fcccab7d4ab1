"""The dependency direction of docs/architecture.md, checked by walking the imports.

* sans-I/O cores (focus/sip, focus/sdp) import only the stdlib, ``cryptography``
  and other cores: no asyncio, no sockets, no database, no services;
* nothing imports ``web``;
* ``focus`` never imports ``mrf`` (the media plane is injected into the focus).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORES = ("focus/sip", "focus/sdp", "mrf/bfcp")
CORE_ALLOWED_THIRD_PARTY = {"cryptography"}
CORE_FORBIDDEN_STDLIB = {"asyncio", "socket", "selectors", "ssl", "sqlite3", "threading"}
# the sans-I/O transaction layer and dialogs are cores too, transport.py is the adapter
CORE_EXCEPTIONS: set[str] = set()


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def test_cores_import_only_stdlib_cryptography_and_cores() -> None:
    core_packages = {c.replace("/", ".") for c in CORES}
    offenders = []
    for path in python_files(*CORES):
        for name in imports_of(path):
            top = name.split(".")[0]
            if any(name == c or name.startswith(c + ".") for c in core_packages):
                continue
            if top in CORE_FORBIDDEN_STDLIB:
                offenders.append(f"{path.relative_to(ROOT)}: {name} (I/O in a sans-I/O core)")
            elif top in sys.stdlib_module_names or top in CORE_ALLOWED_THIRD_PARTY:
                continue
            else:
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


# the composition root (``mrf serve``) is the one place that wires the web app in
WEB_LOADERS = {"mrf/webserver.py"}


def test_nothing_imports_web() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in python_files("focus", "mrf", "notify")
        for name in imports_of(path)
        if (name == "web" or name.startswith("web."))
        and str(path.relative_to(ROOT)) not in WEB_LOADERS
    ]
    assert offenders == []


def test_focus_does_not_import_the_media_plane() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in python_files("focus")
        for name in imports_of(path)
        if name == "mrf" or name.startswith("mrf.")
    ]
    assert offenders == []


def test_the_walker_sees_imports() -> None:
    """Guard against a vacuous pass: the walker finds known imports."""
    assert "focus.sip.message" in imports_of(ROOT / "focus" / "service.py")
    assert python_files(*CORES)
