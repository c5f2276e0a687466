#!/bin/bash
# memory_table.sh LAWT_DIST [SOURCE_DIR]: the table of jobs/README.md between its
# "memory:begin" and "memory:end" markers, from lawt_dist --memory-plan cuda on every paper job
# (jobs/*.ini but the quick-start and test jobs, and jobs/d3/*.ini), one rank at the job's
# per-rank batch. A GPU fits a job when the plan plus the CUDA context (0.5 GiB, which
# the plan does not count) is within the memory the GPU reports: V100 32 GB (32510 MiB),
# A100 and H100 80 GB (81559 MiB, the H100's, the smaller), H200 141 GB (143771 MiB).
#   scripts/memory_table.sh build/trainer/lawt_dist            # print the table
#   scripts/memory_table.sh build/trainer/lawt_dist --update   # rewrite it in jobs/README.md
#   scripts/memory_table.sh build/trainer/lawt_dist --check    # exit 1 when it differs
set -uo pipefail
dist=$1 mode=${2:-print}
src=$(cd "$(dirname "$0")/.." && pwd)
mib=$((1 << 20))
context=$((512 * mib))
table() {
    echo "| job | parameters | batch per rank | planned per GPU | with recompute = layer | V100 32 GB | A100/H100 80 GB | H200 141 GB |"
    echo "|---|---:|---:|---:|---:|:-:|:-:|:-:|"
    for ini in "$src"/jobs/*.ini "$src"/jobs/d3/*.ini; do
        name=${ini#"$src"/jobs/}
        case $name in quickstart.ini | test_*.ini | reference_*.ini) continue ;; esac
        line=$("$dist" --config "$ini" --memory-plan cuda 2>&1 | grep '^memory bytes') &&
            lean=$("$dist" --config "$ini" --memory-plan cuda --set model.recompute=layer 2>&1 |
                   grep '^memory bytes') || {
            echo "memory_table.sh: $name: no memory plan" >&2
            exit 1
        }
        total=$(sed 's/.* total=\([0-9]*\).*/\1/' <<< "$line")
        recomputed=$(sed 's/.* total=\([0-9]*\).*/\1/' <<< "$lean")
        params=$(sed 's/.* params=\([0-9]*\).*/\1/' <<< "$line")
        batch=$(sed 's/.* batch_per_rank=\([0-9]*\).*/\1/' <<< "$line")
        fits=""
        for cap in 32510 81559 143771; do
            if [ $((total + context)) -le $((cap * mib)) ]; then fits+=" yes |"
            elif [ $((recomputed + context)) -le $((cap * mib)) ]; then fits+=" with recompute |"
            else fits+=" no |"; fi
        done
        awk -v n="$name" -v p="$params" -v b="$batch" -v t="$total" -v r="$recomputed" -v f="$fits" \
            'BEGIN { printf "| `%s` | %.1f M | %d | %.2f GiB | %.2f GiB |%s\n", n, p / 4 / 1e6, b,
                     t / 2^30, r / 2^30, f }'
    done
}
case $mode in
print) table ;;
--update | --check)
    readme=$src/jobs/README.md
    new=$(mktemp)
    table > "$new.table" || exit 1
    awk -v t="$new.table" '
        /<!-- memory:end -->/ { while ((getline l < t) > 0) print l; skip = 0 }
        !skip { print }
        /<!-- memory:begin -->/ { skip = 1 }' "$readme" > "$new"
    if [ "$mode" = --update ]; then
        cp "$new" "$readme"
        status=0
    else
        diff -u "$readme" "$new"
        status=$?
        [ $status -eq 0 ] || echo "jobs/README.md's memory table is stale: scripts/memory_table.sh LAWT_DIST --update" >&2
    fi
    rm -f "$new" "$new.table"
    exit $status
    ;;
*) echo "usage: memory_table.sh LAWT_DIST [--update | --check]" >&2; exit 2 ;;
esac
