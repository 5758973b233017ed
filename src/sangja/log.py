"""--log / --log-format: runc's log lines, which containerd's shim reads the last error from."""

import os
import sys
import time


def now_rfc3339():
    """UTC, with nanoseconds: the `created` of state and the `time` of log lines."""
    ns = time.time_ns()
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}Z"


class Log:
    LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}

    def __init__(self, path=None, fmt="text", debug=False):
        if fmt not in ("text", "json"):
            raise ValueError(f"invalid log format {fmt!r} (want text or json)")
        self.path = path
        self.fmt = fmt
        self.min = 0 if debug else 1
        self._fd = -1

    def _open(self):
        if self._fd < 0 and self.path:
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
            )
        return self._fd

    def write(self, level, msg):
        if self.LEVELS[level] < self.min:
            return
        if self.fmt == "json":
            from sangja.jsonio import dumps

            line = dumps({"level": level, "msg": msg, "time": now_rfc3339()})
        else:
            line = f'time="{now_rfc3339()}" level={level} msg="{_escape(msg)}"'
        fd = self._open()
        if fd >= 0:
            os.write(fd, (line + "\n").encode())
        elif level != "error":  # errors reach stderr once, from the CLI
            sys.stderr.write(line + "\n")

    def debug(self, msg):
        self.write("debug", msg)

    def info(self, msg):
        self.write("info", msg)

    def warn(self, msg):
        self.write("warning", msg)

    def error(self, msg):
        self.write("error", msg)

    def fileno(self):
        """An fd the init can write a late error to (-1: its stderr)."""
        return self._open() if self.path else -1


def _escape(s):
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
