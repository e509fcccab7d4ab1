"""Shared plumbing for the atheris harnesses in ``bench/fuzz/``.

Every harness is a script ``fuzz_<proto>.py`` that defines ``PROTO`` (the
name of its ``tests/vectors/<proto>/`` directory), ``seeds()`` (extra seed
inputs built with the project's own encoders) and ``one_input(data)``, which
calls the parser and lets only the protocol's documented errors through:
``one_input`` catches those itself, so any exception that reaches atheris is
a crash (libFuzzer then writes the input to ``crash-<sha1>`` and stops).

Usage of a harness script (libFuzzer flags are passed through)::

    python bench/fuzz/fuzz_sip.py -runs=1000000 CORPUS_DIR
    python bench/fuzz/fuzz_sip.py --write-seeds DIR      # seeds only, no fuzzing

``bench/fuzz/run_all.py`` drives them all.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors"


def split_points(data: bytes, pattern: bytes) -> list[bytes]:
    """Cut ``data`` into chunks whose sizes (1..32) cycle through ``pattern``.

    Used to feed stream parsers the same bytes in arbitrary TCP segments;
    an empty pattern means one byte at a time.
    """
    sizes = [b % 32 + 1 for b in pattern] or [1]
    chunks, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        chunks.append(data[pos : pos + size])
        pos, i = pos + size, i + 1
    return chunks


def feed_all(
    factory: Callable[[], Any], chunks: Iterable[bytes], expected: tuple[type[BaseException], ...]
) -> tuple[list[Any], bool]:
    """Feed ``chunks`` to a fresh stream parser; (outputs so far, failed?)."""
    parser = factory()
    out: list[Any] = []
    try:
        for chunk in chunks:
            out.extend(parser.feed(chunk))
        out.extend(parser.feed(b""))  # an error deferred behind complete messages
    except expected:
        return out, True
    return out, False


def check_split_invariance(
    factory: Callable[[], Any],
    data: bytes,
    pattern: bytes,
    expected: tuple[type[BaseException], ...],
    key: Callable[[Any], object],
) -> None:
    """A stream parser must frame the same messages however the bytes are split.

    The one-shot feed and the chunked feed must agree: when the one-shot feed
    succeeds, the chunked one yields the same messages without error; when it
    fails, the chunked one fails too (after at most the messages before the
    bad one). A disagreement is raised as ``AssertionError`` (a crash).
    """
    whole, whole_failed = feed_all(factory, [data], expected)
    split, split_failed = feed_all(factory, split_points(data, pattern), expected)
    whole_keys, split_keys = [key(m) for m in whole], [key(m) for m in split]
    if whole_failed != split_failed:
        raise AssertionError(f"one-shot failed={whole_failed}, split failed={split_failed}")
    if not whole_failed and whole_keys != split_keys:
        raise AssertionError("split feed framed different messages")
    if whole_failed and split_keys[: len(whole_keys)] != whole_keys:
        raise AssertionError("split feed framed different messages before the error")


def vector_files(proto: str) -> list[Path]:
    """The input files of ``tests/vectors/<proto>/`` (not docs or generators)."""
    folder = VECTORS / proto
    if not folder.is_dir():
        return []
    skip = {".md", ".py"}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in skip)


def write_seeds(folder: Path, seeds: Iterable[bytes]) -> int:
    """Write each seed as ``seed-<sha1>`` into ``folder``; returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for seed in seeds:
        (folder / f"seed-{hashlib.sha1(seed).hexdigest()}").write_bytes(seed)
        count += 1
    return count


def main(
    proto: str,
    one_input: Callable[[bytes], None],
    seeds: Callable[[], Iterable[bytes]],
    argv: Sequence[str] | None = None,
) -> None:
    """Entry point of a harness script: ``--write-seeds DIR`` or libFuzzer flags."""
    args = list(sys.argv if argv is None else argv)
    if len(args) == 3 and args[1] == "--write-seeds":
        extra = list(seeds()) + [p.read_bytes() for p in vector_files(proto)]
        print(write_seeds(Path(args[2]), extra))
        return
    import atheris

    atheris.Setup(args, one_input)
    atheris.Fuzz()
