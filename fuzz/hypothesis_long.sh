#!/bin/sh
# The hypothesis fuzz suite (tests/fuzz/) with a large example count, niced.
#   fuzz/hypothesis_long.sh [EXAMPLES]    (default 20000 per property)
set -u
cd "$(dirname "$0")/.." || exit 2
TWM_FUZZ_EXAMPLES=${1:-20000} exec nice -n 19 .venv/bin/pytest -q -p no:randomly \
    --hypothesis-show-statistics --durations=0 tests/fuzz
