"""`run_server`'s listener: connections accepted on it get TCP_NODELAY from asyncio.

uvicorn binds the shared socket of ``--workers N`` with protocol number 0, so asyncio
leaves Nagle's algorithm on for every connection (each keep-alive response then waits for
the client's delayed ACK); ``tcp_listener`` gives the socket its TCP protocol number.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from failwise.service._run import tcp_listener


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
