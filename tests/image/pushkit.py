"""Registries to push to: Debian's docker-registry, as the fixtures run it (their
certificate, htpasswd and token server), on ports of their own in the test session's network
namespace, each with an empty storage of its own -- so no push ever writes into the fixtures'
shared registry storage, and every test starts from registries it knows the content of.

    reg = PushRegistry(fixtures, "auth", storage_dir)   # started; reg.addr = 127.0.0.1:5544
    reg.log()      # its request log (the methods used: PATCH for chunked uploads, ...)
    reg.stop()     # by the pid we started
"""

import os
import subprocess

import registrykit

PORTS = {"plain": 5100, "tls": 5543, "auth": 5544, "token": 5545}


class PushRegistry:
    def __init__(self, fixtures, variant, storage, port=None, delete=True):
        self.fixtures = fixtures
        self.variant = variant
        self.port = port or PORTS[variant]
        self.addr = f"127.0.0.1:{self.port}"
        self.storage = str(storage)
        os.makedirs(self.storage, exist_ok=True)
        reg = os.path.join(fixtures.serve, "registry")
        tls = auth = ""
        if variant in ("tls", "auth"):
            tls = (f"\n  tls:\n    certificate: {reg}/certs/registry.crt"
                   f"\n    key: {reg}/registry.key")  # fmt: skip
        if variant == "auth":
            auth = f"auth:\n  htpasswd:\n    realm: push-realm\n    path: {reg}/htpasswd\n"
        if variant == "token":
            fixtures.registry("token")  # its token server (port 5446) serves ours too
            auth = ("auth:\n  token:\n    realm: http://127.0.0.1:5446/token\n"
                    "    service: fixture-registry\n    issuer: fixture-token-issuer\n"
                    f"    rootcertbundle: {reg}/token.crt\n")  # fmt: skip
        self.config = os.path.join(self.storage, "..", f"registry-{variant}-{self.port}.yml")
        self.logfile = self.config[:-4] + ".log"
        with open(self.config, "w") as f:
            f.write(f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {self.storage}
  delete:
    enabled: {str(delete).lower()}
http:
  addr: {self.addr}{tls}
{auth}""")
        with fixtures.netns.entered(), open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", self.config],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)  # fmt: skip
            try:
                registrykit._wait_for_port(("127.0.0.1", self.port))
            except OSError:
                self.stop()
                raise RuntimeError(f"registry {variant} did not come up: {self.log()[-500:]}")

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def podman_run(pm, *args):
    """`podman run` with the private storage of registrykit.Podman `pm`: the cgroupfs
    manager (no systemd here), no network, and rlimits this process may set (podman's
    default 1048576 needs CAP_SYS_RESOURCE, which some sandboxes do not grant)."""
    import resource

    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    r = subprocess.run(pm.base + ["--cgroup-manager", "cgroupfs", "run", "--rm", "--net", "none",
                                  "--ulimit", f"nofile={nofile}:{nofile}",
                                  "--ulimit", f"nproc={nproc}:{nproc}", *args],
                       capture_output=True, text=True, timeout=registrykit.TIMEOUT)  # fmt: skip
    assert r.returncode == 0, f"podman run {' '.join(args)}: {r.stderr}"
    return r.stdout
