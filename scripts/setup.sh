#!/usr/bin/env bash
# Installs everything Palisade needs on a Debian/Ubuntu machine, idempotently:
# system packages (only those missing), Node.js 24 when the system Node is older,
# and the npm dependencies. Sourced by scripts/demo.sh and scripts/test.sh; safe
# to run any number of times.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian packages the lab, the datapaths and the tests drive for real:
# iproute2 and nftables (namespaces, veths, routes, policy), the CNI plugins
# (host-local IPAM), curl/iperf3/dig/ping in pods, procps (sysctl, pgrep),
# dnsmasq (cluster DNS and the lab's upstream DNS), Prometheus (the metrics test),
# clang/llvm/libbpf (the eBPF datapath's programs), nsenter (util-linux), python3
# (the raw IP writer of the hostile-pod tests), chromium (the UI's browser tests
# and bench, driven by playwright-core).
packages=(ca-certificates curl git python3 iproute2 nftables containernetworking-plugins iperf3 sockperf dnsutils iputils-ping procps bash dnsmasq-base prometheus util-linux clang llvm libbpf-dev libbpf1 linux-libc-dev bpftool chromium)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# kubectl, for the lab's kubeconfig: the machine's own if it has one, else Debian's.
command -v kubectl >/dev/null || missing+=(kubernetes-client)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing system packages (${missing[*]}); run as root or install them with apt-get" >&2
    exit 1
  fi
  say "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js 24 LTS: the system one when it is new enough, otherwise the `node`
# package from the npm registry, kept under .tools/ in the checkout.
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if ! command -v node >/dev/null || (( $(node_major node) < 24 )); then
  if [[ ! -x .tools/node24/node_modules/.bin/node ]] || (( $(node_major .tools/node24/node_modules/.bin/node) < 24 )); then
    command -v npm >/dev/null || { echo "setup: npm is needed to fetch Node.js 24 (apt-get install npm)" >&2; exit 1; }
    say "fetching Node.js 24 from the npm registry into .tools/node24"
    npm install --silent --no-audit --no-fund --prefix .tools/node24 node@24 >/dev/null
  fi
  export PATH="$root/.tools/node24/node_modules/.bin:$PATH"
fi

# npm dependencies, only when package-lock.json changed since the last install.
stamp=node_modules/.palisade-lock
if [[ ! -f $stamp ]] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm dependencies"
  npm ci --silent --no-audit --no-fund
  cp package-lock.json "$stamp"
fi

# The eBPF datapath's programs, compiled when their sources changed.
node src/datapath/ebpf/build.ts >/dev/null

# The web UI's page, bundled by esbuild into dist/ui (nothing is fetched when it is served).
node scripts/build-ui.ts >/dev/null
