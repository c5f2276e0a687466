#!/bin/bash
# Runs ctest with the given arguments (which must include --test-dir DIR), then lists the tests
# that did not run and why: the last line of each one's output that says "skipped" (every test
# that can skip prints one, e.g. "test_nccl: skipped: no CUDA device"). Exits with ctest's
# status.
set -uo pipefail
dir=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[i]}" = --test-dir ] && dir=${args[i + 1]:-}
done
[ -n "$dir" ] || { echo "ctest_skipped.sh: pass --test-dir DIR" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
ctest "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

# ctest's summary lines: "<TAB> 34 - gpu_cuda_parity (Skipped)".
mapfile -t skipped < <(sed -n '/^The following tests did not run:/,/^$/p' "$out" |
                       sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (\(.*\))$/\1 (\2)/p')
if [ ${#skipped[@]} -gt 0 ]; then
    echo "Tests that did not run in $dir, and why:"
    for entry in "${skipped[@]}"; do
        name=${entry% (*}
        why=$(awk -v name="$name" '
            $0 ~ "^[0-9]+/[0-9]+ Test: " && $3 == name { inside = 1; next }
            inside && /^<end of output>$/ { exit }
            inside && tolower($0) ~ /skipped/ { line = $0 }
            END { print line }' "$dir/Testing/Temporary/LastTest.log" 2>/dev/null)
        echo "  $entry: ${why:-(the test printed no reason)}"
    done
fi
exit "$rc"
