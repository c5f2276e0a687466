#!/bin/bash
# test_comm_fail.sh MODE STATUS MAX-SECONDS REGEX... -- COMMAND...
# Runs COMMAND (an MPI launch of test_comm_fail MODE) and checks that it ends within
# MAX-SECONDS with exit status STATUS ("nonzero" or a number) and that its output matches
# every REGEX (grep -E, one line each; "!REGEX": no line matches). For MODE "stop" it sends SIGUSR1 to the launcher once
# rank 0 has printed "ready" (a Slurm time limit or preemption notice, forwarded by the batch
# script), MAX-SECONDS counts from the signal, and every "agreed at step N" line must name one
# step.
set -u
mode=$1 status=$2 max=$3
shift 3
regexes=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do regexes+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || { echo "usage: $0 MODE STATUS MAX-SECONDS REGEX... -- COMMAND..." >&2; exit 2; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp "${TMPDIR:-/tmp}/lawt-comm-fail.XXXXXX")
trap 'rm -f "$out"' EXIT
passed=0 failed=0
check() { # check CONDITION-STATUS MESSAGE
    if [ "$1" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2" >&2; fi
}

# A hard limit well above MAX-SECONDS, so a hang is reported (as too slow) before CTest's.
timeout -k 5 40 "$@" >"$out" 2>&1 &
pid=$!
start=$(date +%s.%N)
if [ "$mode" = stop ]; then
    for _ in $(seq 1 300); do grep -q '^ready$' "$out" && break; sleep 0.1; done
    grep -q '^ready$' "$out"; check $? "rank 0 never printed ready"
    sleep 0.2
    start=$(date +%s.%N)
    # timeout(1) runs the launcher as its child: signal the launcher itself.
    launcher=$(pgrep -P "$pid" | head -n 1)
    kill -USR1 "${launcher:-$pid}"
fi
wait "$pid"
rc=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "--- output of: $*"
cat "$out"
echo "--- exit status $rc after ${elapsed} s"

if [ "$status" = nonzero ]; then
    [ "$rc" != 0 ]; check $? "exit status is 0, expected non-zero"
else
    [ "$rc" = "$status" ]; check $? "exit status $rc, expected $status"
fi
[ "$(echo "$elapsed < $max" | bc)" = 1 ]; check $? "took ${elapsed} s, expected < $max s"
for re in "${regexes[@]}"; do
    if [ "${re:0:1}" = '!' ]; then
        ! grep -Eq -- "${re:1}" "$out"; check $? "an output line matches: ${re:1}"
    else
        grep -Eq -- "$re" "$out"; check $? "no output line matches: $re"
    fi
done
if [ "$mode" = stop ]; then
    steps=$(grep -oE 'agreed at step [0-9]+$' "$out" | sort -u | wc -l)
    [ "$steps" = 1 ]; check $? "the ranks agreed at $steps different steps, expected one"
fi
echo "test_comm_fail[$mode]: $passed passed, $failed failed"
[ "$failed" = 0 ]
