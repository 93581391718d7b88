"""`run_server`'s listeners: connections accepted on them get TCP_NODELAY from asyncio, and
on Linux each worker listens on a socket of its own (SO_REUSEPORT).

uvicorn binds the shared socket of ``--workers N`` with protocol number 0, so asyncio
leaves Nagle's algorithm on for every connection (each keep-alive response then waits for
the client's delayed ACK); ``tcp_listener`` gives the socket its TCP protocol number.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
from multiprocessing.reduction import ForkingPickler

import pytest
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from failwise.service._run import (
    PortReservation,
    reuse_port_supported,
    tcp_listener,
    worker_listener,
)


async def _nodelay_of_an_accepted_connection(listener: socket.socket) -> int:
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    port = listener.getsockname()[1]
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(seen, 10)
        writer.close()
    return value


def test_connections_on_the_workers_listener_get_tcp_nodelay() -> None:
    config = uvicorn.Config("failwise.service:app_from_env", host="127.0.0.1", port=0)
    listener = tcp_listener(config)
    assert listener.proto == socket.IPPROTO_TCP
    assert asyncio.run(_nodelay_of_an_accepted_connection(listener)) != 0


def test_uvicorns_own_listener_leaves_nagle_on() -> None:
    # The reason for tcp_listener: if uvicorn fixes its bind, this fails and it can go.
    config = uvicorn.Config("failwise.service:app_from_env", host="127.0.0.1", port=0)
    listener = config.bind_socket()
    assert asyncio.run(_nodelay_of_an_accepted_connection(listener)) == 0


# ------------------------------------------------------------------ a socket per worker


def _unpickled_in_a_worker(reservation: PortReservation) -> socket.socket:
    """What a worker the supervisor starts receives for ``reservation`` (spawn pickles it)."""
    received = pickle.loads(ForkingPickler.dumps([reservation]))
    assert isinstance(received, list)
    assert len(received) == 1
    sock: socket.socket = received[0]
    return sock


def _accept_all(listener: socket.socket) -> int:
    listener.setblocking(False)
    count = 0
    while True:
        try:
            accepted, _ = listener.accept()
        except (BlockingIOError, OSError):
            return count
        accepted.close()
        count += 1


@pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT balancing is Linux-only")
def test_each_worker_gets_a_listener_of_its_own_and_the_kernel_spreads_connections() -> None:
    config = uvicorn.Config("failwise.service:app_from_env", host="127.0.0.1", port=0)
    with PortReservation.reserve(config) as reservation:
        address = reservation.getsockname()
        first = _unpickled_in_a_worker(reservation)
        second = _unpickled_in_a_worker(reservation)
        with first, second:
            for sock in (first, second):
                assert type(sock) is socket.socket
                assert sock.getsockname() == address
                assert sock.proto == socket.IPPROTO_TCP
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
                sock.listen(128)
            for _ in range(64):
                socket.create_connection(address, timeout=5).close()
            counts = [_accept_all(first), _accept_all(second), _accept_all(reservation)]
    # Both workers get connections (64 hashed 50/50 all to one: p = 2**-63); the
    # supervisor's reservation, never listening, gets none.
    assert counts[0] > 0, counts
    assert counts[1] > 0, counts
    assert counts[2] == 0, counts
    assert sum(counts) == 64


@pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT balancing is Linux-only")
def test_connections_on_a_workers_own_listener_get_tcp_nodelay() -> None:
    config = uvicorn.Config("failwise.service:app_from_env", host="127.0.0.1", port=0)
    with PortReservation.reserve(config) as reservation:
        listener = _unpickled_in_a_worker(reservation)
        assert asyncio.run(_nodelay_of_an_accepted_connection(listener)) != 0


@pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT balancing is Linux-only")
def test_a_port_in_use_is_refused_by_the_supervisor_and_by_a_starting_worker() -> None:
    with socket.socket() as taken:  # a listener of another program, without SO_REUSEPORT
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = uvicorn.Config("failwise.service:app_from_env", host="127.0.0.1", port=port)
        with pytest.raises(SystemExit) as refused:
            PortReservation.reserve(config)
        assert refused.value.code == STARTUP_FAILURE
        with pytest.raises(SystemExit) as worker:
            worker_listener(socket.AF_INET, ("127.0.0.1", port))
        assert worker.value.code == STARTUP_FAILURE
    config = uvicorn.Config("failwise.service:app_from_env", host="127.0.0.1", port=0)
    with PortReservation.reserve(config) as reservation:  # another failwise serve: refused too
        busy = uvicorn.Config(
            "failwise.service:app_from_env", host="127.0.0.1", port=reservation.getsockname()[1]
        )
        with pytest.raises(SystemExit):
            PortReservation.reserve(busy)
