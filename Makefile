# sangja — two commands do all the set-up on a fresh machine (as root):
#   make demo   installs what is needed and runs a busybox container (no network)
#   make test   installs what is needed and runs the whole suite
# Also: make install | bench | lint | clean

# The real interpreter, not a pyenv shim (a shim costs ~40 ms per call).
PYTHON ?= $(shell python3 -c 'import sys; print(sys.executable)')
PREFIX_BIN := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
SANGJA := $(PREFIX_BIN)/sangja
APT_PACKAGES := build-essential pkg-config busybox-static runc crun libseccomp-dev \
	libzstd-dev libisal-dev zlib1g-dev iproute2 strace util-linux procps
STAMP := build/.stamps

.PHONY: all deps install demo test lint bench clean

all: install

$(STAMP)/apt:
	@mkdir -p $(STAMP)
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then echo "apt packages: present"; else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(APT_PACKAGES); fi
	@touch $@

$(STAMP)/pip: pyproject.toml
	@mkdir -p $(STAMP)
	$(PYTHON) -m pip install -q --disable-pip-version-check "setuptools>=61" wheel "Cython>=3.0" \
		"pytest>=7" "pytest-benchmark>=4" "ruff>=0.5"
	@touch $@

deps: $(STAMP)/apt $(STAMP)/pip

# A regular (non-editable) install: the entry script then finds sangja without site.py.
install: deps
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps .
	ln -sf $(SANGJA) /usr/local/bin/sangja

demo: install
	@rm -rf build/demo
	$(PYTHON) tests/bundles.py build/demo -- sh -c 'echo "Hello from sangja, in a busybox container"; echo "hostname: $$(hostname)"'
	$(SANGJA) run --bundle build/demo sangja-demo-$$$$

lint: deps
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

test: install lint
	SANGJA=$(SANGJA) $(PYTHON) -m pytest -q tests

bench: install
	SANGJA=$(SANGJA) $(PYTHON) -m pytest -q bench --benchmark-columns=median,min,max,rounds \
		--benchmark-sort=name -p no:cacheprovider

clean:
	rm -rf build dist src/*.egg-info src/sangja/_native/*.c src/sangja/_native/*.so
