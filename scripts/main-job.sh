#!/usr/bin/env bash
# The main job (`npm start`): on a fresh Debian 12 machine, as root — install the host prerequisites, build
# cairn, bring the built-in lab up, run the site playbook on it (each play verifies its roles), then print
# the verification of the whole platform.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "npm start needs root: the lab creates a bridge, overlay mounts and containers (run it as root)." >&2
  exit 5
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "host prerequisites"
export DEBIAN_FRONTEND=noninteractive
if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-client curl >/dev/null
fi
bash scripts/lab-prereqs.sh

step "build"
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run -s build

# `npm start -- --vm`: the pve nodes as VMs under qemu (the VM tier, docs/lab.md) instead of containers.
vm=()
if [ "${1:-}" = --vm ]; then vm=(--vm); shift; fi

step "lab up"
pve=()
# The hyper-converged plays (kvm, zfs, ceph) need the pve nodes; CAIRN_MAIN_NO_PVE=1 keeps the lab small.
if [ "${CAIRN_MAIN_NO_PVE:-0}" != 1 ] && grep -qE 'playbooks/(kvm|zfs|ceph)\.yaml' site.yaml; then pve=(--with-pve); fi
if [ ${#vm[@]} -gt 0 ]; then pve=("${vm[@]}"); fi
node bin/cairn.js lab up "${pve[@]}"

step "cairn play site.yaml"
set +e
node bin/cairn.js play site.yaml "$@"
play_code=$?
set -e

step "cairn verify site.yaml"
set +e
node bin/cairn.js verify site.yaml
verify_code=$?
set -e

echo
echo "play exit code: $play_code, verify exit code: $verify_code (0 = everything converged and verified)"
[ "$play_code" -eq 0 ] && [ "$verify_code" -eq 0 ]
