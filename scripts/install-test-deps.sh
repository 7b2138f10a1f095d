#!/usr/bin/env bash
# Installs the Debian packages the integration tests need (Debian 12, as root):
#   postfix, swaks, libsasl2-modules  real-Postfix tests (test/integration/postfix/)
#   postfwd, policyd-rate-limit       peers for the benchmarks (bench/)
#   miltertest                        a second real milter client (test/miltertest/*.lua)
#   rspamd                            the milter peer of bench/milter-cost.ts (never started as a service)
#   redis-server, postgresql          the distributed state backend (machines of this kind
#                                     usually run both already; .ci/run starts them if not)
# Non-interactive, and safe in a container: the postfix package is preseeded to
# "No configuration" and a policy-rc.d forbids starting services while installing,
# so no system-wide Postfix is configured or started. Tests run their own instances.
set -euo pipefail

PACKAGES=(postfix swaks libsasl2-modules postfwd policyd-rate-limit miltertest rspamd redis-server postgresql)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: must run as root (try: sudo bash $0)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections

POLICY_RC=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY_RC" ]; then
  # 101 = "action not allowed": invoke-rc.d then starts nothing.
  printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
  chmod 755 "$POLICY_RC"
  trap 'rm -f "$POLICY_RC"' EXIT
fi

apt-get update
apt-get install -y "${PACKAGES[@]}"

echo "install-test-deps: installed ${PACKAGES[*]}"
