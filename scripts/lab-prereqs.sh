#!/bin/sh
# Host packages the cairn lab needs (Debian 12): systemd-nspawn, debootstrap, dpkg-scanpackages, ssh,
# ip; qemu, qemu-img and mke2fs for the VM tier (`lab up --vm`, test/lab/70-vm.test.ts). Idempotent and quiet: installs only what is missing, prints one line.
set -eu

if [ "$(id -u)" -ne 0 ]; then
  echo "lab-prereqs: run as root (it installs packages with apt-get)" >&2
  exit 5
fi

# command -> package that provides it
missing=""
for pair in systemd-nspawn:systemd-container debootstrap:debootstrap dpkg-scanpackages:dpkg-dev \
            ssh:openssh-client ssh-keygen:openssh-client ip:iproute2 wget:wget \
            qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mke2fs:e2fsprogs; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1; then
    case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
  fi
done

if [ -z "$missing" ]; then
  echo "lab-prereqs: all present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # the package list is meant to split into words
if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "lab-prereqs: installed$missing"
