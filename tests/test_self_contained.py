"""The repository carries everything it needs: no file refers to a path outside it.

A clone in an empty folder has to build, run and pass its tests, so no
tracked file may lean on something beside the checkout.  The checker finds
three shapes of such a reference:

* a relative path that climbs out of the repository with parent steps, or
  lands on nothing the repository has (a sibling folder named from ``docs/``);
* an absolute path into a workspace (see ``WORKSPACE_ROOTS``), or into the
  folder that holds the checkout, and mentions of the team's sibling
  reference folder;
* Python that computes a path above the repository root:
  ``Path(__file__).resolve().parents[n]`` or ``.parent`` chains (also through
  names bound to them, ``os.path.dirname`` and ``/``), and the parent of a
  name like ``REPO`` or ``ROOT``.

System locations of installed software (``/usr``, ``/etc``, ``/tmp`` ...) are
not references into a workspace and are allowed, as are URLs.
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# first components of absolute paths that belong to somebody's workspace, not the system
WORKSPACE_ROOTS = ("work", "home", "root", "farm", "mnt", "media", "Users", "scratch", "workspace")
_WORKSPACE = re.compile(rf"(?<![\w.:/~-])/(?:{'|'.join(WORKSPACE_ROOTS)})(?=/)")
# a run of ../ not preceded by a dot or word character ("GET .../roster" is prose)
_PARENT = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.\-/]*)")
_ROOT_PARENT = re.compile(r"\b(?:REPO|ROOT|REPO_ROOT|PROJECT_ROOT)\s*\.\s*parent\b")
# the team's sibling reference folder, however it is spelled
_SIBLING = re.compile(r"\bshared/(?:oracles|spec)\b")


@dataclass(frozen=True)
class Finding:
    """One reference to a path outside the repository."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _relative_references(text: str, path: str, known: set[str]) -> list[Finding]:
    """``../`` paths, resolved from the file's folder: inside and existing, or a finding."""
    found = []
    folder = posixpath.dirname(path)
    for match in _PARENT.finditer(text):
        target = posixpath.normpath(posixpath.join(folder, match.group(1) + match.group(2)))
        line = _line_of(text, match.start())
        if target == ".." or target.startswith("../"):
            found.append(Finding(path, line, f"{match.group(0)!r} climbs out of the repository"))
        elif target.rstrip("/") not in known:
            found.append(Finding(path, line, f"{match.group(0)!r} names {target}, not in the repo"))
    return found


def _absolute_references(text: str, path: str, outside: tuple[str, ...]) -> list[Finding]:
    found = []
    for match in _WORKSPACE.finditer(text):
        word = text[match.start() :].split()[0]
        found.append(Finding(path, _line_of(text, match.start()), f"workspace path {word!r}"))
    for location in outside:
        start = text.find(location)
        if start >= 0:
            found.append(Finding(path, _line_of(text, start), f"names {location!r} itself"))
    for pattern, reason in (
        (_ROOT_PARENT, "the repository root's parent"),
        (_SIBLING, "the sibling reference folder"),
    ):
        for match in pattern.finditer(text):
            found.append(Finding(path, _line_of(text, match.start()), f"{reason}: {match[0]!r}"))
    return found


class _PathEvaluator:
    """Where Python path expressions point, relative to the repository root.

    Values are normalised POSIX paths relative to the root ("tests/x.py",
    ".." for the root's parent); anything it cannot follow is ``None``.
    """

    def __init__(self, path: str) -> None:
        self.file = path
        self.names: dict[str, str] = {}

    def value(self, node: ast.expr) -> str | None:
        match node:
            case ast.Name(id="__file__"):
                return self.file
            case ast.Name(id=name):
                return self.names.get(name)
            case ast.Call(func=ast.Name(id="Path" | "PurePath" | "PosixPath"), args=[arg]):
                return self.value(arg)
            case ast.Call(
                func=ast.Attribute(value=ast.Name(id="pathlib"), attr="Path"), args=[arg]
            ):
                return self.value(arg)
            case ast.Call(func=ast.Attribute(attr="resolve" | "absolute"), args=[]):
                return self.value(node.func.value)  # type: ignore[attr-defined]
            case ast.Attribute(value=inner, attr="parent"):
                return self._up(self.value(inner), 1)
            case ast.Subscript(value=ast.Attribute(value=inner, attr="parents"),
                               slice=ast.Constant(value=int(levels))):  # fmt: skip
                return self._up(self.value(inner), levels + 1)
            case ast.BinOp(left=left, op=ast.Div(), right=ast.Constant(value=str(part))):
                return self._join(self.value(left), part)
            case ast.Call(func=ast.Attribute(value=inner, attr="joinpath"), args=parts):
                return self._join(self.value(inner), *self._strings(parts))
            case ast.Call(func=ast.Attribute(attr="dirname"), args=[arg]):
                return self._up(self.value(arg), 1)
            case ast.Call(func=ast.Attribute(attr="abspath" | "realpath"), args=[arg]):
                return self.value(arg)
            case ast.Call(func=ast.Attribute(attr="join"), args=[first, *parts]):
                return self._join(self.value(first), *self._strings(parts))
        return None

    @staticmethod
    def _strings(nodes: list[ast.expr]) -> list[str]:
        values = [n.value for n in nodes if isinstance(n, ast.Constant)]
        return [v for v in values if isinstance(v, str)] if len(values) == len(nodes) else ["?"]

    @staticmethod
    def _up(value: str | None, levels: int) -> str | None:
        if value is None:
            return None
        return posixpath.normpath(posixpath.join(value, *[".."] * levels))

    @staticmethod
    def _join(value: str | None, *parts: str) -> str | None:
        if value is None or "?" in parts:
            return None
        return posixpath.normpath(posixpath.join(value, *parts))


def _python_references(text: str, path: str) -> list[Finding]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    evaluator = _PathEvaluator(path)
    found: dict[int, Finding] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = evaluator.value(node.value)
            for target in targets:
                if isinstance(target, ast.Name) and value is not None:
                    evaluator.names[target.id] = value
        if isinstance(node, ast.expr):
            value = evaluator.value(node)
            if value is not None and (value == ".." or value.startswith("../")):
                reason = f"Python path {ast.unparse(node)!r} is outside the repo"
                found.setdefault(node.lineno, Finding(path, node.lineno, reason))
    return list(found.values())


def outside_references(
    text: str, path: str, known: set[str], outside: tuple[str, ...] = ()
) -> list[Finding]:
    """Every reference of ``text`` (the file ``path``, relative to the root) outside the repo.

    ``known`` holds the repository's files and folders (relative POSIX paths);
    ``outside`` absolute locations that must not appear (the checkout's parent).
    """
    found = _relative_references(text, path, known)
    found += _absolute_references(text, path, outside)
    if path.endswith(".py"):
        found += _python_references(text, path)
    return sorted(found, key=lambda f: f.line)


def tracked_files(root: Path) -> list[str]:
    """The repository's files (``git ls-files``; a walk when this is no git checkout)."""
    git = shutil.which("git")
    if git and (root / ".git").exists():
        argv = [git, "-C", str(root), "ls-files", "-z", "--cached", "--others"]
        listed = subprocess.run([*argv, "--exclude-standard"], capture_output=True, check=True)
        return sorted({p for p in listed.stdout.decode().split("\0") if p})
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d != "__pycache__"]
        files += [Path(folder, n).relative_to(root).as_posix() for n in names]
    return sorted(files)


def _known_paths(files: list[str]) -> set[str]:
    known = {"."}
    for file in files:
        known.add(file)
        parent = posixpath.dirname(file)
        while parent:
            known.add(parent)
            parent = posixpath.dirname(parent)
    return known


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary (a vector, an image)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    files = [f for f in tracked_files(ROOT) if (ROOT / f).is_file()]
    assert "tests/test_self_contained.py" in files and len(files) > 100, files[:10]
    known = _known_paths(files)
    # the folder holding the checkout, as a string to look for (nothing is read there)
    holder = os.path.dirname(str(ROOT))
    outside = (holder.rstrip(os.sep) + os.sep,) if holder != str(ROOT) else ()
    findings = []
    for file in files:
        text = _text(ROOT / file)
        if text is not None:
            findings += outside_references(text, file, known, outside)
    assert not findings, "\n".join(map(str, findings))


# --- the checker itself, on planted references ----------------------------------------
# Written with placeholders so that this file does not plant them in the scan above.
_PLACEHOLDERS = {"%UP%": "..", "%W%": "work", "%H%": "home", "%S%": "shared", "%P%": ".parent"}


def _planted(text: str) -> str:
    for placeholder, value in _PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


KNOWN = {".", "docs", "docs/a.md", "README.md", "tests", "tests/interop", "tests/vectors"}


@pytest.mark.parametrize(
    ("path", "text", "reason"),
    [
        ("Makefile", "# Debian test peers (%UP%/%S%/oracles)", "climbs out of the repository"),
        ("docs/mikey.md", "from `%UP%/%S%/spec/digest.md` (§2)", "not in the repo"),
        ("docs/a.md", "see [there](%UP%/%UP%/x.md)", "climbs out of the repository"),
        ("tests/interop/h.py", 'HINT = "(%UP%/%S% beside the repo)"', "not in the repo"),
        ("README.md", "the peers in /%W%/%S%/oracles/README.md", "workspace path"),
        ("README.md", "cd /%H%/alice/mrf && make", "workspace path"),
        ("tests/t.py", '"""Mirror of %S%/oracles/srtp/check.py."""', "sibling reference folder"),
        ("tests/interop/h.py", 'X = REPO%P% / "%S%"', "the repository root's parent"),
        ("tests/interop/h.py",
         'import os\nfrom pathlib import Path\nREPO = Path(__file__).resolve().parents[2]\n'
         'ORACLES = Path(os.environ.get("MRF_X", str(REPO%P% / "%S%" / "oracles")))',
         "Python path"),
        ("tests/focus/sdp/t.py",
         'from pathlib import Path\nD = Path(__file__).resolve().parents[4] / "%S%" / "d.sh"',
         "Python path"),
        ("tests/notify/rig.py",
         'import os\nHERE = os.path.dirname(os.path.abspath(__file__))\n'
         'XSD = os.path.join(HERE, "%UP%", "%UP%", "%UP%", "spec")', "Python path"),
        ("tests/t.py", "from pathlib import Path\nP = Path(__file__).parent.parent.parent",
         "Python path"),
    ],
)  # fmt: skip
def test_the_checker_finds_a_planted_reference(path: str, text: str, reason: str) -> None:
    findings = outside_references(_planted(text), path, KNOWN, ("/tmp/clone/",))
    assert findings, f"nothing found in {_planted(text)!r}"
    assert any(reason in f.reason for f in findings), findings


def test_the_checker_finds_the_checkouts_own_parent() -> None:
    text = "the vectors are in /tmp/clone/elsewhere/v.bin"
    findings = outside_references(text, "README.md", KNOWN, ("/tmp/clone/",))
    assert [f.line for f in findings] == [1] and "itself" in findings[0].reason


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("docs/a.md", "see [the README](%UP%/README.md) and https://example.com/%W%/x"),
        ("docs/a.md", "``GET .../roster`` lists them; so does /api/conferences/{name}"),
        ("tests/interop/h.py", 'MODULES = "/usr/lib/baresip/modules"; T = "/tmp/x/y"'),
        ("tests/interop/h.py",
         'from pathlib import Path\nREPO = Path(__file__).resolve().parents[2]\n'
         'V = REPO / "tests" / "vectors"\nW = Path(__file__).parent / "sipp"'),
        ("tests/t.py",
         'import os\nHERE = os.path.dirname(__file__)\nP = os.path.join(HERE, "%UP%")'),
        ("README.md", "`xmllint --schema tests/vectors/x.xsd`; xmlns:xs=http://www.w3.org/2001/x"),
    ],
)  # fmt: skip
def test_the_checker_leaves_references_inside_alone(path: str, text: str) -> None:
    assert outside_references(_planted(text), path, KNOWN, ("/tmp/clone/",)) == []
