#!/usr/bin/env bash
# The main job: sets Palisade up and shows it deciding real policy questions.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
p() { printf '\n\033[1m$ palisade %s\033[0m\n' "$*"; bin/palisade "$@"; }
p policy validate -f examples/star-wars/
p policy trace -f examples/star-wars/ --src default/tiefighter --dst default/deathstar --dport 80 --http-method POST --http-path /v1/request-landing
p policy trace -f examples/star-wars/ --src default/tiefighter --dst default/deathstar --dport 80 --http-method PUT --http-path /v1/exhaust-port
p policy trace -f examples/star-wars/ --src default/xwing --dst default/deathstar --dport 80
p policy validate -f examples/faulty-policy.yaml || true
