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
# BIRD 2: the BGP speaker of gateways and on-premises routers (issue 12).
# Its package ships a system service; see below: it is never started.
bird_missing=false
have bird || [ -x /usr/sbin/bird ] || { need+=(bird2); bird_missing=true; }
have curl || need+=(curl)
have iperf3 || need+=(iperf3)
have ping || need+=(iputils-ping)
have conntrack || need+=(conntrack)
# tcpdump reads the pcap files of Network Watcher packet captures (issue 13)
# and is the capture's own writer.
have tcpdump || [ -x /usr/bin/tcpdump ] || need+=(tcpdump)
# `lab graph`: its test renders the dot output with Graphviz and opens the
# HTML page in a real headless Chromium (Debian's package).
have dot || need+=(graphviz)
# The unit file's test runs `systemd-analyze verify` (it starts nothing).
have systemd-analyze || need+=(systemd)
have chromium || need+=(chromium)
# The dev VM's Vagrantfile is checked with `vagrant validate` (with the
# libvirt provider's plugin, whose options it uses); nothing is booted.
have vagrant || need+=(vagrant)
compgen -G '/usr/share/rubygems-integration/all/gems/vagrant-libvirt-*' >/dev/null || need+=(vagrant-libvirt)
have ps || need+=(procps)
have cc || need+=(gcc libc6-dev)
# The fuzz targets link libFuzzer, which libfuzzer-sys compiles (C++).
have g++ || need+=(g++)
[ -e /usr/share/doc/ca-certificates ] || need+=(ca-certificates)

if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: missing ${need[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # No package may start a daemon in the machine's own namespace (bird2
  # would run BIRD there): policy-rc.d refuses every start during the install.
  policy=/usr/sbin/policy-rc.d
  made_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=true
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if $made_policy; then rm -f "$policy"; fi
  # ... nor at the next boot: the lab runs its own BIRDs, one per namespace.
  if $bird_missing && have systemctl && [ -d /run/systemd/system ]; then
    systemctl disable --now bird.service >/dev/null 2>&1 || true
  fi
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
