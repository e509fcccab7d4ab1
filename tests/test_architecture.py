"""The dependency direction of docs/architecture.md, checked by walking the imports.

* sans-I/O cores (SIP, SDP, MIKEY, MSRP, BFCP and the notifier's conference-info,
  KEK, S/MIME and subscription cores) import only the stdlib, ``cryptography``
  (``asn1crypto`` for CMS) and other cores: no asyncio, no sockets, no ssl, no
  clock (``time``, ``datetime.now``), no database, no services or adapters;
* the secure-stream layer's TLS engines (mrf/tls_engine.py) are free of asyncio
  and sockets too: the adapter (mrf/secure_channel.py) is the only asyncio part;
* nothing imports ``web``;
* ``focus`` never imports ``mrf`` (the media plane is injected into the focus);
* the cores and the secure-stream layer never import the services above them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORES = (
    "focus/sip",
    "focus/sdp",
    "focus/mikey",
    "mrf/msrp",
    "mrf/bfcp",
    "notify/conference_info.py",
    "notify/kek.py",
    "notify/smime.py",
    "notify/subscription.py",
)
CORE_ALLOWED_THIRD_PARTY = {"cryptography", "asn1crypto"}
CORE_FORBIDDEN_STDLIB = {
    "asyncio", "socket", "selectors", "ssl", "sqlite3", "threading", "time", "subprocess",
}  # fmt: skip
CORE_FORBIDDEN_THIRD_PARTY = {"sqlmodel", "sqlalchemy", "OpenSSL", "starlette", "uvicorn"}
CLOCK_CALLS = {"now", "utcnow", "today", "monotonic", "perf_counter"}
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
    found: list[Path] = []
    for package in packages:
        path = ROOT / package
        found.extend([path] if path.suffix == ".py" else path.rglob("*.py"))
    return sorted(found)


def _module(entry: str) -> str:
    return entry.removesuffix(".py").replace("/", ".")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def core_offenders(paths: list[Path], cores: tuple[str, ...]) -> list[str]:
    core_modules = {_module(c) for c in cores}
    offenders = []
    for path in paths:
        for name in imports_of(path):
            top = name.split(".")[0]
            if any(name == c or name.startswith(c + ".") for c in core_modules):
                continue
            if top in CORE_FORBIDDEN_STDLIB or top in CORE_FORBIDDEN_THIRD_PARTY:
                offenders.append(f"{_rel(path)}: {name} (I/O in a sans-I/O core)")
            elif top in sys.stdlib_module_names or top in CORE_ALLOWED_THIRD_PARTY:
                continue
            else:
                offenders.append(f"{_rel(path)}: {name} (not a core)")
        offenders.extend(f"{_rel(path)}: {call}" for call in clock_calls(path))
    return offenders


def clock_calls(path: Path) -> list[str]:
    """Calls that read a clock (``datetime.now()``, ``loop.time()``...): cores take ``now``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in CLOCK_CALLS or (name == "time" and not node.args):
                found.append(f"line {node.lineno}: .{name}() (a clock in a sans-I/O core)")
    return found


def _module_file(directory: Path, text: str) -> Path:
    """A module that breaks the rules, for the checks' own tests."""
    path = directory / "bad_core.py"
    path.write_text(text, encoding="utf-8")
    return path


def test_cores_import_only_stdlib_cryptography_and_cores() -> None:
    assert core_offenders(python_files(*CORES), CORES) == []


def test_the_core_check_catches_io_clock_and_services(tmp_path: Path) -> None:
    """Guard against a vacuous pass: a core with each forbidden thing is reported."""
    bad = _module_file(
        tmp_path,
        "import asyncio\nimport ssl\nfrom focus.service import FocusService\n"
        "from sqlmodel import Session\nimport datetime\nstamp = datetime.datetime.now()\n",
    )
    found = "\n".join(core_offenders([bad], CORES))
    for expected in ("asyncio", "ssl", "focus.service", "sqlmodel", ".now()"):
        assert expected in found, found


STREAM_LAYER_PURE = ("mrf/tls_engine.py",)


def test_tls_engines_have_no_asyncio_or_sockets() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in python_files(*STREAM_LAYER_PURE)
        for name in imports_of(path)
        if name.split(".")[0] in {"asyncio", "socket", "selectors"}
    ]
    assert offenders == []


# the layers above the secure-stream layer; it and the cores never import them
SERVICES = ("mrf.chat", "mrf.floor", "mrf.server", "mrf.ue", "focus.service", "notify.service")
STREAM_LAYER = ("mrf/stream.py", "mrf/secure_channel.py", "mrf/stream_service.py")


def test_the_stream_layer_does_not_import_its_services() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in python_files(*STREAM_LAYER, *STREAM_LAYER_PURE)
        for name in imports_of(path)
        if any(name == s or name.startswith(s + ".") for s in SERVICES)
    ]
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


MUTABLE_FACTORIES = {"list", "set", "dict", "deque", "bytearray", "OrderedDict", "defaultdict"}


def module_state(path: Path) -> list[str]:
    """Module-level mutable containers (tables are tuples, frozensets or read-only dicts
    given as literals), ``global`` statements and fork hooks: state shared by every
    connection of a core."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            value = node.value
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                continue
            mutable = isinstance(value, ast.List | ast.Set | ast.ListComp | ast.SetComp) or (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in MUTABLE_FACTORIES
            )
            if mutable:
                found.append(f"{_rel(path)}:{node.lineno}: {ast.unparse(node)[:60]}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"{_rel(path)}:{node.lineno}: global {', '.join(node.names)}")
        elif isinstance(node, ast.Attribute) and node.attr == "register_at_fork":
            found.append(f"{_rel(path)}:{node.lineno}: os.register_at_fork")
    return found


def test_cores_hold_no_module_level_mutable_state() -> None:
    assert [entry for path in python_files(*CORES) for entry in module_state(path)] == []


def test_the_state_check_catches_a_pool_and_a_global(tmp_path: Path) -> None:
    bad = _module_file(
        tmp_path,
        "import os\n_pool: list[str] = []\n_last = [None]\n"
        "os.register_at_fork(after_in_child=_pool.clear)\ndef f():\n    global _last\n",
    )
    assert len(module_state(bad)) == 4
