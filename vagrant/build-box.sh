#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) box for vagrant-libvirt from Debian's own
# packages, so no box has to be downloaded: debootstrap into a directory, an
# ext4 image made straight from it (`mkfs.ext4 -d`: no loop device, no
# partition table, no boot loader; libvirt boots the box's kernel directly),
# converted to qcow2 and packed as a .box with the kernel and initrd beside it.
#
#   sudo vagrant/build-box.sh [--force]      # -> target/vm/vnet-agent-debian12.box
#
# The box has everything the vnet-agent package depends on, so the package
# installs inside the VM without network access. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/vm
box="$out/vnet-agent-debian12.box"
name=vnet-agent/debian12
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export VAGRANT_HOME=${VAGRANT_HOME:-$PWD/$out/vagrant.d}

if [ "$(id -u)" != 0 ]; then
  echo "build-box.sh: needs root (debootstrap)" >&2
  exit 77
fi
if [ -f "$box" ] && [ "${1:-}" != --force ]; then
  echo "== $box exists (--force rebuilds it)"
else
  rootfs="$out/rootfs"
  rm -rf "$rootfs" "$out/disk.raw" "$out/box"
  mkdir -p "$rootfs" "$out/box"
  # The package's runtime dependencies (agent/Cargo.toml, depends), the
  # tools of the quickstart's checks, and what a Vagrant box needs.
  packages=linux-image-amd64,systemd-sysv,udev,kmod,openssh-server,sudo,ca-certificates
  packages+=,nftables,iproute2,util-linux,conntrack,tcpdump,dnsmasq-base,bird2
  packages+=,iputils-ping,dnsutils,curl,netcat-openbsd,procps,rsync,less
  echo "== debootstrap bookworm ($mirror)"
  debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" \
    > "$out/debootstrap.log" 2>&1 || { tail -20 "$out/debootstrap.log"; exit 1; }

  echo "== configuring the box"
  echo vnet-agent-dev > "$rootfs/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 vnet-agent-dev\n' > "$rootfs/etc/hosts"
  echo '/dev/vda / ext4 defaults,errors=remount-ro 0 1' > "$rootfs/etc/fstab"
  # DHCP on the first NIC (vagrant-libvirt's management network).
  cat > "$rootfs/etc/systemd/network/10-dhcp.network" <<'NET'
[Match]
Name=eth0 en*

[Network]
DHCP=ipv4
NET
  chroot "$rootfs" systemctl enable systemd-networkd ssh >/dev/null 2>&1
  # bird2 ships a system service; the agent starts its own speakers.
  chroot "$rootfs" systemctl disable bird >/dev/null 2>&1 || true
  chroot "$rootfs" systemctl mask bird >/dev/null 2>&1 || true
  # Vagrant's user: its well-known insecure key (Vagrant replaces it on the
  # first `vagrant up`), passwordless sudo.
  chroot "$rootfs" useradd -m -s /bin/bash vagrant
  install -d -m 700 -o 1000 -g 1000 "$rootfs/home/vagrant/.ssh"
  key=$(dpkg -L vagrant | grep '/keys/vagrant.pub$' | head -n 1)
  install -m 600 -o 1000 -g 1000 "$key" "$rootfs/home/vagrant/.ssh/authorized_keys"
  echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > "$rootfs/etc/sudoers.d/vagrant"
  chmod 440 "$rootfs/etc/sudoers.d/vagrant"
  echo 'UseDNS no' > "$rootfs/etc/ssh/sshd_config.d/vagrant.conf"
  chroot "$rootfs" apt-get clean

  echo "== disk image"
  cp "$rootfs"/boot/vmlinuz-* "$out/vmlinuz"
  cp "$rootfs"/boot/initrd.img-* "$out/initrd.img"
  mkfs.ext4 -q -F -L root -d "$rootfs" "$out/disk.raw" 4G
  qemu-img convert -O qcow2 "$out/disk.raw" "$out/box/box.img"
  rm -f "$out/disk.raw"
  echo '{"provider": "libvirt", "format": "qcow2", "virtual_size": 4}' > "$out/box/metadata.json"
  cat > "$out/box/Vagrantfile" <<'VF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.driver = "kvm"
  end
end
VF
  tar -C "$out/box" -cf "$box" metadata.json Vagrantfile box.img
  rm -rf "$out/box" "$rootfs"
fi
echo "== vagrant box add $name"
vagrant box add --force --name "$name" "$box" >/dev/null
echo "box $name ready (kernel and initrd in $out)"
