#!/bin/bash
# The CPU-scale reproduction of the nine tasks (issue 16): trains jobs/cpu/TASK.ini into
# RUNS/TASK, and writes the results table from the run directories.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TASKS="transpose add matvec matmul eigenvalues singularvalues eigenvectors svd inversion"
RUNS=runs/cpu
BUILD="$ROOT/build"
LANES=2
OUT=

usage() {
    cat <<EOF
usage: scripts/cpu_scale.sh run [options] [TASK...]
       scripts/cpu_scale.sh table [options]

run     trains jobs/cpu/TASK.ini into RUNS/TASK for each TASK (default: all nine, in the
        order $TASKS),
        LANES runs side by side (each job file asks for one thread). A run directory that
        holds checkpoints is resumed from its latest one; a finished run is left alone.
table   prints the results table (markdown) from RUNS/*/: task, size, encoding, model,
        examples seen, wall time, examples/s, accuracy at 5/2/1/0.5% in L1, the paper's L2
        and L-infinity at the last evaluation, the issue's target, and the paper's figure
        at its own scale (the "; paper:" line of jobs/cpu/TASK.ini). The rest comes from
        the resolved configuration each run wrote (RUN/config.ini). A run still training or stopped
        shows its latest evaluation and says so; a missing one shows as missing.

options:
  --runs DIR     run directories' parent (default $RUNS)
  --build DIR    build tree holding trainer/lawt_dist (default $BUILD)
  --lanes N      runs side by side (run; default $LANES)
  --out FILE     table: also append it to FILE, under a heading with date, commit, machine
  --help         this text
EOF
}

die() { echo "cpu_scale.sh: $*" >&2; exit 2; }

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in
    --help|-h) usage; exit 0 ;;
    run|table) MODE=$1; shift ;;
    *) die "unknown command '$1' (allowed: run, table; --help)" ;;
esac
SELECTED=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a directory}; shift 2 ;;
        --build) BUILD=${2:?--build needs a directory}; shift 2 ;;
        --lanes) LANES=${2:?--lanes needs a number}; shift 2 ;;
        --out) OUT=${2:?--out needs a file}; shift 2 ;;
        --help|-h) usage; exit 0 ;;
        -*) die "unknown option '$1' (--help)" ;;
        *) [ -f "$ROOT/jobs/cpu/$1.ini" ] || die "no job jobs/cpu/$1.ini (tasks: $TASKS)"
           SELECTED+=("$1"); shift ;;
    esac
done
[ ${#SELECTED[@]} -gt 0 ] || read -r -a SELECTED <<< "$TASKS"
[[ "$LANES" =~ ^[1-9][0-9]*$ ]] || die "--lanes: '$LANES' is not a positive number"

# The issue's target for each task (5% tolerance, L1).
target() {
    case "$1" in
        transpose|add|matvec) echo ">= 99" ;;
        matmul) echo ">= 95" ;;
        eigenvalues|singularvalues) echo ">= 90" ;;
        *) echo "rising" ;;
    esac
}

run_one() {
    local task=$1 dir="$RUNS/$1" log="$RUNS/$1.out"
    if [ -f "$dir/train.log" ] && grep -q '^done: ' "$dir/train.log"; then
        echo "$task: finished earlier ($dir)"; return 0
    fi
    local args=(--config "$ROOT/jobs/cpu/$task.ini" --run-dir "$dir")
    if compgen -G "$dir/step-*.h5" > /dev/null; then args=(--resume --run-dir "$dir"); fi
    echo "$task: training into $dir (log $log) $(date -u +%H:%M:%S)"
    local rc=0
    "$BUILD/trainer/lawt_dist" "${args[@]}" >> "$log" 2>&1 || rc=$?
    echo "$task: exit status $rc $(date -u +%H:%M:%S)"
    return $rc
}

if [ "$MODE" = run ]; then
    [ -x "$BUILD/trainer/lawt_dist" ] || die "no $BUILD/trainer/lawt_dist: build first (--build)"
    mkdir -p "$RUNS"
    export -f run_one
    export RUNS BUILD ROOT
    printf '%s\n' "${SELECTED[@]}" | xargs -P "$LANES" -I{} bash -c 'run_one "$@"' _ {}
    exit $?
fi

# One value of the first (uncommented) configuration block of a run directory's config.ini.
config_value() { # file section key
    awk -v sec="[$2]" -v key="$3" '
        /^; ----/ { exit }
        /^\[/ { cur = $0; next }
        cur == sec && $1 == key && $2 == "=" { sub(/^[^=]*=[ \t]*/, ""); print; exit }' "$1"
}

# "a / b / c / d" of one norm's object in an eval record: its first occurrence, the
# in-distribution test set's (out-of-distribution sets and groups nest their own after it).
accuracies() { # record field
    echo "$1" | awk -v field="\"$2\":[{][^}]*[}]" '
        match($0, field) {
            body = substr($0, RSTART, RLENGTH); sub(/^[^{]*[{]/, "", body); sub(/[}]$/, "", body)
            n = split(body, pairs, ","); s = ""
            for (i = 1; i <= n; i++) { split(pairs[i], kv, ":"); s = s (i > 1 ? " / " : "") kv[2] }
            print s
        }'
}

# A number field of a record, its first occurrence.
number() { echo "$1" | awk -v field="\"$2\":[0-9.eE+-]+" 'match($0, field) { v = substr($0, RSTART, RLENGTH); sub(/^[^:]*:/, "", v); print v }'; }

table() {
    echo "| task | size | encoding | model (enc/dec x dims) | examples | wall | ex/s | L1 5 / 2 / 1 / 0.5% | paper's L2 | L-inf | well-formed | target (5%, L1) | status | the paper, at its scale |"
    echo "|---|---|---|---|---:|---:|---:|---|---|---|---:|---|---|---|"
    for task in "${SELECTED[@]}"; do
        local dir="$RUNS/$task" cfg="$RUNS/$task/config.ini"
        if [ ! -f "$cfg" ] || [ ! -f "$dir/metrics.jsonl" ]; then
            echo "| $task | | | | | | | missing | | | | $(target "$task") | not run | |"
            continue
        fi
        local rows cols enc encout el dl dims ddims size encoding model paper
        rows=$(config_value "$cfg" data dim); cols=$(config_value "$cfg" data dim2)
        size="${rows}x${cols:-$rows}"
        enc=$(config_value "$cfg" data encoding); encout=$(config_value "$cfg" data out_encoding)
        encoding=$enc${encout:+ / $encout}
        el=$(config_value "$cfg" model enc_layers); dl=$(config_value "$cfg" model dec_layers)
        dims=$(config_value "$cfg" model enc_dim); ddims=$(config_value "$cfg" model dec_dim)
        [ "$ddims" = "$dims" ] || dims="$dims/$ddims"
        model="$el/$dl x $dims"
        paper=$(sed -n 's/^; paper: //p' "$ROOT/jobs/cpu/$task.ini" 2> /dev/null | head -1)
        local last status examples time
        last=$(grep '"type":"eval"' "$dir/metrics.jsonl" | grep -v '"law"' | tail -1 || true)
        if grep -q '^done: ' "$dir/train.log" 2> /dev/null; then status=done
        elif [ -f "$dir/run.lock" ] && pgrep -f "lawt_dist.*$dir" > /dev/null; then status="training"
        else status="stopped"; fi
        if [ -z "$last" ]; then
            echo "| $task | $size | $encoding | $model | | | | no evaluation yet | | | | $(target "$task") | $status | $paper |"
            continue
        fi
        examples=$(number "$last" examples); time=$(number "$last" time)
        local rate wall
        rate=$(awk -v e="$examples" -v t="$time" 'BEGIN { if (t > 0) printf "%.0f", e / t }')
        wall=$(awk -v t="$time" 'BEGIN { printf "%d min", t / 60 + 0.5 }')
        echo "| $task | $size | $encoding | $model | $examples | $wall | $rate | $(accuracies "$last" acc) | $(accuracies "$last" acc_l2) | $(accuracies "$last" acc_linf) | $(number "$last" well_formed) | $(target "$task") | $status | $paper |"
    done
}

if [ -n "$OUT" ]; then
    {
        echo
        echo "## CPU-scale reproduction, $(date -u '+%Y-%m-%d %H:%M') UTC"
        echo
        echo "machine \`$(hostname)\`, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; commit $(git -C "$ROOT" rev-parse --short HEAD); run directories $RUNS"
        echo
        table
    } | tee -a "$OUT"
else
    table
fi
