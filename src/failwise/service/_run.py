"""`run_server`: uvicorn's worker supervisor, one listening socket per worker, ``TCP_NODELAY``.

**A socket per worker.** With a single listening socket shared by every worker, the
worker that wakes first accepts every connection waiting in the queue (asyncio accepts
in a loop), so a few long-lived connections opened together often all land on one worker
while the other idles. On Linux, ``SO_REUSEPORT`` lets each worker listen on a socket of
its own bound to the same address; the kernel then spreads new connections over the
listening sockets by a hash of each connection's addresses. The supervisor process keeps
the address bound (with ``SO_REUSEPORT``, never listening: it takes no connections) so
that the port stays the service's while workers come and go, and each worker binds its
own socket when it starts (the socket the supervisor hands to a new worker is rebuilt in
the worker as a fresh one, see :class:`PortReservation`). A worker that dies takes its
socket with it: new connections go to the remaining workers at once, never to a queue
nobody accepts from; connections that were waiting in the dead worker's own queue are
reset, as those it had accepted are lost with it. A second ``failwise serve`` on a port
already in use is refused before the supervisor starts, as uvicorn refuses it. Elsewhere
(no ``SO_REUSEPORT``, or not Linux, whose ``SO_REUSEPORT`` does not balance) the workers
share one socket, as uvicorn does.

**TCP_NODELAY.** uvicorn binds the shared socket of ``workers > 1`` with protocol number 0
(uvicorn issue #3149, still so in 0.54). Accepted connections inherit the number, and
asyncio enables ``TCP_NODELAY`` only on sockets that report ``IPPROTO_TCP``, so Nagle's
algorithm stays on: on Linux each response on a keep-alive connection after the first
waits for the client's delayed ACK, about 40 ms (a 2-worker server answering 20 times
slower than a 1-worker one). Every socket made here reports ``IPPROTO_TCP``. One worker
runs as ``uvicorn.run`` does (asyncio binds that socket itself, correctly).
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any, NoReturn, SupportsIndex

__all__ = ["PortReservation", "reuse_port_supported", "run_server", "tcp_listener"]


def reuse_port_supported() -> bool:
    """Whether listening sockets can share a port with the kernel balancing between them."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def tcp_listener(config: Any) -> socket.socket:
    """``config.bind_socket()`` (a ``uvicorn.Config``), reporting ``IPPROTO_TCP`` if TCP."""
    listener: socket.socket = config.bind_socket()
    if listener.family in (socket.AF_INET, socket.AF_INET6) and listener.proto == 0:
        listener = socket.socket(
            listener.family, listener.type, socket.IPPROTO_TCP, fileno=listener.detach()
        )
    return listener


def _reuse_port_socket(family: int, address: Any, *, reuse_address: bool) -> socket.socket:
    """A TCP socket with ``SO_REUSEPORT`` bound to ``address`` (not listening yet)."""
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def worker_listener(family: int, address: Any) -> socket.socket:
    """The listening socket of a worker that starts: its own, on the supervisor's address.

    Runs in the new worker process as the supervisor's :class:`PortReservation` is
    unpickled there. If the address cannot be bound the worker exits with uvicorn's
    start-up failure code, so the supervisor stops instead of restarting it forever.
    """
    try:
        return _reuse_port_socket(family, address, reuse_address=True)
    except OSError as error:
        _exit_unbound(address, error)


def _exit_unbound(address: Any, error: OSError) -> NoReturn:
    from uvicorn.config import STARTUP_FAILURE

    logging.getLogger("uvicorn.error").error("cannot bind %s: %s", address, error)
    sys.exit(STARTUP_FAILURE)


class PortReservation(socket.socket):
    """The supervisor's hold on the service's address: bound with ``SO_REUSEPORT``, never
    listening, so it takes no connections.

    uvicorn's supervisor pickles the sockets it gives a worker it starts (also one that
    replaces a dead worker). This socket pickles as *bind a new socket to my address*, so
    each worker listens on a socket of its own and the kernel balances between them.
    """

    @classmethod
    def reserve(cls, config: Any) -> PortReservation:
        """Reserve ``config``'s host and port (a ``uvicorn.Config``; port 0 picks one).

        A plain bind first checks that the port is free (a listener with ``SO_REUSEPORT``
        of another server would otherwise share it silently); the same address is then
        bound again with ``SO_REUSEPORT``. A port in use exits with uvicorn's start-up
        failure code, as uvicorn's own bind does.
        """
        family = socket.AF_INET6 if config.host and ":" in config.host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((config.host, config.port))
                address = probe.getsockname()
            # Without SO_REUSEADDR, so that the probe of a second server conflicts with it.
            sock = _reuse_port_socket(family, address, reuse_address=False)
        except OSError as error:
            _exit_unbound((config.host, config.port), error)
        logging.getLogger("uvicorn.error").info(
            "Listening on %s (a socket per worker, SO_REUSEPORT)", address
        )
        return cls(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=sock.detach())

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        return worker_listener, (int(self.family), self.getsockname())


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
    dies; on Linux each worker listens on a socket of its own, and every accepted
    connection has ``TCP_NODELAY`` (see this module's notes).
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
    listener = PortReservation.reserve(config) if reuse_port_supported() else tcp_listener(config)
    try:
        Multiprocess(config, sockets=[listener]).run()
    finally:
        listener.close()
