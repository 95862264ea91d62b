# ipsec-lab: every target that needs the tools installs them first (see `setup`).
#
# Root is needed once per machine (`make system`, which `make setup` runs when started by root):
# Debian packages, the account labs started by root run as, subordinate ids for the accounts
# that run labs, and the training room. Everything else runs as any account: each lab lives in
# a sandbox of its own (lab/sandbox), mapped to the account's subordinate ids, never host root.
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
	procps ethtool conntrack curl python3-venv graphviz uidmap

# Only the tests need a browser (the HTML report is checked in headless Chromium) and strace
# (what lab validate opens, tests/test_bad_input.py).
TEST_APT_PACKAGES := chromium fonts-wqy-zenhei strace
TEST_STAMP := $(VENV)/.test-setup-done

# The account root's labs run as (lab/sandbox/identity.py), and the training room (lab/workshop/state.py).
LAB_ACCOUNT := ipsec-lab
ROOM_PARENT := /run/ipsec-lab
ROOM := $(ROOM_PARENT)/room
# Accounts given subordinate ids by `make system` (new accounts made by useradd have them already).
ACCOUNTS ?= $(SUDO_USER)

.PHONY: setup system scenario list test bench clean xterm

setup: $(STAMP)

# Root only, idempotent: what the machine needs before any account can run a lab.
system:
	@[ "$$(id -u)" = 0 ] || { echo "make system needs root"; exit 1; }
	@$(call apt_install,$(APT_PACKAGES))
	@id -u $(LAB_ACCOUNT) >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "ipsec-lab labs started by root" $(LAB_ACCOUNT)
	@for account in $(LAB_ACCOUNT) $(ACCOUNTS); do \
		grep -qs "^$$account:" /etc/subuid && grep -qs "^$$account:" /etc/subgid && continue; \
		first=$$(cat /etc/subuid /etc/subgid 2>/dev/null | \
			awk -F: 'BEGIN { end = 100000 } $$2 + $$3 > end { end = $$2 + $$3 } END { print end }'); \
		echo "subordinate ids for $$account: $$first-$$((first + 65535))"; \
		usermod --add-subuids $$first-$$((first + 65535)) --add-subgids $$first-$$((first + 65535)) $$account; \
	done
	@[ "$$(cat /proc/sys/user/max_user_namespaces)" -gt 0 ] || sysctl -qw user.max_user_namespaces=10000
	@# The room is on /run (it empties at boot, as the labs do): made now, and at every boot by systemd.
	@install -d -m 0755 $(ROOM_PARENT) && install -d -m 1733 $(ROOM)
	@[ ! -d /etc/tmpfiles.d ] || printf 'd $(ROOM_PARENT) 0755 root root -\nd $(ROOM) 1733 root root -\n' \
		> /etc/tmpfiles.d/ipsec-lab.conf

# Stale when the package definition or this file changes.
$(STAMP): pyproject.toml Makefile
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory system; \
	elif ! /usr/bin/python3 -m lab.preflight --ready; then \
		echo "This machine is not set up for ipsec-lab yet. Once, as root, run:"; \
		echo "  make -C $(CURDIR) system ACCOUNTS=$$(id -un)"; \
		exit 1; \
	fi
	@# --system-site-packages: Mininet's Python module comes from Debian.
	@[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

# Maintainers only: xterm.js, which lab serve serves itself (never from a CDN: a classroom may
# have no internet), is kept in lab/serve/vendor/ as the npm registry gives it, at the versions
# web/package-lock.json pins; this target refreshes those copies (needs npm).
xterm:
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	cp web/node_modules/@xterm/xterm/lib/xterm.js web/node_modules/@xterm/xterm/css/xterm.css \
		web/node_modules/@xterm/addon-fit/lib/addon-fit.js lab/serve/vendor/
	cp web/node_modules/@xterm/xterm/LICENSE lab/serve/vendor/LICENSE.xterm
	cp web/node_modules/@xterm/addon-fit/LICENSE lab/serve/vendor/LICENSE.addon-fit

$(TEST_STAMP): $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then $(call apt_install,$(TEST_APT_PACKAGES)); \
	elif ! /usr/bin/python3 -m lab.preflight --ready --tests; then \
		echo "The tests need a browser. Once, as root, run: apt-get install $(TEST_APT_PACKAGES)"; exit 1; fi
	@touch $@

# apt-get install of the packages of $(1) that dpkg does not know as installed.
define apt_install
missing=$$(for p in $(1); do \
	dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then \
	echo "installing Debian packages:" $$missing; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
fi
endef

# PORT=...: the scenario's `port` parameter (e.g. the IKE TCP port of tcp-asym)
scenario: $(STAMP)
	@[ -n "$(NAME)" ] || { echo "usage: make scenario NAME=<scenario> [PORT=<port>]   (make list shows them)"; exit 2; }
	$(LAB) run $(NAME) --out $(OUT) $(if $(PORT),--param port=$(PORT))

list: $(STAMP)
	@$(LAB) list

# Labs mostly wait on timers: four test workers share the cores; each worker's leak checks see
# its own labs only (tests/leaks.py). The workshop tests share one group.
TEST_WORKERS ?= 4

test: $(STAMP) $(TEST_STAMP)
	$(PY) -m pytest -q -rfE -n $(TEST_WORKERS) --dist worksteal tests

bench: $(STAMP)
	$(LAB) bench --out bench/bench.json

# Removes what runs of this checkout left on disk; labs tear themselves down.
clean:
	rm -rf $(OUT) bench .pytest_cache
