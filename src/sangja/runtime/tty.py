"""A foreground terminal for `run` and `exec -t` without --console-socket.

The process sends its pty master over one end of a socketpair (the console socket protocol,
without a path on disk); we put our own terminal in raw mode, copy the window size to the pty
and again on every SIGWINCH, copy bytes both ways until the process exits, and restore the
terminal as it was.
"""

import _signal as signal  # the C module: `signal` pulls in enum
import array
import fcntl
import os
import select
import socket
import sys
import termios


def receive_fd(sock):
    """One SCM_RIGHTS fd (and the pty name, the payload) from a connected console socket."""
    fds = array.array("i")
    msg, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not fds:
        raise OSError("console socket: no pty master received")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0], msg.decode(errors="replace")


class ConsoleRelay:
    def __init__(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = ours
        # The end the process gets (plan.console_fd); ours to close once it has it.
        self.child_fd = theirs.detach()
        self.master = -1

    def close_child_end(self):
        if self.child_fd >= 0:
            os.close(self.child_fd)
            self.child_fd = -1

    def accept(self):
        """Receive the pty master (the process sent it before it said READY)."""
        self.close_child_end()  # then a process that died without sending gives EOF
        self.master, _ = receive_fd(self._sock)
        self._sock.close()

    def close(self):
        self.close_child_end()
        self._sock.close()
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
        """Copy stdin -> pty and pty -> stdout until `pid` (our child) exits; its status."""
        stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
        saved = old_winch = None
        if os.isatty(stdin):
            import tty

            saved = termios.tcgetattr(stdin)
            tty.setraw(stdin)
            self._copy_winsize()
            old_winch = signal.signal(signal.SIGWINCH, self._copy_winsize)
        pidfd = os.pidfd_open(pid)
        try:
            readers = [self.master, stdin, pidfd]
            while True:
                ready, _, _ = select.select(readers, [], [])
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
            if old_winch is not None:
                signal.signal(signal.SIGWINCH, old_winch)
