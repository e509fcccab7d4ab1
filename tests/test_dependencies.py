"""Every runtime dependency is used by the product, and the README says what for.

The runtime dependencies are ``[project] dependencies`` of pyproject.toml; the
product is what pip installs: ``focus``, ``mrf``, ``notify``, ``web``.

1. Every third-party module the product imports belongs to a declared runtime
   dependency: nothing is used that only arrives as another package's
   dependency (and could leave with it).
2. Every declared runtime dependency is imported by the product, or is one of
   the few a library loads for it by name (``INDIRECT``); each of those names
   the library module that imports it and the product file that asks for it.
3. The README's table "Dependencies and what each is for" has a row for each
   runtime dependency and each ``test`` extra, and no row for a package
   pyproject does not declare.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("focus", "mrf", "notify", "web")

# dependency -> (library module that imports it, product file, what in that file selects it)
INDIRECT = {
    "jinja2": ("starlette.templating", "web/pages.py", "Jinja2Templates"),
    "psycopg": ("sqlalchemy.dialects.postgresql.psycopg", "focus/store.py", "postgresql+psycopg"),
    "websockets": (
        "uvicorn.protocols.websockets.websockets_sansio_impl",
        "mrf/webserver.py",
        "websockets-sansio",
    ),  # fmt: skip
}


def canonical(name: str) -> str:
    """A distribution name as PEP 503 normalises it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return canonical(match.group(0))


def declared() -> tuple[set[str], set[str]]:
    """(runtime dependencies, ``test`` extra), canonical names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    test = {_requirement_name(r) for r in project["optional-dependencies"]["test"]}
    return runtime, test


def imports_of(path: Path) -> set[str]:
    """Top-level modules ``path`` imports absolutely, anywhere in it (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def imported_modules(files: list[Path]) -> dict[str, str]:
    """Module -> the first of ``files`` (relative to the root) that imports it."""
    found: dict[str, str] = {}
    for path in files:
        for name in sorted(imports_of(path)):
            found.setdefault(name, path.relative_to(ROOT).as_posix())
    return found


def _product_files() -> list[Path]:
    return sorted(p for package in PRODUCT for p in (ROOT / package).rglob("*.py"))


def third_party(modules: dict[str, str]) -> dict[str, str]:
    skip = set(sys.stdlib_module_names) | set(PRODUCT) | {"__future__"}
    return {m: f for m, f in modules.items() if m not in skip}


def test_every_imported_package_is_a_declared_dependency() -> None:
    runtime, _ = declared()
    owners = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, where in third_party(imported_modules(_product_files())).items():
        distributions = {canonical(d) for d in owners.get(module, [module])}
        if not distributions & runtime:
            undeclared[module] = (where, sorted(distributions))
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"


def test_every_declared_dependency_is_used_by_the_product() -> None:
    runtime, _ = declared()
    owners = importlib.metadata.packages_distributions()
    used = set()
    for module in third_party(imported_modules(_product_files())):
        used |= {canonical(d) for d in owners.get(module, [])}
    for dependency, (library, product_file, selector) in INDIRECT.items():
        assert dependency in runtime, f"{dependency} is no longer declared: drop it from INDIRECT"
        assert selector in (ROOT / product_file).read_text(), (dependency, product_file)
        spec = importlib.util.find_spec(library)
        assert spec is not None and spec.origin, library
        assert dependency in imports_of(Path(spec.origin)), f"{library} no longer imports it"
        used.add(dependency)
    assert runtime - used == set(), f"declared but never used by the product: {runtime - used}"


def readme_rows() -> list[tuple[str, set[str]]]:
    """(first cell, canonical package names in it) for each row of the README's table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Dependencies and what each is for", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split("|")[1]
        # package names in backticks (a version range in backticks is not one)
        spelled = re.findall(r"`([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[\w,]+\])?)`", cell)
        names = {_requirement_name(n) for n in spelled}
        rows.append((cell, names))
    return rows


def test_the_readme_names_what_each_dependency_is_for() -> None:
    runtime, test = declared()
    listed_runtime: set[str] = set()
    listed_test: set[str] = set()
    for cell, names in readme_rows():
        if "(bench" in cell:
            continue  # benchmark tools, installed by hand (bench/README.md)
        (listed_test if "(test)" in cell else listed_runtime).update(names)
    assert listed_runtime == runtime, (
        f"README rows without pyproject entry: {listed_runtime - runtime}; "
        f"runtime dependencies without README row: {runtime - listed_runtime}"
    )
    assert listed_test == test, listed_test ^ test


def test_the_import_walk_sees_lazy_and_nested_imports(tmp_path: Path) -> None:
    """The checks above are only as good as the walk: it must find imports inside functions."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os.path\nfrom a.b import c\n\ndef f():\n    import lazy_thing\n"
        "    from .relative import x\n"
    )
    assert imports_of(sample) == {"os", "a", "lazy_thing"}
