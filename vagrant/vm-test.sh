#!/usr/bin/env bash
# The dev VM, for real, from an empty libvirt pool to a destroyed VM (run by
# `cargo xtask vm-test`, inside scripts/sandbox.sh): a libvirt of its own in
# this sandbox's network and mount namespaces (its bridge, dnsmasq and NAT
# rules exist only here; its state lives under target/vm), `vagrant up` with
# the locally built box, the quickstart's traffic checks inside the VM, then
# `vagrant destroy` and the pool emptied again. Ends only the daemons it
# started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$repo/target/vm
if [ "${VNET_SANDBOX:-}" != 1 ]; then
  echo "vm-test.sh: run it inside scripts/sandbox.sh (cargo xtask vm-test does)" >&2
  exit 2
fi
export VAGRANT_HOME=$work/vagrant.d
export LIBVIRT_DEFAULT_URI=qemu:///system
step() { echo "== $(date +%T) $*"; }

# sysfs as this network namespace sees it (libvirt looks up the bridges it
# makes under /sys/class/net).
mount -t sysfs vm-test-sys /sys
# libvirt's configuration, state and runtime directories, private to this
# mount namespace: the pool, the network and the domain it defines are
# written to copies under target/vm, never to the machine's /etc/libvirt.
rm -rf "$work/libvirt" "$work/etc-libvirt"
cp -a /etc/libvirt "$work/etc-libvirt"
rm -f "$work"/etc-libvirt/storage/*.xml "$work"/etc-libvirt/qemu/*.xml
# QEMU as root, no dynamic chown of images, no security driver: the box's
# kernel and disk stay where they are, in target/vm; no cgroups of its own
# (the machine's cgroup tree is not libvirt's to change).
printf 'user = "root"\ngroup = "root"\ndynamic_ownership = 0\nsecurity_driver = "none"\ncgroup_controllers = [ ]\n' \
  >> "$work/etc-libvirt/qemu.conf"
mkdir -p "$work/libvirt/images" /run/libvirt /var/lib/libvirt /var/log/libvirt
mount --bind "$work/etc-libvirt" /etc/libvirt
mount -t tmpfs vm-test-run /run/libvirt
mount --bind "$work/libvirt" /var/lib/libvirt
mount -t tmpfs vm-test-log /var/log/libvirt

pids=()
cleanup() {
  status=$?
  step "destroying the VM"
  (cd vagrant && vagrant destroy -f) || true
  # The box image vagrant-libvirt uploaded: the pool is left as found.
  for vol in $(virsh vol-list default 2>/dev/null | awk 'NR > 2 && $1 != "" {print $1}'); do
    virsh vol-delete --pool default "$vol" >/dev/null || true
  done
  left=$(virsh vol-list default 2>/dev/null | awk 'NR > 2 && $1 != ""' | wc -l)
  domains=$(virsh list --all --name 2>/dev/null | grep -c . || true)
  step "pool default: $left volume(s) left; $domains domain(s) left"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$status" = 0 ]; then step "vm-test PASSED"; else step "vm-test FAILED ($status)"; fi
  exit "$status"
}
trap cleanup EXIT

step "starting virtlogd and libvirtd (this sandbox only)"
/usr/sbin/virtlogd 2>"$work/virtlogd.log" & pids+=($!)
/usr/sbin/libvirtd 2>"$work/libvirtd.log" & pids+=($!)
for _ in $(seq 100); do virsh version >/dev/null 2>&1 && break; sleep 0.2; done
virsh pool-define-as default dir --target /var/lib/libvirt/images >/dev/null
virsh pool-start default >/dev/null
step "pool default: $(virsh vol-list default | awk 'NR > 2 && $1 != ""' | wc -l) volume(s)"

# Does KVM boot the box's kernel here? Some nested hypervisors give a
# /dev/kvm on which a guest hangs before its first line: then QEMU emulates
# the CPU (TCG), slower but the same VM.
export VNET_VM_DRIVER=qemu
if timeout 20 qemu-system-x86_64 -enable-kvm -cpu kvm64 -m 256 -kernel "$work/vmlinuz" \
     -append "console=ttyS0 earlyprintk=ttyS0 panic=-1" -nic none -display none \
     -serial stdio -no-reboot 2>/dev/null | grep -a -q "Linux version"; then
  export VNET_VM_DRIVER=kvm
fi
step "libvirt driver: $VNET_VM_DRIVER ($( [ "$VNET_VM_DRIVER" = kvm ] && echo 'KVM boots a guest kernel' || echo 'KVM does not boot a guest kernel on this host: CPU emulated'))"

step "vagrant up --provider libvirt"
(cd vagrant && vagrant up --provider libvirt --no-tty)

ssh_vm() { (cd vagrant && vagrant ssh -c "$1" -- -q); }
step "checks inside the VM"
ssh_vm 'sudo systemctl is-active vnet-agent'
ssh_vm 'id -nG | tr " " "\n" | grep -qx vnet-agent && echo "vagrant is in group vnet-agent"'
# As the VM's user: the group's socket, no sudo.
ssh_vm 'vnet-agent webapp show -g lab -n web1 --query "{name:name, outboundIpAddresses:properties.outboundIpAddresses}"'
# Real traffic, as the quickstart: a listener in vm1 (10.0.2.4) and one on
# the internet host host1 (198.18.100.10) note the source they see.
ssh_vm '
set -e
seen() { # NAMESPACE-FLAGS... : run a one-connection listener on 9000, print the peer
  sudo vnet-agent exec "$@" -- sh -c "nc -l -v -w 5 9000 < /dev/null > /dev/null 2> /tmp/seen" & srv=$!
  sleep 1
  sudo vnet-agent exec --app web1 -- nc -N -w 3 "$target" 9000 < /dev/null || true
  wait $srv || true
  sed -n "s/.*received on \([0-9.]*\) .*/\1/p" /tmp/seen
}
private=$(sudo vnet-agent exec --app web1 -- printenv WEBSITE_PRIVATE_IP)
outbound=$(vnet-agent webapp show -g lab -n web1 --query properties.outboundIpAddresses -o tsv)
target=10.0.2.4; got=$(seen --vm vm1)
echo "web1 -> vm1 10.0.2.4:9000: vm1 saw $got (WEBSITE_PRIVATE_IP $private)"
test -n "$got" && test "$got" = "$private"
target=198.18.100.10; got=$(seen --host host1)
echo "web1 -> host1 198.18.100.10:9000: host1 saw $got (outboundIpAddresses $outbound)"
case ",$outbound," in *",$got,"*) ;; *) echo "not an outbound IP"; exit 1;; esac
# Integration is outbound only: vm1 cannot open a connection to web1.
if sudo vnet-agent exec --vm vm1 -- nc -z -w 2 "$private" 80; then
  echo "vm1 -> web1 connected?!"; exit 1
fi
echo "vm1 -> web1 $private:80 refused/dropped, as in Azure"
'
# The service survives a restart without disturbing the lab.
ssh_vm 'sudo systemctl restart vnet-agent && sudo systemctl is-active vnet-agent && vnet-agent lab status --query "{generation:generation}" -o json'
step "all checks passed inside the VM"
