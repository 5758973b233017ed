"""`logs`: the container's log as conmon writes it (k8s-file), back into its two streams.

Each record is one line: `TIME STREAM TAG TEXT`, TIME the local time with nanoseconds and
offset (`2024-01-02T15:04:05.123456789+00:00`: always 35 bytes), STREAM `stdout` or
`stderr`, TAG `F` (the text ends a line) or `P` (a partial line: the text was written
without a newline).  stdout and stderr stay apart, as Docker keeps them; `-t` prints each
line's time as Docker does (UTC, RFC 3339 with nine digits).

conmon keeps one file: with `--log-opt max-size` it starts the file again when it would
grow past the size (conmon's ctr_logging.c, reopen_k8s_file: it writes a new file and
renames it over the old one), so `max-file` above 1 cannot be honoured and is refused at
create (createconfig.py).  Because conmon writes the file itself, nothing is lost when the
container writes faster than anyone reads.
"""

from __future__ import annotations

import os
import re
import time

STDOUT, STDERR = 1, 2
TS_LEN = 35
_FAST = re.compile(rb"(?m)^.{35} stdout F ")
CHUNK = 1 << 20


def _ts_epoch(ts: bytes, cache: dict) -> float:
    """'2024-01-02T15:04:05.123456789+00:00' -> Unix seconds."""
    key = ts[:19] + ts[29:]
    base = cache.get(key)
    if base is None:
        import datetime

        d = datetime.datetime.fromisoformat((ts[:19] + ts[29:]).decode())
        base = cache[key] = d.timestamp()
    return base + int(ts[20:29]) / 1e9


def _ts_docker(ts: bytes, cache: dict) -> bytes:
    """The record's time as Docker prints it: UTC, nine digits, 'Z'."""
    if ts.endswith(b"+00:00"):
        return ts[:29] + b"Z"
    e = _ts_epoch(ts, cache)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(e))) + ts[19:29].decode()
            + "Z").encode()  # fmt: skip


def _records(data: bytes, opts, cache: dict, out: list) -> None:
    """Complete lines of the file -> (stream, bytes) pieces appended to `out`."""
    want_out, want_err, stamps, since, until = opts
    if (want_out and not stamps and since is None and until is None
            and b" stderr " not in data and b" stdout P " not in data):  # fmt: skip
        out.append((STDOUT, _FAST.sub(b"", data)))  # the common case, at C speed
        return
    cur_stream, cur = 0, []
    for line in data.split(b"\n"):
        if len(line) < TS_LEN + 10:
            continue
        stream = STDOUT if line[TS_LEN + 1 : TS_LEN + 7] == b"stdout" else STDERR
        if (stream == STDOUT and not want_out) or (stream == STDERR and not want_err):
            continue
        ts = line[:TS_LEN]
        if since is not None or until is not None:
            t = _ts_epoch(ts, cache)
            if (since is not None and t < since) or (until is not None and t > until):
                continue
        text = line[TS_LEN + 10 :]
        if line[TS_LEN + 8 : TS_LEN + 9] == b"F":
            text += b"\n"
        if stamps:
            text = _ts_docker(ts, cache) + b" " + text
        if stream != cur_stream and cur:
            out.append((cur_stream, b"".join(cur)))
            cur = []
        cur_stream = stream
        cur.append(text)
    if cur:
        out.append((cur_stream, b"".join(cur)))


def _tail_offset(f, n: int) -> int:
    """Where the last `n` records of the file begin."""
    end = f.seek(0, os.SEEK_END)
    if n <= 0:
        return end
    pos, count = end, 0
    block = 1 << 16
    last = b""
    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + last
        # the final newline of the file does not start a record
        nl = buf.count(b"\n") - (1 if pos + len(buf) == end and buf.endswith(b"\n") else 0)
        if count + nl >= n:
            idx = len(buf) - (1 if pos + len(buf) == end and buf.endswith(b"\n") else 0)
            for _ in range(n - count):
                idx = buf.rindex(b"\n", 0, idx)
            return pos + idx + 1
        count += nl
        last = b""
    return 0


def read(path: str, *, stdout: bool = True, stderr: bool = True, timestamps: bool = False,
         since: float | None = None, until: float | None = None, tail: int | None = None,
         follow: bool = False, running=None, wait_change=None):  # fmt: skip
    """Yield (STDOUT|STDERR, bytes) in the order written.  `follow`: go on while
    `running()` says the container runs, waiting with `wait_change(timeout)` (or polling),
    and stop at the end of what it wrote."""
    opts = (stdout, stderr, timestamps, since, until)
    cache: dict = {}
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        f = None
    ino = os.fstat(f.fileno()).st_ino if f else None
    try:
        if f is not None and tail is not None:
            f.seek(_tail_offset(f, tail))
        rest = b""
        while True:
            if f is not None:
                while True:
                    b = f.read(CHUNK)
                    if not b:
                        break
                    data = rest + b
                    cut = data.rfind(b"\n") + 1
                    rest = data[cut:]
                    out: list = []
                    _records(data[:cut], opts, cache, out)
                    yield from out
            if not follow:
                return
            # conmon may have started the file again (max-size): finish the old, open the new
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_ino != ino:
                if f is not None:
                    f.close()
                f = open(path, "rb")
                ino = os.fstat(f.fileno()).st_ino
                rest = b""
                continue
            if running is not None and not running():
                if f is not None:  # what it wrote last, then the end
                    b = f.read()
                    if b:
                        out = []
                        _records(rest + b, opts, cache, out)
                        yield from out
                return
            if wait_change is not None:
                wait_change(1.0)
            else:
                time.sleep(0.1)
    finally:
        if f is not None:
            f.close()
