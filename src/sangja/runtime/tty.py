"""A foreground terminal for `run` without --console-socket: receive the pty master the
init sends, put our terminal in raw mode, copy bytes both ways and the window size."""

import array
import fcntl
import os
import select
import signal
import socket
import sys
import tempfile
import termios
import tty as _tty


class ConsoleRelay:
    def __init__(self):
        self._dir = tempfile.mkdtemp(prefix="sangja-tty-")
        self.socket_path = os.path.join(self._dir, "console.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(1)
        self.master = -1

    def accept(self):
        conn, _ = self._listener.accept()
        with conn:
            fds = array.array("i")
            _, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        if not fds:
            raise OSError("console socket: no pty master received")
        self.master = fds[0]
        self._cleanup_listener()

    def _cleanup_listener(self):
        self._listener.close()
        try:
            os.unlink(self.socket_path)
            os.rmdir(self._dir)
        except OSError:
            pass

    def close(self):
        self._cleanup_listener()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def _copy_winsize(self, *_):
        try:
            ws = fcntl.ioctl(sys.stdin.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, ws)
        except OSError:
            pass

    def relay_until_exit(self, pid):
        """Copy stdin -> pty and pty -> stdout until the init exits; its wait status."""
        stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
        saved = None
        if os.isatty(stdin):
            saved = termios.tcgetattr(stdin)
            _tty.setraw(stdin)
            self._copy_winsize()
            signal.signal(signal.SIGWINCH, self._copy_winsize)
        pidfd = os.pidfd_open(pid)
        try:
            readers = [self.master, stdin, pidfd]
            while True:
                try:
                    ready, _, _ = select.select(readers, [], [])
                except InterruptedError:
                    continue
                if self.master in ready:
                    try:
                        data = os.read(self.master, 65536)
                    except OSError:
                        data = b""
                    if data:
                        os.write(stdout, data)
                    else:
                        readers.remove(self.master)
                if stdin in ready:
                    data = os.read(stdin, 65536)
                    if data:
                        os.write(self.master, data)
                    else:
                        readers.remove(stdin)
                        os.write(self.master, b"\x04")  # EOF to the program, as a terminal does
                if pidfd in ready:
                    break
            # Drain what the program printed last.
            while True:
                r, _, _ = select.select([self.master], [], [], 0)
                if not r:
                    break
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    break
                if not data:
                    break
                os.write(stdout, data)
            _, status = os.waitpid(pid, 0)
            return status
        finally:
            os.close(pidfd)
            self.close()
            if saved is not None:
                termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
