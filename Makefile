# ipsec-lab: every target that needs the tools installs them first (see `setup`).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
LAB   := $(VENV)/bin/lab
OUT   ?= results
STAMP := $(VENV)/.setup-done

# Debian packages the lab runs on; `dpkg-query` decides what is missing. lab/preflight.py
# says what each one provides, and tests/test_install_truth.py proves both against dpkg.
APT_PACKAGES := mininet strongswan-swanctl strongswan-charon libcharon-extra-plugins \
	libstrongswan-standard-plugins libstrongswan-extra-plugins strongswan-pki tcpdump nftables iproute2 iputils-ping \
	procps ethtool conntrack curl python3-venv graphviz

# Only the tests need a browser (the HTML report is checked in headless Chromium).
TEST_APT_PACKAGES := chromium fonts-wqy-zenhei
TEST_STAMP := $(VENV)/.test-setup-done

.PHONY: setup scenario list test bench clean

setup: $(STAMP)

# Stale when the package definition or this file changes.
$(STAMP): pyproject.toml Makefile
	@[ "$$(id -u)" = 0 ] || { echo "ipsec-lab needs root (network namespaces, charon, tcpdump)"; exit 1; }
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# --system-site-packages: Mininet's Python module comes from Debian.
	@[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

# PORT=...: the scenario's `port` parameter (e.g. the IKE TCP port of tcp-asym)
$(TEST_STAMP): $(STAMP)
	@missing=$$(for p in $(TEST_APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for the tests:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

scenario: $(STAMP)
	@[ -n "$(NAME)" ] || { echo "usage: make scenario NAME=<scenario> [PORT=<port>]   (make list shows them)"; exit 2; }
	$(LAB) run $(NAME) --out $(OUT) $(if $(PORT),--param port=$(PORT))

list: $(STAMP)
	@$(LAB) list

# Labs mostly wait on timers: four test workers share the cores; runs carry a session mark,
# so each worker's leak checks see its own labs only. The workshop tests share one group.
TEST_WORKERS ?= 4

test: $(STAMP) $(TEST_STAMP)
	$(PY) -m pytest -q -rfE -n $(TEST_WORKERS) --dist worksteal tests

bench: $(STAMP)
	$(LAB) bench --out bench/bench.json

# Removes what runs of this checkout left on disk; labs tear themselves down.
clean:
	rm -rf $(OUT) bench .pytest_cache
