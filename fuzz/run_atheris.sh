#!/bin/sh
# The >= 1M-input atheris run over every target, niced; figures at the end of each part.
#   fuzz/run_atheris.sh [SCALE]   (SCALE 1 = 1,150,000 inputs in all; crashes in /tmp/twm-fuzz)
# "imap+" is the imap target with the IMAP-aware mutator mixed in (--structured).
set -u
cd "$(dirname "$0")/.." || exit 2
scale=${1:-1}
status=0
for spec in wire:400000 imap:250000 imap+:100000 mime:150000 cops:150000 mutf7:100000; do
    target=${spec%%:*}
    runs=$(( ${spec#*:} * scale ))
    extra=""
    case $target in *+) target=${target%+}; extra=--structured ;; esac
    nice -n 19 .venv/bin/python fuzz/atheris_imap.py --target "$target" $extra \
        -atheris_runs="$runs" -print_final_stats=1 2>&1 \
        | grep -E '^\[atheris_imap\]|CRASH|Traceback|ERROR|timeout|out-of-memory' || true
    [ -z "$(ls /tmp/twm-fuzz/crashes 2>/dev/null)" ] || status=1
done
exit $status
