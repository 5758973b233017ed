"""Pull and push progress, as Docker shows it: a line per layer, and a total.

On a terminal the lines are redrawn in place (ANSI: cursor up, clear line) at most ten
times a second, with a bar and the bytes for each layer that is downloading, and a last
line for all of them with the speed.  Elsewhere (a pipe, a log) each layer's status is
printed once per change, with no bars; the total comes once at the end.
Written by hand rather than with `rich`: it is ~100 lines, and the CLI stays free of a
dependency that costs more to import than a whole runtime verb.
"""

from __future__ import annotations

import _thread  # threading's Lock is this one (threading itself pulls in weakref and more)
import sys
import time

BAR = 50


def human(n: float) -> str:
    """Docker's units: 1000-based, 3 significant digits ('51.1MB', '762B')."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}B"


class Progress:
    def __init__(self, stream=None, *, tty: bool | None = None, quiet: bool = False):
        self.out = stream or sys.stdout
        self.tty = (self.out.isatty() if tty is None else tty) and not quiet
        self.quiet = quiet
        self.rows: dict[str, list] = {}  # id -> [status, done, total]
        self.order: list[str] = []
        self.lock = _thread.allocate_lock()
        self.drawn = 0  # lines of the live block on screen
        self.last_draw = 0.0
        self.started = time.monotonic()

    # ---- plain messages ---------------------------------------------------------------
    def line(self, text: str) -> None:
        if self.quiet:
            return
        with self.lock:
            self._erase()
            self.out.write(text + "\n")
            self.out.flush()
            self._draw(force=True)

    # ---- layer rows -------------------------------------------------------------------
    def add(self, rid: str, status: str, total: int = 0) -> None:
        with self.lock:
            if rid not in self.rows:
                self.order.append(rid)
            self.rows[rid] = [status, 0, total]
            self._changed(rid)

    def status(self, rid: str, status: str) -> None:
        with self.lock:
            row = self.rows.setdefault(rid, [status, 0, 0])
            if rid not in self.order:
                self.order.append(rid)
            if row[0] == status:
                return
            row[0] = status
            self._changed(rid)

    def bytes(self, rid: str, done: int, total: int, verb: str = "Downloading") -> None:
        with self.lock:
            row = self.rows[rid]
            row[1], row[2] = done, total
            if row[0] != verb:
                row[0] = verb
                self._changed(rid)
            elif self.tty:
                self._draw()

    def finish(self) -> None:
        with self.lock:
            if self.tty:
                self._draw(force=True)
            self.drawn = 0

    # ---- drawing ----------------------------------------------------------------------
    def _changed(self, rid: str) -> None:
        if self.quiet:
            return
        if self.tty:
            self._draw(force=True)
        else:
            self.out.write(f"{rid}: {self.rows[rid][0]}\n")
            self.out.flush()

    def _erase(self) -> None:
        if self.tty and self.drawn:
            self.out.write(f"\x1b[{self.drawn}A\x1b[J")
            self.drawn = 0

    def _draw(self, force: bool = False) -> None:
        if not self.tty or not self.order:
            return
        now = time.monotonic()
        if not force and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        lines = [self._row(rid) for rid in self.order]
        lines.append(self._total(now))
        self._erase()
        self.out.write("".join(f"\x1b[2K{text}\n" for text in lines))
        self.out.flush()
        self.drawn = len(lines)

    def _row(self, rid: str) -> str:
        status, done, total = self.rows[rid]
        if status in ("Downloading", "Pushing") and total:
            return f"{rid}: {status} {_bar(done, total)} {human(done):>7}/{human(total)}"
        return f"{rid}: {status}"

    def _total(self, now: float) -> str:
        done = sum(r[1] for r in self.rows.values())
        total = sum(r[2] for r in self.rows.values())
        secs = max(now - self.started, 1e-3)
        return f"Total: {_bar(done, total)} {human(done):>7}/{human(total)}  {human(done / secs)}/s"

    def summary(self) -> str:
        done = sum(r[1] for r in self.rows.values())
        return f"{human(done)} in {time.monotonic() - self.started:.1f}s"


def _bar(done: int, total: int) -> str:
    if not total:
        return "[" + " " * BAR + "]"
    fill = min(BAR, int(BAR * done / total))
    head = ">" if fill < BAR else ""
    return "[" + "=" * fill + head + " " * (BAR - fill - len(head)) + "]"


class JSONProgress:
    """The same reports as Docker's JSON messages (the Engine API's streams of pull, push,
    load, build): each change becomes a dict handed to `emit` ({"status", "id",
    "progressDetail", "progress"}), which the docker CLI draws as it draws dockerd's.
    Called from several threads (pull and push work in pools)."""

    def __init__(self, emit):
        self.emit = emit
        self.lock = _thread.allocate_lock()
        self.rows: dict[str, list] = {}  # id -> [status, done, total, last sent]
        self.started = time.monotonic()
        self.quiet = False

    def line(self, text: str) -> None:
        self.emit({"status": text})

    def add(self, rid: str, status: str, total: int = 0) -> None:
        with self.lock:
            self.rows[rid] = [status, 0, total, 0.0]
        self.emit({"status": status, "progressDetail": {}, "id": rid})

    def status(self, rid: str, status: str) -> None:
        with self.lock:
            row = self.rows.setdefault(rid, [None, 0, 0, 0.0])
            if row[0] == status:
                return
            row[0] = status
        self.emit({"status": status, "progressDetail": {}, "id": rid})

    def bytes(self, rid: str, done: int, total: int, verb: str = "Downloading") -> None:
        now = time.monotonic()
        with self.lock:
            row = self.rows.setdefault(rid, [verb, 0, total, 0.0])
            row[1], row[2] = done, total
            if row[0] == verb and now - row[3] < 0.1 and done < total:
                return  # at most ten a second per row, as dockerd sends them
            row[0], row[3] = verb, now
        bar = _bar(done, total) if total else ""
        text = f"{bar} {human(done):>7}/{human(total)}" if total else human(done)
        self.emit({"status": verb, "progressDetail": {"current": done, "total": total},
                   "progress": text, "id": rid})  # fmt: skip

    def finish(self) -> None:
        pass

    def summary(self) -> str:
        done = sum(r[1] for r in self.rows.values())
        return f"{human(done)} in {time.monotonic() - self.started:.1f}s"
