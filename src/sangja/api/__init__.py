"""The Docker Engine API (v1.41) on a unix socket: `sangja system service`.

The engine's second face, beside the CLI: request and response shapes only, every call
the same engine/ call the CLI makes.  aiohttp serves HTTP (chunked streams, and the
connection hijacking that attach and exec upgrade to); the engine's calls block, so each
runs on a worker thread with engine objects of that thread's own (SQLite connections are
per thread).  Loaded only by `system service`.

    server.py      the service: socket (or systemd's), routes with and without /v1.xx,
                   errors as {"message"}, idle exit
    streams.py     hijacked connections, Docker's 8-byte stream frames, JSON streams
    system.py      _ping, version, info, df, events, auth
    containers.py  /containers/...
    execs.py       /containers/{id}/exec, /exec/...
    images.py      /images/...
"""
