#!/usr/bin/env bash
# The main job: sets Palisade up, brings up the default lab (2 nodes) with the
# demo application, shows a policy taking effect on real traffic, and leaves
# the lab running for you to explore. Safe to run again: an existing lab is reused.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

if bin/palisade lab status >/dev/null 2>&1; then
  bold "Lab 'default' is already up; reusing it"
  run bin/palisade apply -f examples/lab/demo-app.yaml
else
  if [[ -d /run/palisade/default ]] || ip netns list 2>/dev/null | grep -q '^pl-default-'; then
    bold "Removing the leftovers of an earlier lab 'default'"
    run bin/palisade lab down
  fi
  bold "Bringing up lab 'default' with the demo application, Prometheus and the web UI"
  run bin/palisade lab up --demo --prometheus
fi

run bin/palisade get pods -A -o wide
run bin/palisade get services -A
run bin/palisade get externalhosts
backend=backend.demo
db=db.demo

bold "Without policy, everyone reaches the backend (by Service name), and the world"
run bin/palisade exec -n demo frontend -- curl -s -m 2 "http://$backend/"
run bin/palisade exec -n default intruder -- curl -s -m 2 -o /dev/null -w 'intruder → backend: HTTP %{http_code}\n' "http://$backend/"
run bin/palisade exec -n demo frontend -- curl -s -m 3 -o /dev/null -w 'frontend → https://api.github.com: HTTP %{http_code}, certificate verified\n' https://api.github.com/

bold "Apply a CiliumNetworkPolicy (backend ← frontend) and a NetworkPolicy (db ← backend)"
run bin/palisade apply -f examples/lab/demo-policy.yaml
sleep 0.3
run bin/palisade exec -n demo frontend -- curl -s -m 2 -o /dev/null -w 'frontend → backend: HTTP %{http_code}\n' "http://$backend/"
run bin/palisade exec -n default intruder -- curl -s -m 2 -o /dev/null -w 'intruder → backend: HTTP %{http_code} (000: dropped)\n' "http://$backend/" || true
run bin/palisade exec -n demo frontend -- timeout 2 bash -c "exec 3<>/dev/tcp/$(bin/palisade exec -n demo frontend -- dig +short $db.svc.cluster.local)/5432 && echo 'frontend → db: connected'" || echo "frontend → db: dropped"

bold "What is in force, and what it dropped (flow records, Hubble-style)"
run bin/palisade get policies -A
run bin/palisade observe --verdict DROPPED --last 3

bold "L7: Cilium's star wars demo — the TIE fighter may land, not aim at the exhaust port"
run bin/palisade apply -f examples/lab/star-wars.yaml
run bin/palisade apply -f examples/lab/star-wars-l7.yaml
sleep 0.3
run bin/palisade exec -n default tiefighter -- curl -s -m 2 -X POST -o /dev/null -w 'tiefighter POST /v1/request-landing: HTTP %{http_code}\n' http://deathstar.default/v1/request-landing
run bin/palisade exec -n default tiefighter -- curl -s -m 2 -X PUT -w 'tiefighter PUT /v1/exhaust-port: HTTP %{http_code}\n' http://deathstar.default/v1/exhaust-port
run bin/palisade exec -n default xwing -- curl -s -m 2 -X POST -o /dev/null -w 'xwing POST /v1/request-landing: HTTP %{http_code} (000: dropped)\n' http://deathstar.default/v1/request-landing || true
run bin/palisade observe --type l7 --last 4
run bin/palisade lab status

bold "The lab stays up. Explore with: bin/palisade get pods -A · bin/palisade exec -n demo frontend -- curl http://backend.demo/ · kubectl --kubeconfig /run/palisade/default/kubeconfig get pods -A"
# lab status prints each service's URL right after its name.
ui=$(bin/palisade lab status 2>/dev/null | awk '$1 == "UI" { print $2 }' || true)
if [[ -n $ui ]]; then
  bold "See it in the web UI (service map, flows, drops, DNS, HTTP): $ui"
  port=${ui##*:}; port=${port%%/*}
  echo "From another machine: ssh -L $port:127.0.0.1:$port <this host>, then open $ui there. Metrics and Grafana: docs/metrics.md"
else
  echo "This lab runs no web UI (brought up with --no-ui, or before the UI existed): bin/palisade ui --lab default"
fi
echo "Remove it with: bin/palisade lab down"
