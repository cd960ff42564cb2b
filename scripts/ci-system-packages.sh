#!/usr/bin/env bash
# Installs the Debian packages the traffic lab (pktlstm lab) and its tests need; quiet, idempotent.
# Fast when everything is there already (dpkg -s only). Services are never started by the install:
# the lab starts its own copies inside network namespaces.
set -euo pipefail

PACKAGES=(
  iproute2 tcpdump procps ethtool
  nginx openssh-server openssh-client dnsmasq-base mosquitto mosquitto-clients
  inetutils-telnetd inetutils-inetd
  curl wget bind9-dnsutils iperf3
  nmap hping3 hydra slowhttptest masscan
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "ci-system-packages: not root; the lab tests will skip (missing: ${missing[*]})" >&2
  exit 0
fi

# Keep maintainer scripts from starting sshd, nginx, mosquitto... in the root namespace.
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
cleanup() { [ "$made_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
echo "ci-system-packages: installing ${missing[*]}" >&2
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
