#!/bin/bash
# test_tables.sh MODE BUILD_DIR SOURCE_DIR WORK_DIR: lawt_table and the grids of jobs/tables/.
#   smoke   the smoke variants of two paper grids end to end: Table 13 (three runs read at six
#           tolerances) and Table 25 (retraining: runs that start from another run's best.h5),
#           and a grid of evaluations on other data (tests/tables/ood_smoke.ini: one run, tested
#           by lawt_dist --evaluate on two other laws, and read on a law of its own eval.ood; a
#           row that names its cells' runs). Before --run every cell says "not run";
#           after it the table has the paper's layout (title, one header cell per column, one
#           line per row, the published number beside each cell) and every measured number is
#           the one in the run directory's metrics.jsonl. A second --run trains nothing; a run
#           whose train.log lost its "done:" line shows as stopped, and --run resumes it.
#           --plan and --slurm (bash -n, one array task per run group) on the same grids.
#   faults  a SIGTERM to lawt_table --run stops lawt_dist with a checkpoint (exit 75), the table
#           says where, and --run resumes it; runs whose lawt_dist fails (a NaN loss) leave the
#           runs that start from them not run, the others run, and the status is 1
#   errors  bad grid files and command lines: exit 2 and a message naming the file, the line
#           and the key
#   smoke_all  every grid of jobs/tables/, its smoke variant end to end (--smoke --run): status
#           0, every run complete, a measured number (or never) in every cell that has a run,
#           the published number beside it; grids that share runs (their headers say so) share
#           a --runs directory, and the later ones find those runs complete
#   check   every grid of jobs/tables/ (and its smoke variant) passes lawt_table --check: each
#           run's and each test's configuration is accepted by lawt_dist
set -uo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"
mode=$1 build=$2 src=$3 work=$4
table=$build/tools/lawt_table dist=$build/trainer/lawt_dist
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
# lawt_dist starts MPI, whose allocations LeakSanitizer reports as leaks (see comm.cmake).
export ASAN_OPTIONS=detect_leaks=0

# The accuracy of the last eval record of metrics file $1 in key $2 (acc, acc_l2, acc_linf) at
# tolerance $3, as lawt_table prints it (%.2f).
# The first object named $2 is the in-distribution test set's: groups by size or task and
# out-of-distribution sets nest their own after it.
metric() {
    grep '"type":"eval"' "$1" | tail -n 1 | grep -o "\"$2\":{[^}]*}" | head -n 1 |
        grep -o "\"$3\":[0-9.]*" | cut -d: -f2 | xargs printf '%.2f'
}

# The same for the out-of-distribution set $2 (eval.ood) of that record, key $3, tolerance $4;
# nothing when the record has no such set.
ood_metric() {
    grep '"type":"eval"' "$1" | tail -n 1 | grep -o '"ood":{.*' |
        grep -oE "\"$2\":\{[^{}]*(\{[^{}]*\}[^{}]*)*\}" | head -n 1 | grep -o "\"$3\":{[^}]*}" |
        grep -o "\"$4\":[0-9.]*" | cut -d: -f2 | xargs -r printf '%.2f'
}

# The cells of the markdown table of file $1 whose first cell is $2 (a row label): one a line.
cells() {
    grep -F "| $2 |" "$1" | head -n 1 | awk -F' \\| ' '{for (i = 2; i <= NF; i++) print $i}' | sed 's/ |$//'
}

# check_structure FILE TITLE NCOLS ROW_LABEL...: the table's title, header and separator with
# NCOLS columns, and a line of NCOLS cells for each row label.
check_structure() {
    local file=$1 title=$2 ncols=$3
    shift 3
    grep -qF "## $title" "$file" || fail "$file: no title '## $title'"
    local header
    header=$(grep -m1 '^| ' "$file")
    [ "$(awk -F'|' '{print NF - 2}' <<< "$header")" = $((ncols + 1)) ] ||
        fail "$file: the header has not $ncols columns: $header"
    grep -qx "|---|$(printf '%.0s---|' $(seq "$ncols"))" "$file" || fail "$file: no separator line of $ncols columns"
    for label in "$@"; do
        [ "$(cells "$file" "$label" | wc -l)" = "$ncols" ] || fail "$file: row '$label' has not $ncols cells"
    done
}

case $mode in
smoke)
    # ---- Table 13: three runs, six tolerances ----
    grid=$src/jobs/tables/table13.ini
    expect 0 "table13 before --run" 'not run \(100\)' "$table" "$grid" --runs t13 --smoke
    cp out.txt before.md
    [ "$(grep -o 'not run (' before.md | wc -l)" = 18 ] || fail "table13 before --run: not 18 cells 'not run'"
    expect 0 "table13 --plan" "--config $src/jobs/tables/../add_10x10_b1999.ini .*--set data.encoding=P100 .*--set train.max_steps=4 .*--run-dir t13/p100" \
        "$table" "$grid" --runs t13 --smoke --plan
    [ "$(grep -c -- '--run-dir' out.txt)" = 3 ] || fail "table13 --plan: not 3 commands"
    expect 0 "table13 --run" 'Runs: 3 complete' "$table" "$grid" --runs t13 --smoke --run
    # Tiny models score 0 everywhere: a last evaluation of step 4 with a different number in
    # each run, norm and tolerance (it replaces the run's own of that step, as a resumed run's
    # would) shows that each cell reads its own run, norm and tolerance.
    b=0
    for run in p100 p1000 p10000; do
        b=$((b + 1))
        record='{"type":"eval","epoch":2,"step":4,"examples":16,"time":1,"size":8'
        for key in acc acc_l2 acc_linf; do
            record+=",\"$key\":{\"10\":9$b.25,\"5\":8$b.5,\"2\":7$b.75,\"1\":6$b,\"0.5\":5$b.12,\"0.1\":4$b.01}"
            b=$((b + 3))
        done
        b=$((b - 9))
        echo "$record,\"well_formed\":100}" >> "t13/$run/metrics.jsonl"
    done
    expect 0 "table13 after --run" 'Runs: 3 complete' "$table" "$grid" --runs t13 --smoke
    cp out.txt t13.md
    grep -qF '| 2-digit precision, P100 | 91.25 (100) | 81.50 (100) | 71.75 (100) | 61.00 (99.4) | 51.12 (60.8) | 41.01 (0) |' t13.md ||
        fail "table13: the P100 row is not the last evaluation's L1 accuracies: $(grep P100 t13.md)"
    check_structure t13.md "Table 13: accuracy of 10x10 matrix addition for different precision and tolerance (30M examples) (smoke)" 6 \
        "2-digit precision, P100" "3-digit precision, P1000" "4-digit precision, P10000"
    tols=(10 5 2 1 0.5 0.1)
    for row in "p100|2-digit precision, P100|100 100 100 99.4 60.8 0" "p1000|3-digit precision, P1000|100 100 99.3 98.1 97.2 66.4" \
               "p10000|4-digit precision, P10000|99.5 99.4 99.4 99.0 98.8 17.3"; do
        IFS='|' read -r run label published <<< "$row"
        read -ra pub <<< "$published"
        mapfile -t got < <(cells t13.md "$label")
        for j in 0 1 2 3 4 5; do
            want="$(metric "t13/$run/metrics.jsonl" acc "${tols[$j]}") (${pub[$j]})"
            [ "${got[$j]}" = "$want" ] || fail "table13 $run at ${tols[$j]}%: '${got[$j]}', expected '$want'"
        done
    done
    # A second --run trains nothing.
    expect 0 "table13 --run again" "# complete: t13/p10000" "$table" "$grid" --runs t13 --smoke --run
    grep -q -- "--run-dir" out.txt && fail "table13 --run again started lawt_dist: $(grep -- --run-dir out.txt)"
    # A run that did not finish (its log without "done:") shows as stopped and is resumed.
    sed -i '/^done: /d' t13/p1000/train.log
    expect 0 "table13 with a stopped run" '\| stopped at step 4/4 \(100\) \|' "$table" "$grid" --runs t13 --smoke
    expect 0 "table13 --plan with a stopped run" "lawt_dist --resume --run-dir t13/p1000" "$table" "$grid" --runs t13 --smoke --plan
    expect 0 "table13 --run resumes" 'Runs: 3 complete' "$table" "$grid" --runs t13 --smoke --run
    grep -q -- "--resume --run-dir t13/p1000" out.txt || fail "table13 --run did not resume t13/p1000"
    expect 0 "table13 --slurm" '#SBATCH --array=0-2' "$table" "$grid" --runs t13 --smoke --slurm
    bash -n out.txt || fail "table13 --slurm: not a valid bash script"
    grep -q -- '--run --only "\$task"' out.txt || fail "table13 --slurm: no lawt_table --run --only"

    # ---- Table 25: retraining from another run's best.h5 ----
    grid=$src/jobs/tables/table25.ini
    expect 0 "table25 --plan" "run.init_from=t25/p10_5x5/best.h5 .*--run-dir t25/p10_5-6" "$table" "$grid" --runs t25 --smoke --plan
    grep -q '# task 1' out.txt && ! grep -q '# task 2' out.txt || fail "table25 --plan: not two job-array tasks"
    expect 0 "table25 --run" 'Runs: 5 complete' "$table" "$grid" --runs t25 --smoke --run
    cp out.txt t25.md
    check_structure t25.md "Table 25: model accuracy after retraining (5x5 models retrained on 5-6 and 5-7) (smoke)" 3 \
        "P10, 5-6" "P10, 5-7" "P1000, 5-6"
    grep -q "init_from.*p10_5x5/best.h5" t25/p10_5-7/config.ini || fail "table25: p10_5-7 was not started from p10_5x5"
    for row in "p10_5-6|P10, 5-6|100|99.9" "p10_5-7|P10, 5-7|100|93.6" "p1000_5-6|P1000, 5-6|100|97.7"; do
        IFS='|' read -r run label p5 p2 <<< "$row"
        mapfile -t got < <(cells t25.md "$label")
        want="$(metric "t25/$run/metrics.jsonl" acc 5) ($p5)"
        [ "${got[0]}" = "$want" ] || fail "table25 $run at 5%: '${got[0]}', expected '$want'"
        want="$(metric "t25/$run/metrics.jsonl" acc 2) ($p2)"
        [ "${got[1]}" = "$want" ] || fail "table25 $run at 2%: '${got[1]}', expected '$want'"
        [[ "${got[2]}" =~ ^(never|[0-9.e-]+M)\ \([0-9]+M\)$ ]] || fail "table25 $run examples: '${got[2]}'"
    done
    expect 0 "table25 --slurm" '#SBATCH --array=0-1' "$table" "$grid" --runs t25 --smoke --slurm
    bash -n out.txt || fail "table25 --slurm: not a valid bash script"

    # ---- evaluations on other data ----
    grid=$src/tests/tables/ood_smoke.ini
    expect 0 "ood --run" 'Runs: 2 complete' "$table" "$grid" --runs ood --smoke --run
    # The column of ood = laplace: the run's own evaluation of its eval.ood set laplace (listed
    # after positive), in the last eval record of its metrics.jsonl.
    want=$(ood_metric ood/wigner/metrics.jsonl laplace acc_l2 2)
    [ -n "$want" ] || fail "ood: the run's last eval record has no eval.ood set laplace"
    mapfile -t got < <(cells out.txt "Wigner")
    [ "${got[3]}" = "$want (7)" ] || fail "ood laplace during training: '${got[3]}', expected '$want (7)'"
    # As for Table 13: numbers that differ from test to test, in the evaluations' own files; the
    # run's own record with eval.ood sets after its test set's numbers.
    x=1
    for dir in ood/wigner ood/wigner.test-laplace ood/wigner.test-positive ood/positive_run; do
        x=$((x + 1))
        record="{\"type\":\"eval\",\"step\":4,\"examples\":16,\"acc\":{\"2\":1$x.5},\"acc_l2\":{\"2\":2$x.25},\"acc_linf\":{\"2\":3$x}"
        [ "$dir" = ood/wigner ] && for law in "positive|4" "laplace|5"; do
            IFS='|' read -r name y <<< "$law"
            [ "$name" = positive ] && record+=',"ood":{' || record+=','
            record+="\"$name\":{\"size\":8,\"acc\":{\"2\":${y}1.5},\"acc_l2\":{\"2\":${y}2.25},\"acc_linf\":{\"2\":${y}3},\"well_formed\":100,\"test_loss\":1.5}"
        done
        [ "$dir" = ood/wigner ] && record+='}'
        echo "$record}" >> "$dir/metrics.jsonl"
    done
    expect 0 "ood table" '\| Wigner \| 22.25 \(12\) \| 23.25 \| 24.25 \(3.5\) \| 52.25 \(7\) \|' "$table" "$grid" --runs ood --smoke
    cp out.txt ood.md
    check_structure ood.md "OOD smoke: a model tested on two laws (smoke)" 4 "Wigner"
    grep -q "eig_law = positive" ood/positive_run/config.ini || fail "ood: the named run positive_run is not its [run] section's"
    grep -qF "| positive, named run | $(metric ood/positive_run/metrics.jsonl acc_l2 2) |  |  |  |" ood.md ||
        fail "ood: the row of runs = positive_run - - - is not that run's number and three empty cells: $(grep 'named run' ood.md)"
    mapfile -t got < <(cells ood.md "Wigner")
    want="$(ood_metric ood/wigner/metrics.jsonl laplace acc_l2 2)"
    [ "${got[3]}" = "$want (7)" ] || fail "ood laplace during training: '${got[3]}', expected '$want (7)'"
    mapfile -t got < <(cells ood.md "Wigner")
    want="$(metric ood/wigner/metrics.jsonl acc_l2 2)"
    [ "${got[0]}" = "$want (12)" ] || fail "ood own: '${got[0]}', expected '$want (12)'"
    for test in "1|laplace|" "2|positive| (3.5)"; do
        IFS='|' read -r j law published <<< "$test"
        grep -q "eig_law = $law" "ood/wigner.test-$law/config.ini" || fail "ood: test $law did not evaluate on $law"
        want="$(metric "ood/wigner.test-$law/metrics.jsonl" acc_l2 2)$published"
        [ "${got[$j]}" = "$want" ] || fail "ood $law: '${got[$j]}', expected '$want'"
    done
    ;;
faults)
    # A SIGTERM to lawt_table --run reaches lawt_dist, which checkpoints and stops: exit 75; the
    # table says where it stopped, and --run resumes it.
    grid=$src/tests/tables/stop.ini
    "$table" "$grid" --runs stop --run > run1.txt 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        grep -q '^train .*| step [1-9]' stop/base/train.log 2> /dev/null && break
        sleep 0.1
    done
    kill -TERM "$pid"
    wait "$pid"
    status=$?
    [ "$status" = 75 ] || { fail "SIGTERM to lawt_table --run: exit status $status, expected 75"; cat run1.txt >&2; }
    compgen -G "stop/base/step-*.h5" > /dev/null || fail "no checkpoint after the stop"
    expect 0 "the table of a stopped run" '\| transpose 3x3 \| stopped at step [0-9]+/60 \|' "$table" "$grid" --runs stop
    expect 0 "--run resumes the stopped run" 'Runs: 1 complete' "$table" "$grid" --runs stop --run
    grep -q -- "--resume --run-dir stop/base" out.txt || fail "--run did not resume stop/base"
    mapfile -t got < <(cells out.txt "transpose 3x3")
    [ "${got[0]}" = "$(metric stop/base/metrics.jsonl acc 5)" ] || fail "the resumed run's cell: '${got[0]}'"
    # Runs that fail (a NaN loss at step 2: lawt_dist exits 65): the runs that start from them
    # are not run, the others still are, the status is 1 and no cell has a number.
    expect 1 "failing runs" 'p10_5-6 not run: it starts from p10_5x5, which did not complete' \
        env LAWT_FAULT_NAN_AT_STEP=2 "$table" "$src/jobs/tables/table25.ini" --runs t25 --smoke --run
    grep -q "p1000_5x5 failed (exit status 65)" out.txt || fail "table25 with NaN: p1000_5x5 not run or not failed"
    grep -Eq '\| P10, 5-6 \| not run \(100\) \| not run \(99.9\) \| not run \(10M\) \|' out.txt ||
        fail "table25 with NaN: the retraining rows are not 'not run': $(grep 'P10, 5-6' out.txt)"
    grep -q 'Runs: 0 complete, 0 training now, 2 stopped or failed, 3 not run.' out.txt ||
        fail "table25 with NaN: $(grep Runs: out.txt)"
    ;;
errors)
    # No lawt_dist runs here but the last --check: lawt_table itself is checked for leaks.
    export ASAN_OPTIONS=detect_leaks=1
    printf '[table]\ntitle = t\nconfig = %s/jobs/quickstart.ini\n[row r]\n[column c]\nsize = 3\n' "$src" > unknown.ini
    expect 2 "unknown key" 'unknown.ini:6: unknown key .size.' "$table" unknown.ini --runs x
    printf '[table]\ntitle = t\nconfig = %s/jobs/quickstart.ini\n[row r]\ntolerance = 2\n[column c]\ntolerance = 5\n' "$src" > both.ini
    expect 2 "row and column set one key" 'both.ini: \[row r\] and \[column c\] both set .tolerance.' "$table" both.ini --runs x
    printf '[table]\ntitle = t\nconfig = %s/jobs/quickstart.ini\n[row r]\ninit_from = nowhere\n[column c]\n' "$src" > from.ini
    expect 2 "init_from an unknown run" 'init_from = nowhere names no run' "$table" from.ini --runs x
    printf '[table]\ntitle = t\nconfig = %s/jobs/quickstart.ini\n[row r]\npublished = 1 2\n[column c]\n' "$src" > pub.ini
    expect 2 "published count" 'published has 2 numbers for 1 columns' "$table" pub.ini --runs x
    printf '[table]\ntitle = t\n[row r]\nset = data.dim=3\n[column c]\n' > noconfig.ini
    expect 2 "no config" 'run r has no config' "$table" noconfig.ini --runs x
    printf '[table]\ntitle = t\nconfig = x.ini\n[row r]\nset = dim=3\n[column c]\n' > set.ini
    expect 2 "set without a section" 'set.ini:5: set = .dim=3.: expected SECTION.KEY=VALUE' "$table" set.ini --runs x
    printf '[table]\ntitle = t\nconfig = x.ini\n[row r]\n[row r]\n[column c]\n' > twice.ini
    expect 2 "a row twice" 'twice.ini:5: \[row r\] is defined twice \(line 4 first\)' "$table" twice.ini --runs x
    printf '[table]\ntitle = t\nconfig = x.ini\n[row r]\nmeasure = median\n[column c]\n' > measure.ini
    expect 2 "unknown measure" 'measure = median: not one of final, best, examples_to, epochs_to' "$table" measure.ini --runs x
    printf '[table]\ntitle = t\nconfig = x.ini\n[run a]\n[row r]\nruns = a\n[column c]\n[column d]\n' > runs.ini
    expect 2 "runs count" 'runs.ini: \[row r\]: runs has 1 names for 2 columns' "$table" runs.ini --runs x
    printf '[table]\ntitle = t\nconfig = x.ini\n[run a]\n[row r]\nruns = a b\n[column c]\n[column d]\n' > runs2.ini
    expect 2 "runs names no run" "runs names 'b', which is no \\[run ID\\] section" "$table" runs2.ini --runs x
    printf '[table]\ntitle = t\nconfig = x.ini\n[run a]\n[row r]\nruns = a -\n[column c]\nset = data.dim=3\n[column d]\n' > runs3.ini
    expect 2 "runs and run keys" '\[row r\] names its cells. runs \(runs = ...\), and \[column c\] gives run keys' "$table" runs3.ini --runs x
    printf '[table]\ntitle = t\nconfig = x.ini\nood = laplace\n[row r]\n[column c]\ntest = data.eig_law=positive\n' > oodtest.ini
    expect 2 "ood and test" 'cell \(r, c\): ood = laplace reads the run.s own evaluations; test lines' "$table" oodtest.ini --runs x
    expect 2 "a missing grid" 'nothere.ini: cannot open the grid file' "$table" nothere.ini --runs x
    expect 2 "no --runs" 'runs DIR is needed' "$table" "$src/jobs/tables/table13.ini"
    expect 2 "--only without --run" '--only and --launcher go with --run' "$table" "$src/jobs/tables/table13.ini" --runs x --only 0
    expect 2 "--only out of range" '--only 7: the grid has tasks 0 to 2' "$table" "$src/jobs/tables/table13.ini" --runs x --run --only 7
    expect 0 "--help" 'usage: lawt_table' "$table" --help
    expect 0 "--help-format" 'published +the paper' "$table" --help-format
    printf '[table]\ntitle = t\nconfig = %s/jobs/quickstart.ini\nset = model.dim=63\n[row r]\n[column c]\n' "$src" > bad.ini
    ASAN_OPTIONS=detect_leaks=0 expect 1 "--check names a bad configuration" 'BAD  run base' \
        "$table" bad.ini --check --dist "$dist"
    printf '[table]\ntitle = t\nconfig = %s/jobs/reference_eigenvalues_3x3.ini\nset = eval.ood=wigner@0.50, positive\nood = laplace\n[row r]\n[column c]\n[column d]\nood = wigner@0.5\n' "$src" > ood.ini
    ASAN_OPTIONS=detect_leaks=0 expect 1 "--check: a cell reads an ood set its run does not evaluate" \
        "BAD  cell \\(r, c\\): ood = laplace, and run base has eval.ood = 'wigner@0.50, positive'" "$table" ood.ini --check --dist "$dist"
    grep -q 'BAD  cell (r, d)' out.txt && fail "--check: ood = wigner@0.5 is in eval.ood = wigner@0.50: $(grep 'BAD' out.txt)"
    grep -q '^ok   run base$' out.txt || fail "--check of ood.ini: the run's configuration not checked: $(cat out.txt)"
    ;;
smoke_all)
    for grid in "$src"/jobs/tables/*.ini; do
        name=$(basename "$grid" .ini)
        case $name in
        table07 | table19) runs=large ;;
        table11 | table27 | table28) runs=noise ;;
        table15 | table16) runs=sizes_add ;;
        *) runs=$name ;;
        esac
        [ -d "$runs" ] && shared=1 || shared=0
        start=$SECONDS
        "$table" "$grid" --runs "$runs" --smoke --run > "$name.md" 2>&1
        status=$?
        echo "$name: $((SECONDS - start)) s, runs in $runs" >> times.txt
        [ "$status" = 0 ] || { fail "$name --smoke --run: exit status $status"; grep -E 'lawt_table:|lawt_dist:|error' "$name.md" | head -n 20 >&2; }
        grep -Eq '^Runs: [0-9]+ complete, 0 training now, 0 stopped or failed, 0 not run\.$' "$name.md" ||
            fail "$name: not every run complete: $(grep '^Runs:' "$name.md")"
        [ "$shared" = 1 ] && ! grep -q "^# complete: $runs/" "$name.md" &&
            fail "$name: read none of the runs that an earlier grid made in $runs"
        # Each cell below the header: measured, then (published) when the paper has one; an
        # empty measured part is a cell the grid omits.
        numbers=0
        while IFS= read -r cell; do
            measured=$(sed -E 's/ ?\([^()]*\)$//' <<< "$cell")
            if [[ "$measured" =~ ^([0-9]+\.[0-9]{2}|[0-9.e+-]+M?|never)$ ]]; then
                numbers=$((numbers + 1))
            elif [ -n "$measured" ]; then
                fail "$name: a cell without a number: '$cell'"
            fi
        done < <(awk '/^\|---/ { rows = 1; next } rows && /^$/ { exit }
                      rows { n = split($0, a, / \| /); sub(/ \|$/, "", a[n]); for (i = 2; i <= n; i++) print a[i] }' "$name.md")
        [ "$numbers" -gt 0 ] || fail "$name: no measured number in the table"
    done
    cat times.txt
    ;;
check)
    for grid in "$src"/jobs/tables/*.ini; do
        "$table" "$grid" --check --dist "$dist" > check.txt 2>&1 || { fail "$grid --check"; grep -A3 BAD check.txt >&2; }
        "$table" "$grid" --check --smoke --dist "$dist" > check.txt 2>&1 || { fail "$grid --check --smoke"; grep -A3 BAD check.txt >&2; }
    done
    ;;
*)
    echo "test_tables.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
[ "$failures" = 0 ] && echo "PASS: tables $mode" || echo "$failures failure(s)"
[ "$failures" = 0 ]
