#!/usr/bin/env bash
# reference_curve.sh: lawt's learning curve on jobs/reference_eigenvalues_3x3.ini against the
# paper's code (bench/reference_eigenvalues_3x3.tsv), as a table printed and appended to
# bench/RESULTS.md.
#   bench/reference_curve.sh RUN_DIR...              tabulate finished (or running) runs
#   bench/reference_curve.sh --train N BUILD SEED... train each seed for N examples first
#                                                    (side by side, one thread each), into
#                                                    runs/reference-seedS
# Environment: LAWT_BENCH_NO_APPEND=1 prints the table without appending it.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
ref=$src/bench/reference_eigenvalues_3x3.tsv
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
[ $# -gt 0 ] || { usage >&2; exit 2; }
case $1 in -h|--help) usage; exit 0 ;; esac
if [ "$1" = --train ]; then
    [ $# -ge 4 ] || { usage >&2; exit 2; }
    examples=$2 build=$3
    shift 3
    dirs=()
    for seed in "$@"; do
        dir=runs/reference-seed$seed
        [ -e "$dir" ] && { echo "reference_curve.sh: $dir exists; move it away first" >&2; exit 1; }
        OPENBLAS_NUM_THREADS=1 "$build/trainer/lawt_dist" --config "$src/jobs/reference_eigenvalues_3x3.ini" \
            --set train.seed="$seed" --set train.threads=1 --set train.max_steps=$((examples / 64)) \
            --run-dir "$dir" > "$dir.log" 2>&1 &
        dirs+=("$dir")
    done
    wait
    set -- "${dirs[@]}"
fi
for d in "$@"; do
    [ -f "$d/metrics.jsonl" ] || { echo "reference_curve.sh: $d/metrics.jsonl not found" >&2; exit 1; }
done

# "examples acc5 acc2 acc1 acc05" of every evaluation of a run
evals() {
    grep '"type":"eval"' "$1/metrics.jsonl" | sed 's/.*"examples":\([0-9]*\),.*"acc":{\([^}]*\)}.*/\1 \2/' |
        awk '{ split($2, kv, ","); printf "%s", $1; for (i = 1; i <= 4; i++) { split(kv[i], p, ":"); printf " %s", p[2] } print "" }'
}

table=$(mktemp)
trap 'rm -f "$table"' EXIT
{
    printf '| examples | paper'"'"'s code, seed 1: 5 / 2 / 1 / 0.5%% | paper'"'"'s code, 5%% mean of seeds |'
    for d in "$@"; do printf ' %s: 5 / 2 / 1 / 0.5%% |' "$(basename "$d")"; done
    printf ' lawt 5%% mean |\n|---:|---|---:|'
    for _ in "$@"; do printf -- '---|'; done
    printf -- '---:|\n'
    all=$(for d in "$@"; do evals "$d"; done | awk '{ print $1 }' | sort -n | uniq)
    for e in $all; do
        r1=$(awk -v e="$e" '!/^#/ && $1 == 1 && $2 == e { printf "%s / %s / %s / %s", $3, $4, $5, $6 }' "$ref")
        rm_=$(awk -v e="$e" '!/^#/ && $2 == e { s += $3; n++ } END { if (n) printf "%.2f (%d seeds)", s / n, n }' "$ref")
        printf '| %s | %s | %s |' "$e" "${r1:--}" "${rm_:--}"
        sum=0 n=0
        for d in "$@"; do
            row=$(evals "$d" | awk -v e="$e" '$1 == e { printf "%s / %s / %s / %s", $2, $3, $4, $5 }')
            printf ' %s |' "${row:--}"
            if [ -n "$row" ]; then
                sum=$(awk -v s="$sum" -v a="${row%% *}" 'BEGIN { print s + a }')
                n=$((n + 1))
            fi
        done
        awk -v s="$sum" -v n="$n" 'BEGIN { if (n) printf " %.2f (%d) |\n", s / n, n; else print " - |" }'
    done
} > "$table"
cat "$table"
[ "${LAWT_BENCH_NO_APPEND:-0}" = 1 ] && exit 0
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$src" diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
    printf '\n## reference_curve, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M')"
    printf 'machine `%s`, CPU %s, %s cores; commit %s; jobs/reference_eigenvalues_3x3.ini, ' \
        "$(uname -n)" "$cpu" "$(nproc)" "$commit"
    printf 'L1 accuracy (%%) on 2,000 test problems after each epoch; the paper'"'"'s code from bench/reference_eigenvalues_3x3.tsv.\n\n'
    cat "$table"
} >> "$src/bench/RESULTS.md"
echo "appended to $src/bench/RESULTS.md"
