#!/bin/bash
# test_install.sh BUILD_DIR WORK_DIR [LAUNCHER...]: the design card's commands as written.
# cmake --install puts lawt_dist and lawt_datagen in PREFIX/bin and the jobs in
# PREFIX/share/lawt/jobs; from a directory without it, "LAUNCHER PREFIX/bin/lawt_dist --config
# inversion.ini --dry-run" finds the installed job, splits its batch_per_rank = 64 over the
# ranks and prints the memory plan.
set -uo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"
build=$1 work=$2
shift 2
rm -rf "$work"
mkdir -p "$work/elsewhere"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > "$work/install.log" 2>&1 ||
    { fail "cmake --install"; cat "$work/install.log" >&2; }
for f in bin/lawt_dist bin/lawt_datagen share/lawt/jobs/inversion.ini share/lawt/jobs/README.md \
         share/lawt/jobs/slurm/train.sbatch share/lawt/jobs/slurm/README.md \
         share/lawt/jobs/d3/eigenvalues_12x12_e1-512-8-fp15_d24-1024-16-p1000.ini; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
[ -x "$prefix/bin/lawt_dist" ] || fail "lawt_dist is not executable"
"$prefix/bin/lawt_dist" --help | grep -q "share/lawt/jobs" || fail "--help does not say where jobs are found"
cd "$work/elsewhere" || exit 1
"$@" "$prefix/bin/lawt_dist" --config inversion.ini --dry-run > dry.log 2>&1 ||
    { fail "the dry run"; cat dry.log >&2; }
ranks=$(sed -n 's/^lawt .* | \([0-9]*\) ranks\{0,1\} x .*/\1/p' dry.log)
grep -q "task inversion\|^data   inversion" dry.log || fail "not the inversion job: $(grep '^data' dry.log)"
grep -q "batch_size $((64 * ranks)) = batch_per_rank 64 x $ranks rank" dry.log ||
    fail "batch line: $(grep '^train  batch' dry.log)"
grep -q "^memory per rank (.*, batch 64): " dry.log || fail "no memory plan in the start-up lines"
grep -q "^dry run: " dry.log || fail "the dry run did not finish"
"$prefix/bin/lawt_dist" --config no_such_job.ini --dry-run > missing.log 2>&1 &&
    fail "a missing job was accepted"
grep -q "no_such_job.ini" missing.log || fail "the error does not name the missing job"
exit $((failures > 0))
