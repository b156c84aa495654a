#!/usr/bin/env bash
# What `npm test` needs on this machine, installed once (npm's pretest runs this; so does .ci/run): real sshd
# for the transport and engine tests, sudo for become, headless Chromium and a font for the HTML report's
# test, python3 and rsync for the drill helpers and migration steps, promtool (package prometheus) for the
# alert rules, logrotate and systemd-analyze for the jumphost role's files, haproxy, socat and openssl for the
# front door's TLS test (a real haproxy on loopback), prometheus-blackbox-exporter for its probe check, crmsh and
# pacemaker-cli-utils for the ha_cluster role's CIB drift probe (run on a CIB file, no cluster), tar, xz, bzip2,
# zstd, zip, unzip, git and apt-config for the unarchive, git and apt_repository modules' tests. A test never skips for want of one: it fails naming the package. As root with apt-get, missing packages are installed; otherwise this script
# fails and lists the `apt-get install` to run.
set -euo pipefail

# command-or-file -> Debian package
checks=(
  /usr/sbin/sshd:openssh-server
  /usr/bin/ssh-keygen:openssh-client
  /usr/bin/ssh:openssh-client
  /usr/bin/sudo:sudo
  /usr/bin/unshare:util-linux
  /usr/bin/setpriv:util-linux
  /usr/bin/python3:python3
  /usr/bin/rsync:rsync
  /usr/bin/curl:curl
  /usr/bin/crontab:cron
  /usr/sbin/ip:iproute2
  /usr/sbin/nft:nftables
  /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core
  chromium:chromium
  /usr/bin/promtool:prometheus
  /usr/sbin/logrotate:logrotate
  /usr/bin/systemd-analyze:systemd
  /usr/sbin/haproxy:haproxy
  /usr/bin/socat:socat
  /usr/bin/openssl:openssl
  /usr/bin/prometheus-blackbox-exporter:prometheus-blackbox-exporter
  /usr/sbin/crm:crmsh
  /usr/sbin/cibadmin:pacemaker-cli-utils
  /usr/sbin/crm_diff:pacemaker-cli-utils
  /usr/bin/tar:tar
  /usr/bin/xz:xz-utils
  /usr/bin/bzip2:bzip2
  /usr/bin/zstd:zstd
  /usr/bin/zip:zip
  /usr/bin/unzip:unzip
  /usr/bin/git:git
  /usr/bin/apt-config:apt
)

missing=()
for entry in "${checks[@]}"; do
  what=${entry%%:*}
  pkg=${entry##*:}
  if [[ $what == /* ]]; then
    [[ -e $what ]] && continue
  else
    command -v "$what" >/dev/null 2>&1 && continue
  fi
  [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
done
here=$(dirname "$0")
if ((${#missing[@]} == 0)); then
  # The lab suite's packages too (npm test runs it after the others), as `npm start` installs them.
  if [[ $(id -u) -eq 0 ]]; then sh "$here/lab-prereqs.sh" >/dev/null; fi
  exit 0
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-prereqs: missing packages: ${missing[*]}" >&2
  echo "test-prereqs: install them as root: apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "test-prereqs: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Only refresh the package lists when apt has none yet (a fresh machine), so reruns stay offline.
if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then apt-get update -qq; fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
sh "$here/lab-prereqs.sh" >/dev/null
