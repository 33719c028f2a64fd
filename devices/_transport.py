"""Server-side byte links for the simulator: a pseudo-terminal or a TCP listener.

Both keep at most one client. ``fds()`` gives the descriptors to ``select`` on, ``on_readable``
returns received bytes (or None), ``write`` never raises (bytes are dropped when no client is
attached, as on a real unplugged serial line), ``cut()`` drops the current client to simulate a
cut cable, and ``close()`` releases everything.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import time
import tty

logger = logging.getLogger("devices")


class TcpLink:
    """Listen on ``host:port`` (127.0.0.1 by default) and serve one client at a time.

    A new client replaces the previous one (the newest connection wins, so a host that
    reconnects after a half-open connection is served at once).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._srv.bind((host, port))
        except OSError as exc:
            self._srv.close()
            from devices.errors import PortError

            raise PortError(
                f"Cannot listen on {host}:{port} ({exc.strerror or exc}); choose another port "
                "with --tcp PORT."
            ) from exc
        self._srv.listen(2)
        self._srv.setblocking(False)
        self.host, self.port = self._srv.getsockname()[:2]
        self._client: socket.socket | None = None
        self.clients = 0

    @property
    def url(self) -> str:
        """The pyserial URL a host uses to reach this link."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"socket://{host}:{self.port}"

    @property
    def connected(self) -> bool:
        """True while a client is attached."""
        return self._client is not None

    def fds(self) -> list:
        """Descriptors to select on."""
        return [self._srv] + ([self._client] if self._client is not None else [])

    def on_readable(self, fd) -> bytes | None:
        """Handle readiness of ``fd``; return received bytes or None."""
        if fd is self._srv:
            try:
                conn, addr = self._srv.accept()
            except OSError:
                return None
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.setblocking(False)
            if self._client is not None:
                logger.info("exo-sim: new client %s replaces the previous one", addr)
                self._drop()
            else:
                logger.info("exo-sim: client connected from %s", addr)
            self._client = conn
            self.clients += 1
            return None
        try:
            data = self._client.recv(4096) if self._client is not None else b""
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:
            logger.info("exo-sim: client disconnected")
            self._drop()
            return None
        return data

    def write(self, data: bytes) -> None:
        """Send ``data`` to the client, if any (dropped otherwise)."""
        if self._client is None:
            return
        try:
            self._client.sendall(data)
        except (BlockingIOError, InterruptedError):
            pass  # client not reading: drop, like a full UART FIFO
        except OSError:
            self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.shutdown(socket.SHUT_RDWR)
            self._client.close()
            self._client = None

    def cut(self) -> None:
        """Drop the current client (the listener stays open)."""
        self._drop()

    def close(self) -> None:
        """Close the client and the listener."""
        self._drop()
        self._srv.close()


class PtyLink:
    """A pseudo-terminal; the host opens :attr:`path` (or the stable symlink ``link``).

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
        self.slave_path = ""
        self._idle_until = 0.0
        self.clients = 0
        self._attached = False
        self._open()

    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.slave_path = os.ttyname(slave)
        os.close(slave)  # the host opens it by path; EIO on the master until it does
        os.set_blocking(master, False)
        self._master = master
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
        """True once the host has opened the slave and it did not hang up since."""
        return self._attached

    def fds(self) -> list:
        """Descriptors to select on (none for a short while after a hang-up, to avoid spinning)."""
        if self._master is None or time.monotonic() < self._idle_until:
            return []
        return [self._master]

    def on_readable(self, fd) -> bytes | None:
        """Read from the master; EIO means no host has the slave open."""
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno == errno.EIO:
                if self._attached:
                    logger.info("exo-sim: pty client hung up")
                self._attached = False
                self._idle_until = time.monotonic() + 0.02
                return None
            raise
        if not data:
            self._idle_until = time.monotonic() + 0.02
            return None
        if not self._attached:
            self.clients += 1
            self._attached = True
        return data

    def write(self, data: bytes) -> None:
        """Write to the master (dropped while no host has the slave open or it is full)."""
        if self._master is None or not self._attached:
            return
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    def cut(self) -> None:
        """Close this pty (the host sees a hang-up) and open a fresh one."""
        self._close_master()
        self._open()

    def _close_master(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None

    def close(self) -> None:
        """Close the pty and remove the symlink."""
        self._close_master()
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)
