# talgate — see README.md. Everything a fresh Debian 12 machine needs is installed from here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps

# Debian packages the code and the tests use (nft + libnftables for the agent, iproute2 for the
# lab, iperf3/ping/conntrack for lab tests and benchmarks, tmux for driving the console by hand).
DEB_PACKAGES := nftables libnftables1 iproute2 iperf3 iputils-ping conntrack procps tmux git
# LAN services: the daemons (run by the lab's supervisor inside tg-router, never in the root
# namespace) and the real clients the lab tests use (dhclient, dig, rdisc6; tcpdump captures).
DEB_PACKAGES += kea-dhcp4-server kea-dhcp6-server unbound radvd chrony avahi-daemon openssl \
                isc-dhcp-client bind9-dnsutils ndisc6 tcpdump
# Routing: FRR on the router, bird2 as the independent peer in a lab host. The qemu guest (tests
# marked `vm`, ../shared/vm/vmrun.sh) boots Debian's own kernel for 802.1Q, bonding, VLAN-filtering
# bridges and the other features this machine's kernel lacks.
DEB_PACKAGES += frr bird2 qemu-system-x86 linux-image-amd64 busybox-static

.PHONY: install deps venv test test-unit test-lab lint demo demo-down bench screenshots image clean
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

install: deps venv

deps: $(STAMPS)/deps
$(STAMPS)/deps: Makefile
	@mkdir -p $(STAMPS)
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

venv: $(STAMPS)/venv
$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[console,dev]'
	@touch $@

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider tests

test-unit: install
	$(BIN)/pytest -q tests/unit

test-lab: install
	$(BIN)/pytest -q tests/lab

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true

# Builds the lab (the example policy plus LAN services, backend/lab/demo.yaml) unless it is up,
# then opens the console on it. Without a terminal it prints where everything is instead.
demo: install
	@$(BIN)/talgate lab status >/dev/null 2>&1 || $(BIN)/talgate lab up --config backend/lab/demo.yaml
	@if [ -t 0 ] && [ -t 1 ]; then $(BIN)/talgate console --socket /run/talgate-lab/agent.sock; \
	else $(BIN)/talgate lab status; $(BIN)/talgate status --socket /run/talgate-lab/agent.sock; \
	echo "no terminal here: run '$(BIN)/talgate console' to open the console"; fi

demo-down: install
	$(BIN)/talgate lab down

bench: install
	$(BIN)/python bench/forwarding.py
	$(BIN)/python bench/commit_latency.py
	$(BIN)/python bench/multiwan.py
	$(BIN)/python bench/prefix_change.py
	$(BIN)/python bench/console_bench.py

# The console's screens as SVGs (the same scenes as the snapshot tests), committed in screenshots/.
screenshots: install
	$(BIN)/python -m console.screenshots screenshots

# Needs podman and a reachable container registry for the base images (not available on the
# dev machines; see tests/unit/test_containerfile.py).
image:
	podman build -f Containerfile --target talgate -t ghcr.io/talgate/talgate:$(VERSION) .
	podman build -f Containerfile --target services -t ghcr.io/talgate/talgate-services:$(VERSION) .

clean:
	rm -rf $(VENV) $(STAMPS) *.egg-info
