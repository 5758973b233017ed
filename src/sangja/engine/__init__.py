"""The engine: Docker's objects (containers, images; networks and volumes to come) as a
Python library.  Both faces call it the same way: the CLI (sangja.cli) and the Docker
Engine API service (issue 18).  It is imported only by the engine's commands.

    from sangja.engine.containers import Containers   # create/start/stop/.../inspect/logs
    from sangja.engine.images import Images           # rm, prune, what run pulls

Calls take and return the Docker Engine API's shapes (v1.41): the ContainerCreate body,
ContainerInspect, the /containers/json entries, ContainerStats ...; errors are
engine.errors classes carrying the CLI's exit code and the API's HTTP status.
"""
