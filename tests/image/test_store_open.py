"""Many processes opening one new store at once (a `run` and the `ps` that polls it on a
fresh root): none may be told "database is locked"."""

import os
import subprocess
import sys

import sangja

SRC = os.path.dirname(os.path.dirname(os.path.abspath(sangja.__file__)))

# Each process waits for the go file, then opens the store and reads and writes it.
WORKER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from sangja.image.store import Store
while not os.path.exists(sys.argv[3]):
    time.sleep(0.0005)
s = Store(sys.argv[2])
try:
    s.db.execute("SELECT count(*) FROM images").fetchone()
    s.tag("sha256:" + "0" * 64, "x/%d:latest" % os.getpid())
except Exception as e:
    print(e)
"""


def test_processes_opening_a_new_store_at_once(tmp_path):
    failures = []
    for round_ in range(15):
        root, go = tmp_path / f"r{round_}", tmp_path / f"go{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, SRC, str(root), str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(6)]  # fmt: skip
        go.touch()
        failures += [p.communicate(timeout=120)[0] for p in procs]
    assert [f for f in failures if f] == []
