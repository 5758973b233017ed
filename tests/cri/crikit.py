"""Kubernetes' node interface over sangja, for tests/cri and bench/: Debian's containerd with
its CRI plugin, private roots, sockets and CNI config, in a network namespace of the test's
own, and a small CRI v1 client of ours (grpcio; the messages are tests/cri/cri.proto).

containerd gets two runtime handlers, both `io.containerd.runc.v2` (the runc shim) and
`SystemdCgroup = false`: `sangja` (BinaryName = the sangja under test) and `runc`
(BinaryName = Debian's runc), so every scenario can run on both in the same run.  Pods get
their network from Debian's CNI plugins (bridge + host-local; containerd adds loopback),
inside the private namespace.  What containerd 1.6 writes outside its root and state dirs
(`/run/containerd/s` for shim sockets, `/var/lib/cni` for libcni's result cache) is removed
at the end when it did not exist before and is empty.
"""

import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)

import rtkit  # noqa: E402
from daemonkit import (  # noqa: E402
    HostPaths,
    cgroup_procs,
    cgroup_tree,
    descendants,
    kill_pids,
    mounts_under,
    procs_with,
    remove_cgroup_tree,
    remove_files,
    shim_sockets,
    unmount_under,
    unmounted_v1_controllers,
)

RUNC = "/usr/sbin/runc"
CNI_BIN = "/usr/lib/cni"
CATATONIT = "/usr/bin/catatonit"
PAUSE_IMAGE = "localhost/sjpause:1"
STREAM_PORT = 10010  # containerd's streaming server (Exec), inside the private netns
POD_SUBNET = "10.234.0.0/24"  # pod addresses, inside the private netns only
BRIDGE = "sjcri0"
HANDLERS = ("sangja", "runc")
NS = "k8s.io"  # containerd's namespace for everything the CRI plugin makes
TIMEOUT = 120  # a hang guard for each call, never an assertion about speed


def sangja_binary():
    return os.environ.get("SANGJA") or shutil.which("sangja")


def missing():
    """Why the CRI tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (containerd, mounts, cgroups, network namespaces)"
    for tool in ("containerd", "containerd-shim-runc-v2", "ctr"):
        if not shutil.which(tool):
            return f"{tool} is not installed (Debian's containerd; make test installs it)"
    for plugin in ("bridge", "host-local", "loopback"):
        if not os.access(os.path.join(CNI_BIN, plugin), os.X_OK):
            return f"{CNI_BIN}/{plugin} is missing (containernetworking-plugins)"
    if not os.access(RUNC, os.X_OK):
        return f"{RUNC} is missing (Debian's runc, the reference handler)"
    if not os.access(CATATONIT, os.X_OK):
        return f"{CATATONIT} is missing (catatonit: the pause container's program)"
    for mod in ("grpc", "grpc_tools", "websocket"):
        try:
            __import__(mod)
        except ImportError:
            return f"python module {mod} is missing (pip: grpcio, grpcio-tools, websocket-client)"
    return None


# ---- the API: cri.proto compiled at test time ----------------------------------------------


def load_api(outdir):
    """Compile cri.proto with grpcio-tools' protoc into outdir and import it.

    Compiled here rather than checked in: generated code pins the protobuf runtime it was
    made for (it refuses an older one), and the .proto stays the one readable source."""
    import grpc_tools
    from grpc_tools import protoc

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main(
        [
            "protoc",
            f"-I{HERE}",
            f"-I{include}",
            f"--python_out={outdir}",
            f"--grpc_python_out={outdir}",
            "cri.proto",
        ]
    )
    if rc != 0:
        raise RuntimeError(f"protoc cri.proto failed (rc={rc})")
    sys.path.insert(0, outdir)
    try:
        import cri_pb2
        import cri_pb2_grpc
    finally:
        sys.path.remove(outdir)
    return cri_pb2, cri_pb2_grpc


# ---- the pause image -----------------------------------------------------------------------


def _tar_add(tar, name, data, mode):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), mode, 1700000000
    tar.addfile(ti, io.BytesIO(data))


def build_pause_image(path, ref=PAUSE_IMAGE):
    """A docker-archive (what `ctr image import` reads) of a one-layer image whose only file
    is Debian's static catatonit, run as `catatonit -P`: pause mode, it only reaps
    children and waits for a signal, as Kubernetes' pause does."""
    with open(CATATONIT, "rb") as f:
        binary = f.read()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        _tar_add(t, "catatonit", binary, 0o755)
    layer = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/catatonit", "-P"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id[7:] + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}])
    with tarfile.open(path, "w") as t:
        _tar_add(t, config_name, config, 0o644)
        _tar_add(t, layer_name, layer, 0o644)
        _tar_add(t, "manifest.json", manifest.encode(), 0o644)
    return path


# ---- containerd with the CRI plugin --------------------------------------------------------


class Containerd:
    """containerd with the CRI plugin, private everything, in `netns` (a registrykit.NetNS:
    the daemon, the shims, CNI's bridge and the streaming server live in it)."""

    def __init__(self, netns, sangja=None, registry=None, mount_cgroups=False):
        self.netns = netns
        # mount_cgroups: run containerd (so its shims and the runtimes) in a mount namespace
        # of its own where the v1 hierarchies this sandbox leaves unmounted are mounted (the
        # runc shim's stats need every one; see test_container_stats)
        self.mount_cgroups = mount_cgroups
        self.sangja = sangja or sangja_binary()
        self.registry = registry  # "127.0.0.1:5000": served over plain HTTP in netns
        # short: unix socket paths must stay under 108 bytes
        self.w = tempfile.mkdtemp(prefix="sjcri-", dir="/tmp")
        os.chmod(self.w, 0o711)
        self.tag = "sjcri-" + secrets.token_hex(4)
        self.cgroup = "/" + self.tag  # the pods' cgroup parents go below it
        self.sock = os.path.join(self.w, "c.sock")
        self.state = os.path.join(self.w, "state")
        self.root = os.path.join(self.w, "root")
        self.logs = os.path.join(self.w, "logs")
        self.ipam = os.path.join(self.w, "ipam")
        self.proc = None
        self.mounts0 = set()
        # containerd 1.6 and libcni write there whatever the config says
        self.host_paths = HostPaths(
            "/run/containerd/s",
            "/run/containerd",
            "/var/lib/cni/results",
            "/var/lib/cni/cache",
            "/var/lib/cni",
        )
        self.api = None

    def runtime_root(self, handler):
        """The runtime's --root for containerd's namespace (what the shim passes)."""
        return os.path.join(self.w, "rt", handler, NS)

    def binary(self, handler):
        return {"sangja": self.sangja, "runc": RUNC}[handler]

    def config(self):
        w = self.w
        runtimes = ""
        for h in HANDLERS:
            runtimes += f"""
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{h}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{h}.options]
        BinaryName = "{self.binary(h)}"
        Root = "{os.path.dirname(self.runtime_root(h))}"
        SystemdCgroup = false
"""
        # restrict_oom_score_adj: the sandbox has no CAP_SYS_RESOURCE, so no runtime may
        # lower a process's oom_score_adj below containerd's (the pause container's -998).
        return f"""version = 2
root = "{self.root}"
state = "{self.state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = "{w}/debug.sock"
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{w}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{STREAM_PORT}"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
{runtimes}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{w}/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{w}/certs.d"
"""

    def cni_config(self):
        return {
            "cniVersion": "1.0.0",
            "name": self.tag,  # libcni names its cache files after it: ours alone
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_SUBNET}]],
                        "dataDir": self.ipam,
                    },
                }
            ],
        }

    def start(self, pause_tar):
        os.makedirs(os.path.join(self.w, "net.d"))
        os.makedirs(self.logs)
        with open(os.path.join(self.w, "config.toml"), "w") as f:
            f.write(self.config())
        with open(os.path.join(self.w, "net.d", "10-sjcri.conflist"), "w") as f:
            json.dump(self.cni_config(), f)
        if self.registry:
            d = os.path.join(self.w, "certs.d", self.registry)
            os.makedirs(d)
            with open(os.path.join(d, "hosts.toml"), "w") as f:
                f.write(
                    f'server = "http://{self.registry}"\n[host."http://{self.registry}"]\n'
                    '  capabilities = ["pull", "resolve"]\n'
                )
        log = open(os.path.join(self.w, "containerd.log"), "wb")
        with self.netns.entered():
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.close()
        end = time.monotonic() + 60  # a hang guard
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"containerd did not start: {self.log_tail()}")
            time.sleep(0.05)
        self.ctr("image", "import", pause_tar)
        self.mounts0 = self.mounts()

    def argv(self):
        argv = ["containerd", "--config", os.path.join(self.w, "config.toml")]
        if not self.mount_cgroups:
            return argv
        # slave: the host's mounts still reach containerd, none of its own reach the host
        script = (
            'for c in "$@"; do mkdir -p "$W/cg/$c" && mount -t cgroup -o "$c" cgroup "$W/cg/$c"'
            ' || exit 1; done; exec "$0" --config "$W/config.toml"'
        )
        return ["unshare", "--mount", "--propagation", "slave", "env", f"W={self.w}", "sh",
                "-c", script, "containerd", *unmounted_v1_controllers()]  # fmt: skip

    def mounts(self):
        """Mount points below the work dir, as containerd (and so the runtimes) sees them."""
        if self.mount_cgroups and self.proc is not None and self.proc.poll() is None:
            return set(mounts_under(self.w, self.proc.pid))
        return set(mounts_under(self.w))

    def ctr(self, *args):
        r = subprocess.run(
            ["ctr", "-a", self.sock, "-n", NS, *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if r.returncode:
            raise RuntimeError(f"ctr {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def log_tail(self, n=15):
        try:
            with open(os.path.join(self.w, "containerd.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- what is left ---------------------------------------------------------------------

    def our_processes(self):
        """Shims of this containerd and every process below them or in our cgroups."""
        shims = [p for p, _ in procs_with(f"-address {self.sock} ")]
        return (descendants(shims) | cgroup_procs(self.cgroup)) - {os.getpid()}

    def leftovers(self, pids=()):
        """What is left once every pod was removed: a list of problems."""
        probs = []
        procs = {p for p in self.our_processes() | set(pids) if rtkit.alive(p)}
        if procs:
            probs.append(f"processes: {sorted(procs)}")
        for h in HANDLERS:
            d = self.runtime_root(h)
            if rtkit.runtime_ids(d):
                probs.append(f"{h} state in its --root: {rtkit.runtime_ids(d)}")
        # the pods' cgroup parents (/<tag>/<pod>) are the caller's, as kubelet's are;
        # every container's and sandbox's cgroup below them must be gone
        leaves = [c for c in cgroup_tree(self.cgroup) if "/" in c]
        if leaves:
            probs.append(f"cgroups: {sorted(leaves)[:6]}")
        mounts = sorted(self.mounts() - self.mounts0)
        if mounts:
            probs.append(f"mounts: {mounts[:6]}")
        nsdir = os.path.join(self.state, "io.containerd.grpc.v1.cri", "netns")
        if os.path.isdir(nsdir) and os.listdir(nsdir):
            probs.append(f"network namespaces: {os.listdir(nsdir)}")
        links = self.links()
        if set(links) - {"lo", BRIDGE}:
            probs.append(f"interfaces left in the test's netns: {links}")
        held = [f for _, _, fs in os.walk(self.ipam) for f in fs if f[0].isdigit()]
        if held:
            probs.append(f"pod addresses still allocated: {held}")
        return probs

    def links(self):
        with self.netns.entered():
            out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    # -- teardown -------------------------------------------------------------------------

    def stop(self):
        """Stop containerd and remove whatever it left (also after a failure)."""
        shims = [p for p, _ in procs_with(f"-address {self.sock} ")]
        sockets = shim_sockets(self.sock)
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        kill_pids(descendants(shims) | cgroup_procs(self.cgroup))
        time.sleep(0.2)
        for h in HANDLERS:
            d = self.runtime_root(h)
            for cid in rtkit.runtime_ids(d):
                subprocess.run(
                    [self.binary(h), "--root", d, "delete", "--force", cid],
                    capture_output=True,
                    timeout=TIMEOUT,
                )
        unmount_under(self.w)
        remove_cgroup_tree(self.cgroup)
        # libcni's cache of pods whose network was never torn down (containerd killed):
        # <network>-<id>-eth0, and the loopback's cni-loopback-<id>-lo
        results = "/var/lib/cni/results"
        for f in os.listdir(results) if os.path.isdir(results) else ():
            if f.startswith(self.tag + "-"):
                sandbox = f[len(self.tag) + 1 :].rsplit("-", 1)[0]
                for name in (f, f"cni-loopback-{sandbox}-lo"):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(results, name))
        remove_files(sockets)  # of shims killed above
        self.host_paths.cleanup()
        shutil.rmtree(self.w, ignore_errors=True)


# ---- the CRI client ------------------------------------------------------------------------


class CRI:
    """runtime.v1's RuntimeService and ImageService on containerd's socket.

    `cri.call("RunPodSandbox", config=..., runtime_handler=...)` builds the request message
    from keyword arguments and returns the response message."""

    IMAGE_RPCS = {"ListImages", "ImageStatus", "PullImage", "RemoveImage"}

    def __init__(self, sock, api, netns):
        import grpc

        self.pb, stubs = api
        self.netns = netns
        self.channel = grpc.insecure_channel("unix://" + sock)
        self.runtime = stubs.RuntimeServiceStub(self.channel)
        self.images = stubs.ImageServiceStub(self.channel)

    def call(self, rpc, deadline=TIMEOUT, **fields):
        stub = self.images if rpc in self.IMAGE_RPCS else self.runtime
        request = getattr(self.pb, rpc + "Request")(**fields)
        return getattr(stub, rpc)(request, timeout=deadline)

    def close(self):
        self.channel.close()

    # -- building configs -----------------------------------------------------------------

    def pod_config(self, name, cgroup_parent, log_dir, pid="CONTAINER", labels=None, hostname=None):
        pb = self.pb
        ns = pb.NamespaceOption(network=pb.POD, pid=getattr(pb, pid), ipc=pb.POD)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=secrets.token_hex(8), namespace="sjcri"),
            hostname=hostname or name,
            log_directory=log_dir,
            labels=labels or {},
            annotations={"sangja.test/pod": name},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=cgroup_parent,
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns),
            ),
        )

    def container_config(
        self,
        name,
        image,
        command,
        args=(),
        pid="CONTAINER",
        env=None,
        mounts=(),
        labels=None,
        resources=None,
        security=None,
        working_dir="",
        log_path=None,
        tty=False,
    ):
        pb = self.pb
        sc = security or pb.LinuxContainerSecurityContext()
        sc.namespace_options.CopyFrom(
            pb.NamespaceOption(network=pb.POD, pid=getattr(pb, pid), ipc=pb.POD)
        )
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name),
            image=pb.ImageSpec(image=image),
            command=list(command),
            args=list(args),
            working_dir=working_dir,
            envs=[pb.KeyValue(key=k, value=v) for k, v in (env or {}).items()],
            mounts=list(mounts),
            labels=labels or {},
            annotations={"sangja.test/container": name},
            log_path=log_path or f"{name}.log",
            tty=tty,
            linux=pb.LinuxContainerConfig(resources=resources, security_context=sc),
        )

    # -- verbose status -------------------------------------------------------------------

    def sandbox_info(self, pod_id):
        r = self.call("PodSandboxStatus", pod_sandbox_id=pod_id, verbose=True)
        return r.status, json.loads(r.info["info"])

    def container_info(self, cid):
        r = self.call("ContainerStatus", container_id=cid, verbose=True)
        return r.status, json.loads(r.info["info"]) if "info" in r.info else {}

    def exec_stream(self, cid, cmd, stdin=None, tty=False):
        """Exec through containerd's streaming server, as kubelet's `kubectl exec` path
        does: the Exec RPC gives a URL, then a websocket with Kubernetes' channel protocol
        (v4.channel.k8s.io: the first byte of each binary message names the stream;
        0 stdin, 1 stdout, 2 stderr, 3 the final status as JSON).  Returns
        (exit code, stdout, stderr)."""
        import websocket

        url = self.call(
            "Exec",
            container_id=cid,
            cmd=list(cmd),
            tty=tty,
            stdin=stdin is not None,
            stdout=True,
            stderr=not tty,
        ).url
        assert url.startswith("http://"), url
        with self.netns.entered():  # the streaming server listens in the private netns
            ws = websocket.create_connection(
                "ws://" + url[len("http://") :], timeout=TIMEOUT, subprotocols=["v4.channel.k8s.io"]
            )
        streams = {1: b"", 2: b"", 3: b""}
        try:
            if stdin is not None:
                ws.send_binary(b"\0" + stdin)
            while True:
                try:
                    op, data = ws.recv_data()
                except websocket.WebSocketConnectionClosedException:
                    break
                if op == websocket.ABNF.OPCODE_CLOSE:
                    break
                if data:
                    streams[data[0]] = streams.get(data[0], b"") + data[1:]
        finally:
            ws.close()
        status = json.loads(streams[3]) if streams[3] else {}
        if status.get("status") == "Success":
            code = 0
        else:
            causes = status.get("details", {}).get("causes", [])
            codes = [c["message"] for c in causes if c.get("reason") == "ExitCode"]
            assert codes, f"exec failed: {status}"
            code = int(codes[0])
        return code, streams[1], streams[2]


def wait_for(pred, what, guard=TIMEOUT):
    return rtkit.wait_for(pred, what, guard)
