#!/usr/bin/env bash
# The whole test suite: type-check, unit tests and (as root) the end-to-end suites.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
npm test
