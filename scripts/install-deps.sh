#!/usr/bin/env bash
# Installs what vnet-agent and its tests need on Debian or Ubuntu (as root):
# the kernel tools (nftables, iproute2), the traffic tools the tests and labs
# use, and a Rust toolchain when there is none. Installs only what is missing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have nft || need+=(nftables)
have ip || need+=(iproute2)
have unshare || need+=(util-linux)
have nc || need+=(netcat-openbsd)
have dig || need+=(dnsutils)
# dnsmasq as a VM's custom DNS server (examples/custom-dns.json, tests, the DNS
# benchmark): dnsmasq-base is the binary alone, without the `dnsmasq`
# package's system service, so nothing starts on this machine.
have dnsmasq || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
have curl || need+=(curl)
have iperf3 || need+=(iperf3)
have ping || need+=(iputils-ping)
have conntrack || need+=(conntrack)
have ps || need+=(procps)
have cc || need+=(gcc libc6-dev)
[ -e /usr/share/doc/ca-certificates ] || need+=(ca-certificates)

if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: missing ${need[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! have cargo && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! have cargo; then
  echo "installing the Rust toolchain with rustup (stable)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
echo "dependencies ok: $(nft --version | head -1); $(cargo --version)"
