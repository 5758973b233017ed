# sangja — two commands do all the set-up on a fresh machine (as root):
#   make demo   installs what is needed and runs a busybox container (no network)
#   make test   installs what is needed and runs the whole suite
# Also: make install | bench | lint | clean

# sangja runs on Debian's own python3: built with PGO/LTO and linked statically, it starts
# ~30% faster than a shared-libpython build (pyenv's), and start-up is the runtime's budget.
# Everything is installed into a venv over it (VENV=/opt/sangja for a lasting install).
SYSTEM_PYTHON ?= /usr/bin/python3
VENV ?= build/venv
PYTHON := $(VENV)/bin/python3
SANGJA := $(abspath $(VENV))/bin/sangja
# the image tests: ../shared/fixtures/make-fixtures.sh (debootstrap, umoci, skopeo, the
# distribution registry, its token server), podman to compare with, zstd for zstd layers,
# buildah (the layer writer's bench: buildah commit)
IMAGE_TEST_PACKAGES := docker-registry skopeo umoci podman debootstrap zstd pigz \
	libarchive-tools openssl apache2-utils attr curl python3-jwt python3-cryptography buildah
# tests/engines: podman (+conmon), containerd (+ctr), dockerd drive sangja in place of runc;
# tests/cri: containerd's CRI plugin with CNI's bridge/host-local/loopback, catatonit as pause
# tests/api: docker.io's client (20.10), docker-py (python3-docker), docker-compose drive
# `system service`
ENGINE_TEST_PACKAGES := podman conmon catatonit containerd docker.io containernetworking-plugins \
	python3-docker docker-compose
# tests/engine's volumes: setcap (a file capability that copy-up must keep)
STORAGE_TEST_PACKAGES := libcap2-bin
# the engine itself: conmon is each container's monitor, catatonit its --init
ENGINE_PACKAGES := conmon catatonit
# container networks: netavark (bridges, veths, addresses, routes; with firewall = "netavark"
# its iptables driver writes the rules), aardvark-dns (names on user networks), iptables
# (iptables-restore/-save: the engine's own firewall batches); iperf3 for the network bench
NETWORK_PACKAGES := netavark aardvark-dns iptables iperf3
APT_PACKAGES := build-essential pkg-config python3 python3-dev python3-venv busybox-static \
	runc crun libseccomp-dev libzstd-dev libisal-dev zlib1g-dev iproute2 strace util-linux \
	procps time systemd dbus clang-format $(ENGINE_PACKAGES) $(NETWORK_PACKAGES) \
	$(IMAGE_TEST_PACKAGES) $(ENGINE_TEST_PACKAGES) $(STORAGE_TEST_PACKAGES)
# libyajl: the JSON parser of the state module (csrc/state/) and the `sangja` program
APT_PACKAGES += libyajl-dev
DEPS_STAMP := $(VENV)/.sangja-deps

.PHONY: all apt-deps deps install demo test lint bench clean conformance

all: install

apt-deps:
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then echo "apt packages: present"; else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PACKAGES); fi

$(DEPS_STAMP): pyproject.toml | apt-deps
	test -x $(PYTHON) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check "setuptools>=61" wheel "Cython>=3.0" \
		"pytest>=7" "pytest-benchmark>=4" "ruff>=0.5" "jeepney>=0.8" "cryptography>=38" \
		"pynacl>=1.5" "aiohttp>=3.8" "grpcio>=1.50" "grpcio-tools>=1.50" "websocket-client>=1.5" \
		"hypothesis>=6"
	@touch $@

deps: apt-deps $(DEPS_STAMP)

# A regular (non-editable) install: the entry script then finds sangja without site.py.
install: deps
	@rm -f build/scripts-*/sangja  # the Python entry script of before the C front end
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps .
	@# -IS on the entry script's interpreter line (pip writes a bare one): no site.py scan of
	@# site-packages (~30 ms per call here); the script finds its package itself.
	sed -i '1s|^\(#!.*python[0-9.]*\)$$|\1 -IS|' $(SANGJA)-py
	ln -sf $(SANGJA) /usr/local/bin/sangja
	@echo "installed: $(SANGJA) (linked from /usr/local/bin/sangja)"

demo: install
	@rm -rf build/demo
	$(PYTHON) tests/bundles.py build/demo -- sh -c 'echo "Hello from sangja, in a busybox container"; echo "hostname: $$(hostname)"'
	$(SANGJA) run --bundle build/demo sangja-demo-$$$$

lint: deps
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	clang-format --dry-run --Werror csrc/*/*.c csrc/*/*.h

# The runtime tests and the conformance suite run a second time with SANGJA_PYTHON=1: the
# C front end then hands every call to the Python CLI, so both paths stay tested.
test: install lint
	SANGJA=$(SANGJA) $(PYTHON) -m pytest -q tests
	SANGJA_PYTHON=1 SANGJA=$(SANGJA) $(PYTHON) -m pytest -q tests/test_*.py tests/conformance

# The OCI runtime-spec conformance suite (tests/conformance): one PASS/FAIL/SKIP line per
# requirement and the totals. RUNTIME=sangja (default), runc, crun or the path of a
# runc-compatible binary. `make test` runs it against sangja too (failures only).
RUNTIME ?= sangja
conformance: $(if $(filter sangja,$(RUNTIME)),install,deps)
	CONFORMANCE_RUNTIME=$(RUNTIME) CONFORMANCE_REPORT=all SANGJA=$(SANGJA) \
		$(PYTHON) -m pytest -q --tb=no -rN -p no:cacheprovider tests/conformance

bench: install
	SANGJA=$(SANGJA) $(PYTHON) -m pytest -q bench --benchmark-columns=median,min,max,rounds \
		--benchmark-sort=name -p no:cacheprovider

clean:
	rm -rf build dist src/*.egg-info src/sangja/_native/*.c src/sangja/_native/*.so
