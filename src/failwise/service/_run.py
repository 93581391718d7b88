"""`run_server`: uvicorn's worker supervisor, with ``TCP_NODELAY`` on every connection.

With ``workers > 1`` uvicorn binds the listening socket itself and hands it to its worker
processes; it creates that socket with protocol number 0 (uvicorn issue #3149, still so in
0.54). Accepted connections inherit the number, and asyncio enables ``TCP_NODELAY`` only on
sockets that report ``IPPROTO_TCP``, so Nagle's algorithm stays on: on Linux each response
on a keep-alive connection after the first waits for the client's delayed ACK, about
40 ms (a 2-worker server answering 20 times slower than a 1-worker one). Here the listener
is re-wrapped with ``IPPROTO_TCP`` before the supervisor starts the workers; one worker
runs as ``uvicorn.run`` does (asyncio binds that socket itself, correctly).
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["run_server", "tcp_listener"]


def tcp_listener(config: Any) -> socket.socket:
    """``config.bind_socket()`` (a ``uvicorn.Config``), reporting ``IPPROTO_TCP`` if TCP."""
    listener: socket.socket = config.bind_socket()
    if listener.family in (socket.AF_INET, socket.AF_INET6) and listener.proto == 0:
        listener = socket.socket(
            listener.family, listener.type, socket.IPPROTO_TCP, fileno=listener.detach()
        )
    return listener


def run_server(
    app: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    factory: bool = True,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve ``app`` (an import string, ``module:attribute``) until stopped.

    With ``workers > 1`` uvicorn's supervisor runs the workers and starts a new one when one
    dies; every accepted connection has ``TCP_NODELAY`` (see this module's notes).
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    options: dict[str, Any] = {
        "factory": factory,
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": log_level,
        "access_log": access_log,
    }
    if workers <= 1:
        uvicorn.run(app, **options)
        return
    config = uvicorn.Config(app, **options)
    listener = tcp_listener(config)
    try:
        Multiprocess(config, sockets=[listener]).run()
    finally:
        listener.close()
