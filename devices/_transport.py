"""Server-side byte links for the simulator: a pseudo-terminal or a TCP listener.

Both report what happened as events from :meth:`poll`: ``("connect", conn, None)``,
``("data", conn, bytes)`` and ``("disconnect", conn, None)``, where ``conn`` is a small integer
naming the connection (the pty is always connection 0). ``write(data, conn)`` (every
connection when ``conn`` is None) never raises (bytes are dropped when nobody is attached, as on a real
unplugged serial line), ``refuse(conn)`` closes one connection, ``cut()`` drops every
connection to simulate a cut cable, and ``close()`` releases everything.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import time
import tty

from devices.errors import PortError

logger = logging.getLogger("devices")


class TcpLink:
    """Listen on ``host:port`` (127.0.0.1 by default) and serve several connections.

    Which connection may drive the controller is the controller's decision (see
    :class:`devices.simulator.ControllerModel`); the link only carries bytes.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._srv.bind((host, port))
        except OSError as exc:
            self._srv.close()
            raise PortError(
                f"Cannot listen on {host}:{port} ({exc.strerror or exc}); choose another port "
                "with --tcp PORT."
            ) from exc
        self._srv.listen(8)
        self._srv.setblocking(False)
        self.host, self.port = self._srv.getsockname()[:2]
        self._clients: dict[int, socket.socket] = {}
        self._lost: list[int] = []
        self._next_conn = 1
        self.clients = 0  # connections accepted so far

    @property
    def url(self) -> str:
        """The pyserial URL a host uses to reach this link."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"socket://{host}:{self.port}"

    @property
    def connected(self) -> bool:
        """True while at least one client is attached."""
        return bool(self._clients)

    def poll(self, timeout: float) -> list[tuple[str, int, bytes | None]]:
        """Wait up to ``timeout`` s for activity; return the events."""
        events: list[tuple[str, int, bytes | None]] = [("disconnect", c, None)
                                                        for c in self._lost]
        self._lost.clear()
        socks = [self._srv, *self._clients.values()]
        try:
            ready = select.select(socks, [], [], 0.0 if events else timeout)[0]
        except (OSError, ValueError):
            return events  # a socket was closed under us; the next round uses the new set
        for s in ready:
            if s is self._srv:
                try:
                    conn_sock, addr = self._srv.accept()
                except OSError:
                    continue
                conn_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn_sock.setblocking(False)
                conn = self._next_conn
                self._next_conn += 1
                self._clients[conn] = conn_sock
                self.clients += 1
                logger.info("exo-sim: connection %d from %s", conn, addr)
                events.append(("connect", conn, None))
                continue
            conn = next((c for c, cs in self._clients.items() if cs is s), None)
            if conn is None:
                continue
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                events.append(("data", conn, data))
            else:
                logger.info("exo-sim: connection %d closed", conn)
                self._drop(conn)
                events.append(("disconnect", conn, None))
        return events

    def write(self, data: bytes, conn: int | None = None) -> None:
        """Send ``data`` to connection ``conn``, or to all when None (dropped when it is gone
        or not reading)."""
        for c in list(self._clients) if conn is None else [conn]:
            s = self._clients.get(c)
            if s is None:
                continue
            try:
                s.sendall(data)
            except (BlockingIOError, InterruptedError):
                pass  # client not reading: drop, like a full UART FIFO
            except OSError:
                self._drop(c)
                self._lost.append(c)  # reported as a disconnect by the next poll()

    def connections(self) -> list[int]:
        """The connections attached now."""
        return list(self._clients)

    def _drop(self, conn: int) -> None:
        s = self._clients.pop(conn, None)
        if s is not None:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def refuse(self, conn: int) -> None:
        """Close connection ``conn``."""
        self._drop(conn)

    def cut(self) -> list[int]:
        """Drop every connection (the listener stays open); return the ones dropped."""
        conns = list(self._clients)
        for conn in conns:
            self._drop(conn)
        return conns

    def close(self) -> None:
        """Close the connections and the listener."""
        self.cut()
        self._srv.close()


class PtyLink:
    """A pseudo-terminal; the host opens :attr:`path` (or the stable symlink ``link``).

    The host's open and close of the slave are seen on the master (``POLLHUP`` while no
    process has the slave open), so the link reports them as connection 0 connecting and
    disconnecting, and telemetry flows as soon as a host opens the port.

    Parameters
    ----------
    link : str | None
        When given, a symlink kept pointing at the current slave device, so a host can
        reconnect by the same name after :meth:`cut` (which replaces the pty, as unplugging
        a USB adapter does).
    """

    def __init__(self, link: str | None = None) -> None:
        self.link = link
        self._master: int | None = None
        self._poller: select.poll | None = None
        self.slave_path = ""
        self.clients = 0
        self._attached = False
        self._open()

    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.slave_path = os.ttyname(slave)
        os.close(slave)  # the host opens it by path; the master sees POLLHUP until it does
        os.set_blocking(master, False)
        self._master = master
        self._poller = select.poll()
        self._poller.register(master, select.POLLIN | select.POLLHUP)
        self._attached = False
        if self.link:
            tmp = f"{self.link}.tmp{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(self.slave_path, tmp)
            os.replace(tmp, self.link)

    @property
    def url(self) -> str:
        """The path a host opens (the symlink when one was asked for)."""
        return self.link or self.slave_path

    @property
    def connected(self) -> bool:
        """True while a host has the slave open."""
        return self._attached

    def poll(self, timeout: float) -> list[tuple[str, int, bytes | None]]:
        """Wait up to ``timeout`` s for activity; return the events (connection 0)."""
        if self._master is None or self._poller is None:
            time.sleep(timeout)
            return []
        try:
            ready = self._poller.poll(timeout * 1000.0)
        except (OSError, ValueError):
            return []
        events: list[tuple[str, int, bytes | None]] = []
        flags = ready[0][1] if ready else 0
        hup = bool(flags & select.POLLHUP)
        if flags & select.POLLIN:
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                data = None
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                data, hup = None, True  # EIO: no process has the slave open
            if data:
                if not self._attached:
                    self._attached = True
                    self.clients += 1
                    events.append(("connect", 0, None))
                events.append(("data", 0, data))
        if hup:
            if self._attached:
                logger.info("exo-sim: pty host hung up")
                self._attached = False
                events.append(("disconnect", 0, None))
            time.sleep(min(timeout, 0.005))  # POLLHUP stays set while nobody listens
        elif not self._attached:
            self._attached = True
            self.clients += 1
            events.append(("connect", 0, None))
        return events

    def write(self, data: bytes, conn: int | None = None) -> None:
        """Write to the master (dropped while no host has the slave open or it is full)."""
        if self._master is None or not self._attached:
            return
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    def connections(self) -> list[int]:
        """``[0]`` while a host has the port open, else ``[]``."""
        return [0] if self._attached else []

    def refuse(self, conn: int) -> None:
        """A serial line cannot refuse its one host: nothing to do."""

    def cut(self) -> list[int]:
        """Close this pty (the host sees a hang-up) and open a fresh one."""
        was = self.connections()
        self._close_master()
        self._open()
        return was

    def _close_master(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None
            self._poller = None

    def close(self) -> None:
        """Close the pty and remove the symlink."""
        self._close_master()
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)
