#!/bin/bash
# test_slurm.sh LAWT_DIST SOURCE_DIR WORK_DIR
# Submits jobs/slurm/train_cpu.sbatch for real to a private single-node Slurm (slurmctld,
# slurmd and munged started here as root, all state under WORK_DIR, stopped at the end):
#   1. a short run of a tiny model (2 ranks) completes, exit code 0, with a checkpoint;
#   2. a longer run gets SIGUSR1 (what --signal=B:USR1@120 sends before the time limit):
#      lawt_dist checkpoints and exits 75, the job requeues itself, the second start resumes
#      from the checkpoint (--resume) and the job completes.
# Exits 77 (CTest: skipped) when Slurm or munge is not installed or we are not root.
set -uo pipefail
dist=$1 src=$2 work=$3
for cmd in slurmctld slurmd munged sbatch squeue scontrol scancel sinfo; do
    command -v "$cmd" >/dev/null || { echo "test_slurm: $cmd not found: skipped"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "test_slurm: needs root (private slurmd): skipped"; exit 77; }
[ -x "$dist" ] || { echo "test_slurm: FAILED: $dist does not exist (lawt_dist not built)"; exit 1; }

rm -rf "$work"
mkdir -p "$work"
D=$(cd "$work" && pwd)
passed=0 failed=0
check() { if [ "$1" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2" >&2; fi; }

# ---- a private Slurm (the recipe of toolchain.md, on random ports) ----
mkdir -p "$D"/{munge,spool/ctld,spool/d,log}
chmod 711 "$D/munge"
head -c 1024 /dev/urandom >"$D/munge/munge.key"
chmod 400 "$D/munge/munge.key"
port=$((20000 + RANDOM % 20000))
cat >"$D/slurm.conf" <<CONF
ClusterName=lawttest
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
MailProg=/bin/true
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket.2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$D/spool/ctld
SlurmdSpoolDir=$D/spool/d
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MpiDefault=pmix
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
NodeName=localhost NodeHostname=localhost CPUs=$(nproc) RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$D/slurm.conf

stop_slurm() {
    for f in "$D/slurmd.pid" "$D/slurmctld.pid"; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    sleep 1
    [ -f "$D/munge/munged.pid" ] && kill "$(cat "$D/munge/munged.pid")" 2>/dev/null
}
trap stop_slurm EXIT

munged --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket.2" \
    --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed"
check $? "munged did not start"
slurmctld -i
check $? "slurmctld did not start"
slurmd -N localhost
check $? "slurmd did not start"
up=1
for _ in $(seq 1 100); do sinfo -h -o %T 2>/dev/null | grep -q idle && { up=0; break; }; sleep 0.1; done
check $up "Slurm did not reach idle (logs in $D/log)"
if [ "$up" != 0 ]; then tail -n 20 "$D"/log/*.log; exit 1; fi

# ---- the experiment: 3x3 transposition on a tiny model ----
cat >"$D/tiny.ini" <<'INI'
[data]
task = transpose
dim = 3
encoding = P10

[model]
layers = 1
dim = 32
heads = 2

[train]
seed = 7
batch_size = 8
epoch_size = 64
epochs = 1000
warmup = 10
log_every = 1

[eval]
size = 16
INI

state_of() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
field_of() { scontrol show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -n 1 | cut -d= -f2; }
# wait_done JOB SECONDS: until the job has left the queue (COMPLETED, FAILED, ...).
wait_done() {
    local s
    for _ in $(seq 1 "$(echo "$2 * 5 / 1" | bc)"); do
        s=$(state_of "$1")
        case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) return 0 ;; esac
        sleep 0.2
    done
    return 1
}
show() { echo "--- $1 (without its train/eval lines)"; grep -vE "^(train|eval) " "$1" 2>/dev/null; }
submit() { # submit NAME RUN_DIR [lawt_dist options...]
    local name=$1 run=$2
    shift 2
    RUN_DIR=$run LAWT_DIST=$dist OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        sbatch --parsable --job-name="$name" --output="$D/$name.out" --chdir="$D" --time=10 \
        "$src/jobs/slurm/train_cpu.sbatch" "$D/tiny.ini" "$@"
}

# 1. A short run completes.
job=$(submit short "$D/run-short" --set train.max_steps=24)
check $? "sbatch failed"
echo "test_slurm: job $job submitted (short run)"
wait_done "$job" 180
check $? "job $job did not finish within 180 s (state $(state_of "$job"))"
show "$D/short.out"
[ "$(state_of "$job")" = COMPLETED ]; check $? "job $job ended $(state_of "$job"), expected COMPLETED"
[ "$(field_of "$job" ExitCode)" = 0:0 ]; check $? "job $job exit code $(field_of "$job" ExitCode)"
compgen -G "$D/run-short/step-*.h5" >/dev/null; check $? "no checkpoint step-*.h5 in $D/run-short"

# 2. Time limit near: SIGUSR1 to the batch script, checkpoint, requeue, resume, complete.
job=$(submit requeue "$D/run-requeue" --set train.max_steps=200)
check $? "sbatch failed"
echo "test_slurm: job $job submitted (requeue run)"
started=1
for _ in $(seq 1 900); do # training has begun (stop signals are handled from then on)
    grep -qs '"type":"train"' "$D/run-requeue/metrics.jsonl" && { started=0; break; }
    sleep 0.2
done
check $started "the requeue run did not start training within 180 s (state $(state_of "$job"))"
scancel --batch --signal=USR1 "$job"
check $? "scancel --signal=USR1 failed"
# Slurm holds a requeued job back for a while (BeginTime, about 2 minutes): start it now.
for _ in $(seq 1 600); do
    [ "$(field_of "$job" Restarts)" = 1 ] && [ "$(state_of "$job")" = PENDING ] && break
    wait_done "$job" 0.2 && break
done
echo "test_slurm: job $job requeued: $(scontrol show job "$job" | grep -o 'Reason=[^ ]*')"
stopped_at=$(cd "$D/run-requeue" && ls step-*.h5 2>/dev/null | sort | tail -n 1)
echo "test_slurm: latest checkpoint after the stop: ${stopped_at:-none}"
[ -n "$stopped_at" ]; check $? "no checkpoint after the stop"
# The hold lets the first allocation's step be cleaned up first (its step id comes again).
sleep 5
scontrol update JobId="$job" StartTime=now
wait_done "$job" 240
check $? "job $job did not finish within 240 s (state $(state_of "$job"))"
show "$D/requeue.out"
[ "$(state_of "$job")" = COMPLETED ]; check $? "job $job ended $(state_of "$job"), expected COMPLETED"
[ "$(field_of "$job" ExitCode)" = 0:0 ]; check $? "job $job exit code $(field_of "$job" ExitCode)"
[ "$(field_of "$job" Restarts)" = 1 ]; check $? "job $job restarted $(field_of "$job" Restarts) times, expected 1"
grep -q 'lawt_dist exited with status 75' "$D/requeue.out"; check $? "lawt_dist did not exit with status 75 on SIGUSR1"
grep -q 'requeueing job' "$D/requeue.out"; check $? "the job did not requeue itself"
grep -q -- "--run-dir $D/run-requeue --resume" "$D/requeue.out"; check $? "the second start did not --resume"
final=$(cd "$D/run-requeue" && ls step-*.h5 2>/dev/null | sort | tail -n 1)
[[ "$final" > "${stopped_at:-}" ]]; check $? "no checkpoint after the resumed run (latest: ${final:-none})"
[ "$failed" = 0 ] || { tail -n 30 "$D/log/slurmctld.log" "$D/log/slurmd.log"; }

echo "test_slurm: $passed passed, $failed failed"
[ "$failed" = 0 ]
