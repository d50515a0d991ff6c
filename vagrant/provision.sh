#!/usr/bin/env bash
# Runs inside the VM as root (Vagrant's shell provisioner): installs the
# host's vnet-agent package, starts the service and deploys the example lab.
set -euo pipefail
if [ ! -f /tmp/vnet-agent.deb ]; then
  echo "no package: run 'cargo xtask deb' on the host before 'vagrant up'" >&2
  exit 1
fi
# Offline in the locally built box (it holds every dependency); elsewhere
# apt fetches what is missing.
apt-get install -y -q /tmp/vnet-agent.deb
usermod -aG vnet-agent vagrant
systemctl enable --now vnet-agent
vnet-agent deploy -g lab -f /usr/share/vnet-agent/examples/lab.json -o none
vnet-agent webapp show -g lab -n web1 --query '{name:name, outboundIpAddresses:properties.outboundIpAddresses}'
