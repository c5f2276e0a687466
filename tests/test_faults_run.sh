#!/bin/bash
# test_faults_run.sh MODE LAWT_DIST SOURCE_DIR WORK_DIR [LAUNCHER...]: fault injection into
# training runs (tests/README.md, "Fault injection: training runs", has the table).
#   killwrite   10 trials of kill -9 aimed at a checkpoint write (the moment a .tmp exists):
#               every restart resumes from the latest complete checkpoint, removes the stray
#               .tmp naming it, and the run ends with the losses of a straight run, bit for bit,
#               over the steps the trials reached (+2)
#   diskfull    writes failing with ENOSPC (LAWT_FAULT_WRITE_FAIL_AFTER, and a real tmpfs of
#               1.5 checkpoints where mount works): status 74, file and errno named, no .tmp left, the
#               earlier checkpoint intact and resumable; a SIGTERM whose checkpoint cannot be
#               written: 74 too; a torn last line of metrics.jsonl is ended and kept on resume
#   mpikill LAUNCHER...  rank 1 killed (-9) under the launcher: the job ends non-zero within
#               10 s, no lawt_dist left; rank 1's SIGTERM: rank 0 names "another rank"
#   nan         the loss NaN at step 14 (LAWT_FAULT_NAN_AT_STEP): status 65, the step named, no
#               checkpoint after step 10, which resumes to the end
#   startup     SIGTERM while the model is built (fresh) or a checkpoint loads (--resume), or
#               during a long --evaluate: status 75 and a message, not 143
#   evaluate    --evaluate without --run-dir writes no file, with --config (the run's own
#               config.ini, run.dir naming it) or without; with --run-dir it appends, never
#               rewriting a byte of the history
#   lock        a second lawt_dist on a run directory in use: status 73 naming host and PID;
#               a new run in a directory with checkpoints: refused (2)
set -uo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"
mode=$1 dist=$2 src=$3 work=$4
shift 4
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

# expect_status "what" STATUS REGEX LOG: the recorded status ($rc) and a line of LOG.
expect_status() {
    local what=$1 status=$2 regex=$3 log=$4
    [ "$rc" = "$status" ] || { fail "$what: exit status $rc, expected $status"; tail -n 5 "$log" >&2; }
    grep -Eq -- "$regex" "$log" || { fail "$what: no line matches '$regex'"; tail -n 5 "$log" >&2; }
}

# The training losses of a metrics file, the last record of each step: "step loss" lines.
losses() {
    sed -n 's/^{"type":"train","step":\([0-9]*\),.*"loss":\([^,]*\),.*/\1 \2/p' "$1" |
        awk '{ last[$1] = $2 } END { for (s in last) print s, last[s] }' | sort -n
}

# The quick-start task on a 52k-parameter model (670 kB checkpoints), batches of 4, one
# thread: a step takes milliseconds here, and a tenth of a second under the sanitizers.
QUICK=(--config "$src/jobs/quickstart.ini" --set model.dim=16 --set model.heads=2
       --set train.batch_size=4 --set train.threads=1 --set train.log_every=1 --set train.warmup=3)
# One step an epoch, so a checkpoint (eval.size=0: no evaluation) after every step.
EVERY_STEP=("${QUICK[@]}" --set train.epoch_size=4 --set train.epochs=1000 --set eval.size=0)

# wait_for FILE REGEX SECONDS: until a line of FILE matches.
wait_for() {
    local i
    for i in $(seq 1 $(($3 * 20))); do
        grep -Eqs -- "$2" "$1" && return 0
        sleep 0.05
    done
    return 1
}

# wait_handler PID: until PID catches SIGTERM and SIGUSR1 (lawt_dist installed its handler).
wait_handler() {
    local i mask
    for i in $(seq 1 400); do
        mask=$(awk '/^SigCgt/ { print $2 }' "/proc/$1/status" 2>/dev/null)
        [ -n "$mask" ] && (( (0x$mask >> 14) & (0x$mask >> 9) & 1 )) && return 0
        sleep 0.01
    done
    return 1
}

# rank_pid DIR R: the process of rank R of the job writing DIR.
rank_pid() {
    local p
    for p in $(pgrep -f "lawt_dist .*--run-dir $1( |$)"); do
        tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null |
            grep -Eqx "(OMPI_COMM_WORLD_RANK|PMI_RANK)=$2" && { echo "$p"; return 0; }
    done
    return 1
}

case $mode in
killwrite)
    # The trials run towards step 1000 (never reached: the schedule's length, not the kills,
    # decides the losses); the comparison is over the steps they reached.
    hits=0
    for trial in $(seq 1 10); do
        resume=() done=0
        if compgen -G "run/step-*.h5" > /dev/null; then
            resume=(--resume)
            done=$(ls run/step-*.h5 | tail -n 1 | sed 's/.*step-0*\([0-9]*\)\.h5/\1/')
        fi
        # Aimed at the write of the 1st, 2nd or 3rd step after the restart.
        target=$((done + 1 + trial % 3))
        "$dist" "${EVERY_STEP[@]}" --run-dir run "${resume[@]}" > "trial$trial.log" 2>&1 &
        pid=$!
        # Past the start (stray files removed, checkpoint loaded), at the step's write.
        wait_for "trial$trial.log" "^train .* step $target/" 60 || fail "trial $trial: no step $target"
        end=$((SECONDS + 2))
        while [ $SECONDS -lt $end ] && ! compgen -G "run/*.h5.tmp" > /dev/null; do :; done
        kill -9 "$pid" 2> /dev/null
        wait "$pid"
        if compgen -G "run/*.h5.tmp" > /dev/null; then
            hits=$((hits + 1))
            stray=$(cd run && ls *.h5.tmp | head -n 1)
            echo "trial $trial: killed during the write of $stray"
        else
            stray=
            echo "trial $trial: killed between writes"
        fi
        # The next start must resume from the latest checkpoint (it waits for a step after
        # it: the load worked) and say it removed the stray .tmp.
        next_stray[$trial]=$stray
        next_latest[$trial]=$(ls run/step-*.h5 2> /dev/null | tail -n 1)
    done
    # Two steps past the last one any trial recorded, straight and after the kills.
    N=$(($(losses run/metrics.jsonl | tail -n 1 | cut -d' ' -f1) + 2))
    "$dist" "${EVERY_STEP[@]}" --set train.max_steps=$N --run-dir straight > straight.log 2>&1 ||
        { fail "straight run"; tail -n 5 straight.log >&2; }
    rc=0
    resume=()
    compgen -G "run/step-*.h5" > /dev/null && resume=(--resume)
    "$dist" "${EVERY_STEP[@]}" --set train.max_steps=$N --run-dir run "${resume[@]}" > final.log 2>&1 ||
        rc=$?
    [ "$rc" = 0 ] || { fail "the final resume: status $rc"; tail -n 5 final.log >&2; }
    # The start after each kill resumed from the latest checkpoint, and named the stray file
    # it removed.
    for trial in $(seq 1 10); do
        next=$((trial + 1))
        log=trial$next.log
        [ $next -le 10 ] || log=final.log
        latest=${next_latest[$trial]:-}
        [ -z "$latest" ] || grep -q "^resume from $latest at step" "$log" ||
            fail "the start after trial $trial did not resume from $latest"
        s=${next_stray[$trial]:-}
        [ -z "$s" ] || grep -q "removed .*temporary file.*$s" "$log" ||
            fail "the start after trial $trial did not remove $s"
    done
    compgen -G "run/*.tmp" > /dev/null && fail "temporary files left: $(ls run/*.tmp)"
    echo "$hits of 10 kills hit a checkpoint write; the run resumed to step $N"
    [ $hits -ge 1 ] || fail "no kill hit a write: this test could not tell"
    losses straight/metrics.jsonl > straight.txt
    losses run/metrics.jsonl > run.txt
    [ "$(wc -l < run.txt)" -eq $N ] || fail "expected $N losses after the kills, got $(wc -l < run.txt)"
    cmp -s straight.txt run.txt || { fail "the losses after 10 kills differ from a straight run"; diff straight.txt run.txt >&2; }
    ;;
diskfull)
    # The size of a checkpoint, from a 1-step run.
    "$dist" "${EVERY_STEP[@]}" --set train.max_steps=1 --run-dir probe > probe.log 2>&1 ||
        fail "a 1-step run"
    size=$(stat -c %s probe/step-000000001.h5)
    # 1. Room for one checkpoint and a half: the second fails mid-write.
    rc=0
    LAWT_FAULT_WRITE_FAIL_AFTER=$((size * 3 / 2)) "$dist" "${EVERY_STEP[@]}" --set train.max_steps=5 \
        --run-dir full > full.log 2>&1 || rc=$?
    expect_status "checkpoint write fails" 74 \
        'error: checkpoint full/step-000000002.h5: writing full/step-000000002.h5.tmp .*No space left on device \(errno 28\)' full.log
    grep -q "stopped at step 2: .*the latest checkpoint there: full/step-000000001.h5" full.log ||
        fail "the stop does not name the latest checkpoint"
    compgen -G "full/*.tmp" > /dev/null && fail "a .tmp is left after the failed write"
    rc=0
    "$dist" --resume --run-dir full --set train.max_steps=3 > full2.log 2>&1 || rc=$?
    expect_status "resume after the full disk" 0 "resume from full/step-000000001.h5 at step 1" full2.log
    # 2. train.log / metrics.jsonl fail mid-line: the run stops, its checkpoint keeps the history.
    rc=0
    LAWT_FAULT_WRITE_FAIL_AFTER=1500 "$dist" "${EVERY_STEP[@]}" --set train.max_steps=5 \
        --run-dir logs > logs.log 2>&1 || rc=$?
    expect_status "log write fails" 74 'error: writing logs/(train.log|metrics.jsonl) failed: No space left on device \(errno 28\)' logs.log
    # 3. SIGTERM, and the checkpoint it writes does not fit: 74, not 139 nor 75.
    LAWT_FAULT_WRITE_FAIL_AFTER=$((size / 2)) "$dist" "${QUICK[@]}" --set eval.size=0 --run-dir term \
        > term.log 2>&1 &
    pid=$!
    wait_for term.log '^train ' 60 || fail "no training line before SIGTERM"
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    expect_status "SIGTERM on a full disk" 74 'error: checkpoint term/step-.*errno 28' term.log
    grep -q "stopping at step [0-9]* on signal 15" term.log || fail "no stop line for SIGTERM"
    # 4. A torn last record (a kill or a full disk mid-line) is ended, kept, never cut.
    cp full/metrics.jsonl before.jsonl
    printf '{"type":"train","step":4,"exam' >> full/metrics.jsonl
    torn_size=$(stat -c %s full/metrics.jsonl)
    rc=0
    "$dist" --resume --run-dir full --set train.max_steps=4 > torn.log 2>&1 || rc=$?
    expect_status "resume after a torn record" 0 "warning: full/metrics.jsonl ended inside a line" torn.log
    cmp -s -n "$torn_size" full/metrics.jsonl <(cat before.jsonl; printf '{"type":"train","step":4,"exam') ||
        fail "the history before the torn record changed"
    [ "$(head -c $((torn_size + 1)) full/metrics.jsonl | tail -c 1 | od -An -c | tr -d ' ')" = '\n' ] ||
        fail "the torn record was not ended with a newline"
    # 5. A real full disk: a tmpfs of one checkpoint and a half (root, where mount is allowed; skipped elsewhere).
    mkdir -p tmpfs
    if mount -t tmpfs -o size=$((size * 3 / 2 / 1024))k lawt-test tmpfs 2> /dev/null; then
        rc=0
        "$dist" "${EVERY_STEP[@]}" --set train.max_steps=5 --run-dir tmpfs/run > tmpfs.log 2>&1 ||
            rc=$?
        expect_status "a full tmpfs" 74 'error: checkpoint tmpfs/run/step-000000002.h5: .*errno 28' tmpfs.log
        compgen -G "tmpfs/run/*.tmp" > /dev/null && fail "a .tmp is left on the full tmpfs"
        rc=0
        "$dist" --evaluate tmpfs/run/step-000000001.h5 --set eval.size=1 > tmpfs2.log 2>&1 || rc=$?
        [ "$rc" = 0 ] || fail "the checkpoint before the full disk does not load"
        umount tmpfs || umount -l tmpfs
    else
        echo "mount -t tmpfs not allowed here: the real full disk is skipped (the hook ran)"
    fi
    ;;
mpikill)
    [ $# -gt 0 ] || { echo "mpikill needs a launcher" >&2; exit 2; }
    "$@" "$dist" "${QUICK[@]}" --set eval.size=0 --run-dir "$work/mk" > mk.log 2>&1 &
    pid=$!
    wait_for mk.log '^train ' 60 || fail "no training line"
    victim=$(rank_pid "$work/mk" 1) || fail "no rank 1 found"
    start=$(date +%s.%N)
    kill -9 "$victim"
    rc=0
    timeout -k 2 30 tail --pid="$pid" -f /dev/null
    wait "$pid" || rc=$?
    elapsed=$(echo "$(date +%s.%N) - $start" | bc)
    echo "rank killed: the job ended with status $rc after $elapsed s"
    [ "$rc" != 0 ] || fail "the job exited 0 after a rank was killed"
    [ "$(echo "$elapsed < 10" | bc)" = 1 ] || fail "the job took $elapsed s to end (limit 10)"
    sleep 0.5
    left=$(pgrep -f "lawt_dist .*--run-dir $work/mk")
    [ -z "$left" ] || { fail "processes left: $left"; kill -9 $left; }
    # SIGTERM to rank 1 only: every rank stops at the same step, rank 0 names the cause.
    "$@" "$dist" "${QUICK[@]}" --set eval.size=0 --run-dir "$work/mt" > mt.log 2>&1 &
    pid=$!
    wait_for mt.log '^train ' 60 || fail "no training line"
    victim=$(rank_pid "$work/mt" 1) || fail "no rank 1 found"
    kill -TERM "$victim"
    rc=0
    wait "$pid" || rc=$?
    expect_status "SIGTERM to rank 1" 75 "stopping at step [0-9]+ on a stop signal that another rank received" mt.log
    ;;
nan)
    rc=0
    LAWT_FAULT_NAN_AT_STEP=14 "$dist" "${QUICK[@]}" --set train.epoch_size=40 --set eval.size=0 \
        --set train.max_steps=20 --run-dir run > nan.log 2>&1 || rc=$?
    expect_status "NaN loss" 65 "error: the loss is nan at step 14: .*no checkpoint written \(the latest: run/step-000000010.h5\)" nan.log
    [ "$(ls run/*.h5)" = run/step-000000010.h5 ] || fail "checkpoints after the NaN: $(ls run/*.h5)"
    [ "$(losses run/metrics.jsonl | tail -n 1 | cut -d' ' -f1)" = 13 ] || fail "a loss recorded after step 13"
    rc=0
    "$dist" --resume --run-dir run > resume.log 2>&1 || rc=$?
    expect_status "resume after the NaN" 0 "^done: 20 steps" resume.log
    ;;
startup)
    # A bigger model (4M parameters) takes a moment to build: the signal comes in it.
    BIG=("${QUICK[@]}" --set model.dim=256 --set model.heads=4 --set model.layers=2 --set eval.size=0)
    "$dist" "${BIG[@]}" --run-dir fresh > fresh.log 2>&1 &
    pid=$!
    wait_handler "$pid" || fail "the stop handler was never installed"
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    expect_status "SIGTERM while building" 75 "stopping before training on signal 15" fresh.log
    # 1M parameters: a 12 MB checkpoint takes a moment to load.
    "$dist" "${QUICK[@]}" --set model.dim=128 --set model.heads=4 --set model.layers=2 --set eval.size=0 \
        --set train.max_steps=2 --run-dir run > run.log 2>&1 || fail "a 2-step run"
    "$dist" --resume --run-dir run --set train.max_steps=4 > resume.log 2>&1 &
    pid=$!
    wait_handler "$pid" || fail "the stop handler was never installed"
    kill -USR1 "$pid"
    rc=0
    wait "$pid" || rc=$?
    expect_status "SIGUSR1 while resuming" 75 "stopping (before training|at step [0-9]+) on signal 10" resume.log
    # A long --evaluate (5000 examples in batches of 100) stops between two batches.
    "$dist" --evaluate run/step-000000002.h5 --set eval.size=5000 --set eval.batch_size=100 \
        > evaluate.log 2>&1 &
    pid=$!
    wait_for evaluate.log '^evaluating ' 60 || fail "the evaluation never started"
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    expect_status "SIGTERM during --evaluate" 75 "stopping the evaluation on signal 15 \(Terminated\): no result recorded" evaluate.log
    ;;
evaluate)
    "$dist" "${QUICK[@]}" --set eval.size=20 --set train.max_steps=4 --run-dir run > run.log 2>&1 ||
        fail "a 4-step run"
    find . -type f ! -name '*.log' ! -name '*.txt' | sort | xargs md5sum > before.txt
    "$dist" --evaluate run/step-000000004.h5 --set eval.size=20 > e1.log 2>&1 || fail "--evaluate"
    # The run's own resolved configuration says dir = run.
    "$dist" --evaluate run/step-000000004.h5 --config run/config.ini --set eval.size=20 > e2.log 2>&1 ||
        fail "--evaluate --config run/config.ini (run.dir = run)"
    find . -type f ! -name '*.log' ! -name '*.txt' | sort | xargs md5sum > after.txt
    diff before.txt after.txt > /dev/null ||
        { fail "--evaluate without --run-dir changed files"; diff before.txt after.txt >&2; }
    grep -q '^eval .* 20 test examples' e1.log || fail "--evaluate printed no evaluation"
    cp run/metrics.jsonl history.jsonl
    cp run/config.ini config_before.ini
    "$dist" --evaluate run/step-000000004.h5 --set eval.size=20 --set data.dim=4 --run-dir run \
        > e3.log 2>&1 || fail "--evaluate --run-dir run"
    cmp -s -n "$(stat -c %s history.jsonl)" history.jsonl run/metrics.jsonl ||
        fail "--evaluate --run-dir rewrote the history"
    [ "$(grep -c '"type":"eval"' run/metrics.jsonl)" -gt "$(grep -c '"type":"eval"' history.jsonl)" ] ||
        fail "--evaluate --run-dir did not append its evaluation"
    cmp -s -n "$(stat -c %s config_before.ini)" config_before.ini run/config.ini ||
        fail "config.ini was rewritten"
    grep -q '^; dim = 4' run/config.ini || fail "the evaluation's configuration is not appended to config.ini"
    ;;
lock)
    "$dist" "${QUICK[@]}" --set eval.size=0 --run-dir run > first.log 2>&1 &
    pid=$!
    wait_for first.log '^train ' 60 || fail "no training line"
    rc=0
    "$dist" "${QUICK[@]}" --set eval.size=0 --run-dir run > second.log 2>&1 || rc=$?
    expect_status "a second trainer" 73 \
        "run directory run is in use by another lawt_dist \(host $(hostname), PID $pid, run/run.lock\)" second.log
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    expect_status "the first trainer, stopped" 75 "stopping at step" first.log
    rc=0
    "$dist" "${QUICK[@]}" --set eval.size=0 --run-dir run > third.log 2>&1 || rc=$?
    expect_status "a new run over a history" 2 "run directory run already holds a run \(run/step-[0-9]+.h5\): continue it with --resume" third.log
    rc=0
    "$dist" --resume --run-dir run --set train.max_steps=1 > fourth.log 2>&1 || rc=$?
    expect_status "a resume once the lock is free" 0 "^resume from" fourth.log
    ;;
*)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac

[ $failures -eq 0 ] && echo "test_faults_run $mode: passed"
exit $((failures > 0))
