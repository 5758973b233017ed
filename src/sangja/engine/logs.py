"""`logs`: the container's log as conmon writes it (k8s-file), back into its two streams.

Each record is one line: `TIME STREAM TAG TEXT`, TIME the local time with nanoseconds and
offset (`2024-01-02T15:04:05.123456789+00:00`: always 35 bytes), STREAM `stdout` or
`stderr`, TAG `F` (the text ends a line) or `P` (a partial line: the text was written
without a newline).  stdout and stderr stay apart, as Docker keeps them; `-t` prints each
line's time as Docker does (UTC, RFC 3339 with nine digits).

conmon keeps one file: with `--log-opt max-size` alone it starts the file again when it
would grow past the size (conmon's ctr_logging.c, reopen_k8s_file: it writes a new file and
renames it over the old one).  With `max-file` above 1 the log writer (logfiles.py) keeps
the older files as `ctr.log.1` (the newest of them) ... `ctr.log.(N-1)`; they are read
oldest first, `--tail` counts from the newest back, `-f` follows across rotations.
Because conmon (or the writer, at conmon's pace) writes the files, nothing is lost when the
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
PIN_BYTES = 64 << 20  # a follower holds at most this much of files ahead of the one it reads


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


def _stdout_text(data: bytes) -> bytes | None:
    """Whole stdout records -> their text: an F record's prefix goes (one regex over the
    lot); a P record's prefix and newline go (its text runs on into the next piece's:
    conmon writes one at each 8 KiB read that ends inside a line, so they are few).
    None if a P tag shows where no record begins (then record by record)."""
    pieces, start = [], 0
    while (at := data.find(b" stdout P ", start)) >= 0:
        head, end = at - TS_LEN, data.find(b"\n", at)
        if head < start or (head > 0 and data[head - 1] != 0x0A) or end < 0:
            return None
        pieces += (_FAST.sub(b"", data[start:head]), data[at + 10 : end])
        start = end + 1
    pieces.append(_FAST.sub(b"", data[start:]))
    return b"".join(pieces)


def _records(data: bytes, opts, cache: dict, out: list) -> None:
    """Complete lines of the file -> (stream, bytes) pieces appended to `out`.  `cache`:
    what one read keeps from call to call (times already parsed, lines in pieces)."""
    want_out, want_err, stamps, since, until = opts
    if want_out and not stamps and since is None and until is None and b" stderr " not in data:
        text = _stdout_text(data)  # the common case, at C speed
        if text is not None:
            out.append((STDOUT, text))
            return
    cur_stream, cur = 0, []
    # A line conmon wrote in pieces (P records, then its F) is one line: its first piece's
    # time is its time (-t, --since, --until).  Whether each stream is in the middle of a
    # line, and whether that line is shown, go from one call to the next.
    mid = cache.setdefault("mid-line", [False, False, False])
    keep = cache.setdefault("keep-line", [True, True, True])
    for line in data.split(b"\n"):
        if len(line) < TS_LEN + 10:
            continue
        stream = STDOUT if line[TS_LEN + 1 : TS_LEN + 7] == b"stdout" else STDERR
        if (stream == STDOUT and not want_out) or (stream == STDERR and not want_err):
            continue
        ts = line[:TS_LEN]
        first = not mid[stream]
        whole = line[TS_LEN + 8 : TS_LEN + 9] == b"F"
        mid[stream] = not whole
        if first and (since is not None or until is not None):
            t = _ts_epoch(ts, cache)
            keep[stream] = not ((since is not None and t < since)
                                or (until is not None and t > until))  # fmt: skip
        if not keep[stream]:
            continue
        text = line[TS_LEN + 10 :]
        if whole:
            text += b"\n"
        if stamps and first:
            text = _ts_docker(ts, cache) + b" " + text
        if stream != cur_stream and cur:
            out.append((cur_stream, b"".join(cur)))
            cur = []
        cur_stream = stream
        cur.append(text)
    if cur:
        out.append((cur_stream, b"".join(cur)))


def _tail_offset(f, n: int) -> tuple[int, int]:
    """Where the last `n` lines of the file begin, and how many it holds (fewer than `n`:
    the whole file, from 0).  A line is its F record and the P records before it (conmon
    writes a P record when a line reaches it in two reads): Docker counts lines."""
    end = f.seek(0, os.SEEK_END)
    if n <= 0:
        return end, 0
    pos, count, carry = end, 0, b""
    while pos > 0:
        step = min(1 << 16, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + carry
        e = len(data)  # the end of the record to look at (after its newline)
        if pos > 0 and b" P " not in data:  # every record here ends a line: count them in C
            k = data.count(b"\n", 0, e - 1)  # the records that begin in this block
            if count + k < n:  # and the first one wanted is further back
                count += k
                carry = data[: data.find(b"\n", 0, e - 1) + 1 or e]
                continue
        while e > 0:
            s = data.rfind(b"\n", 0, e - 1) + 1
            if s == 0 and pos > 0:
                break  # it may begin in the block before
            if data[s + TS_LEN + 8 : s + TS_LEN + 9] != b"P":
                if count == n:  # the line before the first one wanted
                    return pos + e, n
                count += 1
            e = s
        carry = data[:e]
    return 0, count


def _open_set(path: str) -> list:
    """The log's files, oldest first (`path.N` ... `path.1`, `path`), open.  The log writer
    (logfiles.py) rotates holding an exclusive lock on `path`; a shared one here while the
    files are opened gives a set that no rotation cut in half."""
    import fcntl

    while True:
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return []
        files = [f]
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            try:
                same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # rotated between the open and the lock: again
                f.close()
                continue
            i = 1
            while True:
                try:
                    files.append(open(f"{path}.{i}", "rb"))
                except FileNotFoundError:
                    break
                i += 1
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        except BaseException:
            for x in files:
                x.close()
            raise
        return files[::-1]


def _ino(f) -> int:
    return os.fstat(f.fileno()).st_ino


def _newer(cur, path: str) -> list:
    """The files written after `cur` (None: none read yet), open, if `path` is no longer
    `cur`: rotated (the log writer), or started again (conmon at max-size); all of them
    if `cur` is gone already.  Holding them open keeps them readable when they rotate
    out: a follower that looks often loses nothing."""
    ino = _ino(cur) if cur is not None else None
    try:
        if os.stat(path).st_ino == ino:
            return []
    except FileNotFoundError:
        return []
    new = _open_set(path)
    inos = [_ino(x) for x in new]
    k = inos.index(ino) + 1 if ino in inos else 0
    for x in new[:k]:
        x.close()
    return new[k:]


def _unpin(files: list) -> None:
    """Close the oldest of the files waiting behind the one being read (files[0]) while
    they hold more than PIN_BYTES: a follower that stalls loses those lines, it does not
    keep rotated files on the disk without bound.  The newest stays."""
    sizes = [os.fstat(x.fileno()).st_size for x in files[1:-1]]
    while sizes and sum(sizes) > PIN_BYTES:
        files.pop(1).close()
        sizes.pop(0)


def read(path: str, *, stdout: bool = True, stderr: bool = True, timestamps: bool = False,
         since: float | None = None, until: float | None = None, tail: int | None = None,
         follow: bool = False, running=None, wait_change=None):  # fmt: skip
    """Yield (STDOUT|STDERR, bytes) in the order written, from the oldest file of a rotated
    log to `path`.  `follow`: go on while `running()` says the container runs, waiting
    with `wait_change(timeout)` (or polling), across rotations, and stop at the end of
    what it wrote."""
    opts = (stdout, stderr, timestamps, since, until)
    cache: dict = {}
    step = CHUNK if not follow else 1 << 16  # a follower looks for rotations more often
    files = _open_set(path)  # oldest first; the last is the one written to
    try:
        if files and tail is not None:  # the newest `tail` lines, from the newest file back
            left, first = tail, len(files) - 1
            for i in range(len(files) - 1, -1, -1):
                off, got = _tail_offset(files[i], left)
                files[i].seek(off)
                first, left = i, left - got
                if left <= 0 or tail <= 0:
                    break
            for f in files[:first]:
                f.close()
            files = files[first:]
        rest = b""
        final = False  # the container ended: one last pass over what it wrote
        while True:
            while files:  # every file to its end; all but the last are finished
                f = files[0]
                while True:
                    b = f.read(step)
                    if not b:
                        break
                    data = rest + b
                    cut = data.rfind(b"\n") + 1
                    rest = data[cut:]
                    out: list = []
                    _records(data[:cut], opts, cache, out)
                    yield from out
                    if follow:  # newer files open now: still there when we get to them
                        more = _newer(files[-1], path)
                        if more:
                            files += more
                            _unpin(files)
                if len(files) == 1:
                    break
                files.pop(0).close()
                rest = b""  # a rotated file holds whole records
            if follow:
                more = _newer(files[-1] if files else None, path)
                if more:
                    files += more
                    continue
            if not follow or final:
                if final and rest:  # a last record without its newline
                    out = []
                    _records(rest, opts, cache, out)
                    yield from out
                return
            if running is not None and not running():
                final = True
                continue
            if wait_change is not None:
                wait_change(1.0)
            else:
                time.sleep(0.1)
    finally:
        for f in files:
            f.close()
