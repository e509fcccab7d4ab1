"""MediaPlane port allocation on 127.0.0.1."""

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from mrf.rtp.plane import MediaPlane, MediaPlaneError

HOST = "127.0.0.1"


def run(coro: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(10):
            await coro()

    asyncio.run(bounded())


def free_range(pairs: int) -> tuple[int, int]:
    """An even-aligned range of `pairs` port pairs that are free right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            lo = s.getsockname()[1] & ~1
        if lo + 2 * pairs > 65535:
            continue
        sockets = []
        try:
            for port in range(lo, lo + 2 * pairs):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind((HOST, port))
            return lo, lo + 2 * pairs - 1
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range")


def test_allocates_even_pairs_bound_to_host() -> None:
    async def body() -> None:
        lo, hi = free_range(3)
        plane = MediaPlane(HOST, (lo, hi))
        streams = [await plane.allocate(f"s{i}") for i in range(3)]
        assert [s.rtp_port for s in streams] == [lo, lo + 2, lo + 4]
        for stream in streams:
            socks = [t.get_extra_info("sockname") for t in stream._transports]
            assert socks == [(HOST, stream.rtp_port), (HOST, stream.rtp_port + 1)]
        with pytest.raises(MediaPlaneError, match="no free"):
            await plane.allocate("full")
        assert len(plane) == 3
        await plane.wait_closed()
        assert len(plane) == 0 and all(s.closed for s in streams)
        with pytest.raises(MediaPlaneError, match="closed"):
            await plane.allocate("late")

    run(body)


def test_skips_port_held_by_another_socket() -> None:
    async def body() -> None:
        lo, hi = free_range(3)
        blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        blocker.bind((HOST, lo + 1))  # the RTCP port of the first pair
        try:
            plane = MediaPlane(HOST, (lo, hi))
            stream = await plane.allocate("a")
            assert stream.rtp_port == lo + 2
            # the half-bound first pair was rolled back: its RTP port is free
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind((HOST, lo))
            probe.close()
            await plane.wait_closed()
        finally:
            blocker.close()

    run(body)


def test_release_frees_port_and_close_releases_all() -> None:
    async def body() -> None:
        lo, hi = free_range(2)
        plane = MediaPlane(HOST, (lo, hi))
        a = await plane.allocate("a")
        b = await plane.allocate("b")
        a.set_keys("AES_CM_128_HMAC_SHA1_80", bytes(range(30)), bytes(range(30, 60)))
        plane.release(a)
        assert a.closed and a._rx is None
        await a.wait_closed()
        c = await plane.allocate("c")  # round-robin wraps to the released pair
        assert c.rtp_port == a.rtp_port
        plane.release(c)
        await c.wait_closed()
        await plane.wait_closed()
        assert b.closed
        for port in range(lo, hi + 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((HOST, port))  # every port is free again
            sock.close()

    run(body)


def test_stream_cap() -> None:
    async def body() -> None:
        lo, hi = free_range(3)
        plane = MediaPlane(HOST, (lo, hi), max_streams=1)
        await plane.allocate("a")
        with pytest.raises(MediaPlaneError, match="cap"):
            await plane.allocate("b")
        await plane.wait_closed()

    run(body)


def test_odd_range_start_is_aligned() -> None:
    plane = MediaPlane(HOST, (40001, 40006))
    assert plane._pairs == [40002, 40004]


@pytest.mark.parametrize(
    ("host", "ports", "kwargs"),
    [
        ("localhost", (40000, 40999), {}),
        ("127.0.0.1", (40000, 40000), {}),
        ("127.0.0.1", (41000, 40000), {}),
        ("127.0.0.1", (0, 10), {}),
        ("127.0.0.1", (65534, 65536), {}),
        ("127.0.0.1", (40000, 40999), {"max_streams": 0}),
    ],
)
def test_bad_configuration(host: str, ports: tuple[int, int], kwargs: dict[str, int]) -> None:
    with pytest.raises(MediaPlaneError):
        MediaPlane(host, ports, **kwargs)


def test_bind_failure_other_than_in_use_is_reported() -> None:
    async def body() -> None:
        plane = MediaPlane("192.0.2.1", (40000, 40003))  # TEST-NET-1: not a local address
        with pytest.raises(MediaPlaneError, match="cannot bind"):
            await plane.allocate("x")
        assert len(plane) == 0

    run(body)
