#!/bin/bash
# test_trainer.sh MODE LAWT_DIST SOURCE_DIR WORK_DIR [ARGS...]: lawt_dist end to end.
#   errors        bad configurations exit non-zero before any work, naming file, line and key
#   jobs          every jobs/*.ini builds data and model (--dry-run)
#   readme        jobs/README.md's key table is what --help-config --markdown prints
#   determinism   two runs of the same config and seed: identical losses, and the final
#                 parameters and Adam moments bit for bit (h5diff, exact)
#   mpi LAUNCHER...  np 1 and "LAUNCHER... lawt_dist" (np 2) give the same losses to 1e-5 relative
#   batch_per_rank LAUNCHER...  np 1 with batch_size = 16 and "LAUNCHER... lawt_dist" (np 4)
#                 with batch_per_rank = 4 train on the same batches: losses to 1e-5 relative;
#                 the start-up line names both; setting both keys is refused
#   resume [ARGS...]  N steps, then resume to 2N: the same losses and accuracies as 2N
#                 straight; retraining from a checkpoint on other sizes (the quick-start model,
#                 or what lawt_dist ARGS make of it)
#   learn INI TOL MIN [ARGS...]   training INI (with lawt_dist ARGS) ends with L1 accuracy >= MIN
#                 at tolerance TOL (percent)
#   evaluate      --evaluate CHECKPOINT gives the run's own final evaluation back, number for
#                 number, from the configuration file or the checkpoint's, and its analysis by
#                 condition number adds up to it; --dump writes its examples, whose passes
#                 are its accuracy; other data runs; a
#                 checkpoint that does not fit the model, or --resume with it, is refused
#   measures      what an evaluation records besides the accuracies: out-of-distribution sets
#                 (eval.ood: each its own examples, whatever else is listed, with their test
#                 losses; --evaluate gives them back; unknown laws refused), accuracy by problem
#                 size and by task, whose groups hold the examples lawt_datagen makes;
#                 --evaluate's failure analysis and --dump (inversion, eigenvectors)
#   like_reference SEEDS...  the learning-efficiency check (issue 18): jobs/reference_eigenvalues_3x3.ini
#                 for 400,000 examples per seed (the seeds side by side, one thread each); the
#                 mean L1 accuracy at 5% is at least the paper's code's mean at 400,000 examples
#                 (bench/reference_eigenvalues_3x3.tsv) minus 5 points
#   backends A B  checkpoints cross devices: 10 steps on run.device A resumed for 10 on B give
#                 the losses of 20 straight steps on A (bit for bit when A = B, else to 1e-3)
set -uo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"
mode=$1 dist=$2 src=$3 work=$4
shift 4
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

# expect_error "what" REGEX ARGS...: lawt_dist ARGS exits non-zero, stderr matches REGEX.
expect_error() {
    local what=$1 regex=$2
    shift 2
    if "$dist" "$@" > out.txt 2> err.txt; then
        fail "$what: exit status 0"
    elif ! grep -Eq -- "$regex" err.txt; then
        fail "$what: message does not match '$regex':"
        cat err.txt >&2
    fi
}

# The training losses of a metrics file: "step loss" lines.
losses() {
    sed -n 's/^{"type":"train","step":\([0-9]*\),.*"loss":\([^,]*\),.*/\1 \2/p' "$1"
}

# The L1 accuracy at tolerance $2 of the last evaluation in metrics file $1 (the first "acc" of
# the record: the test set's; groups and out-of-distribution sets follow it).
last_accuracy() {
    grep '"type":"eval"' "$1" | tail -n 1 | grep -o '"acc":{[^}]*}' | head -n 1 |
        grep -o "\"$2\":[0-9.]*" | cut -d: -f2
}

# The L1 accuracy at tolerance $3 of metrics file $1's evaluation after $2 examples.
accuracy_at() {
    grep '"type":"eval"' "$1" | grep "\"examples\":$2," | grep -o '"acc":{[^}]*}' | head -n 1 |
        grep -o "\"$3\":[0-9.]*" | cut -d: -f2
}

# A short run of the quick-start model, at the full learning rate after 3 steps.
SHORT=(--config "$src/jobs/quickstart.ini" --set train.max_steps=12 --set train.warmup=3
       --set train.log_every=1 --set eval.size=0)

case $mode in
errors)
    printf '[data]\ntask = transpose\n\n[train]\nlr = 1e-3\nlearning_rate = 1e-3\n' > unknown.ini
    expect_error "unknown key" \
        "unknown.ini:6: unknown key 'learning_rate' in \[train\]; keys of \[train\]: seed," \
        --config unknown.ini --run-dir run
    printf '[training]\nlr = 1e-3\n' > section.ini
    expect_error "unknown section" \
        "section.ini:1: unknown section \[training\]; sections: \[data\]" \
        --config section.ini --run-dir run
    printf '[model]\nenc_layers = 2\nheads = many\n' > value.ini
    expect_error "bad value" \
        "value.ini:3: \[model\] enc_heads = 'many': not an integer; allowed: integer in" \
        --config value.ini --run-dir run
    printf '[train]\nschedule = linear\n' > choice.ini
    expect_error "bad choice" \
        "choice.ini:2: \[train\] schedule = 'linear': .*allowed: cosine\|constant\|inverse_sqrt" \
        --config choice.ini --run-dir run
    printf '[data]\ntask = transpose\ndim = 0\n' > data.ini
    expect_error "bad data value" "data.ini:3: \[data\] dim = '0': .*allowed" \
        --config data.ini --run-dir run
    expect_error "missing file" "nothere.ini: cannot open the configuration" \
        --config nothere.ini --run-dir run
    expect_error "bad --set" "--set train.lr=-1: \[train\] lr = '-1': out of range" \
        --config "$src/jobs/quickstart.ini" --set train.lr=-1 --run-dir run
    expect_error "unknown --set key" "--set eval.sizes=3: unknown key 'sizes' in \[eval\]" \
        --config "$src/jobs/quickstart.ini" --set eval.sizes=3 --run-dir run
    expect_error "no config" "no configuration" --run-dir run
    # Without a GPU (CI), asking for one is a configuration error, before any work.
    if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
        expect_error "device = cuda without a GPU" "\[run\] device = cuda, but .*use device = auto" \
            --config "$src/jobs/quickstart.ini" --set run.device=cuda --run-dir run
    fi
    expect_error "unknown option" "unknown argument: --confg" --confg x.ini
    # Issue 11: refused before any work, with the file or the keys named.
    expect_error "a directory as --config" "$src/jobs: is a directory" --config "$src/jobs" --run-dir run
    printf '[model]\n  dim = 3\n  dim = 4\n' > twice.ini
    expect_error "a key given twice" "twice.ini:3: \[model\] dim given twice \(lines 2 and 3\)" \
        --config twice.ini --run-dir run
    expect_error "an overflowing run" "epoch_size = 1000000000000000000 x epochs = 1000000000" \
        --config "$src/jobs/quickstart.ini" --set train.epoch_size=1000000000000000000 \
        --set train.epochs=1000000000 --run-dir run
    expect_error "a model larger than memory" \
        "needs [0-9]+ bytes .*enc_dim = 65536, dec_dim = 65536.*lower model.dim" \
        --config "$src/jobs/quickstart.ini" --set model.dim=65536 --set model.heads=1 --run-dir run
    grep -qi "mpi_abort" err.txt && fail "a model larger than memory: the MPI abort banner"
    [ -e run ] && fail "a failed configuration still created the run directory"
    "$dist" --help > help.txt || fail "--help exit status"
    grep -q -- "--help-config" help.txt || fail "--help does not mention --help-config"
    ;;
jobs)
    for ini in "$src"/jobs/*.ini "$src"/jobs/universal/*.ini; do
        if ! "$dist" --config "$ini" --dry-run > out.txt 2>&1; then
            fail "$ini does not start:"
            cat out.txt >&2
        elif ! grep -q "parameters (.*formula" out.txt; then
            fail "$ini: no parameter count in the summary"
        fi
    done
    ;;
readme)
    "$dist" --help-config --markdown > table.md || fail "--help-config --markdown"
    sed -n '/<!-- keys:begin -->/,/<!-- keys:end -->/p' "$src/jobs/README.md" | sed '1d;$d' > readme.md
    diff -u readme.md table.md ||
        fail "jobs/README.md's key table differs from 'lawt_dist --help-config --markdown'"
    ;;
determinism)
    # Two threads: the model splits its products between them, the same way every run.
    "$dist" "${SHORT[@]}" --set train.threads=2 --run-dir a > a.log 2>&1 || fail "first run"
    "$dist" "${SHORT[@]}" --set train.threads=2 --run-dir b > b.log 2>&1 || fail "second run"
    # Batches made ahead by the data thread are the same batches.
    "$dist" "${SHORT[@]}" --set train.threads=2 --set train.prefetch=on --run-dir c > c.log 2>&1 ||
        fail "prefetching run"
    losses a/metrics.jsonl > a.txt
    losses b/metrics.jsonl > b.txt
    losses c/metrics.jsonl > c.txt
    [ "$(wc -l < a.txt)" -eq 12 ] || fail "expected 12 losses, got $(wc -l < a.txt)"
    cmp -s a.txt b.txt || { fail "the losses differ"; diff a.txt b.txt >&2; }
    cmp -s a.txt c.txt || { fail "the losses differ with train.prefetch=on"; diff a.txt c.txt >&2; }
    # The losses above are %.9g text; the weights are the exact record of every step.
    if command -v h5diff > /dev/null; then
        for run in b c; do
            for group in /params /adam; do
                h5diff a/step-000000012.h5 "$run/step-000000012.h5" "$group" "$group" > /dev/null ||
                    fail "run $run: $group differs from run a's (h5diff, exact)"
            done
        done
    else
        echo "NOTE: no h5diff (hdf5-tools): final weights not compared bit for bit" >&2
    fi
    ;;
mpi)
    # Global batch 64: one rank of 64 against N ranks of 64 / N, over 20 steps.
    "$dist" "${SHORT[@]}" --set train.max_steps=20 --set train.threads=1 --run-dir np1 \
        > np1.log 2>&1 || { fail "np 1"; cat np1.log >&2; }
    "$@" "$dist" "${SHORT[@]}" --set train.max_steps=20 --set train.threads=1 \
        --set train.prefetch=on --run-dir np2 \
        > np2.log 2>&1 || { fail "np N"; cat np2.log >&2; }
    losses np1/metrics.jsonl > np1.txt
    losses np2/metrics.jsonl > np2.txt
    [ "$(wc -l < np1.txt)" -eq 20 ] || fail "expected 20 losses, got $(wc -l < np1.txt)"
    paste np1.txt np2.txt | awk '
        { rel = ($2 - $4) / $2; if (rel < 0) rel = -rel
          printf "step %d: np1 %s np2 %s rel %.2e\n", $1, $2, $4, rel
          if ($1 != $3 || rel > 1e-5) bad = 1 }
        END { exit bad }' || fail "np 1 and np N losses differ by more than 1e-5"
    ;;
batch_per_rank)
    "$dist" "${SHORT[@]}" --set train.batch_size=16 --set train.threads=1 --run-dir np1 \
        > np1.log 2>&1 || { fail "np 1"; cat np1.log >&2; }
    "$@" "$dist" "${SHORT[@]}" --set train.batch_size=0 --set train.batch_per_rank=4 \
        --set train.threads=1 --run-dir np4 > np4.log 2>&1 || { fail "np 4"; cat np4.log >&2; }
    grep -q "batch_size 16 = batch_per_rank 4 x 4 ranks" np4.log ||
        fail "the start-up line does not name both batches: $(grep '^train  batch' np4.log)"
    grep -q "batch_size = 16" np4/config.ini || fail "the run's config.ini lacks the global batch"
    losses np1/metrics.jsonl > np1.txt
    losses np4/metrics.jsonl > np4.txt
    [ "$(wc -l < np1.txt)" -eq 12 ] || fail "expected 12 losses, got $(wc -l < np1.txt)"
    paste np1.txt np4.txt | awk '
        { rel = ($2 - $4) / $2; if (rel < 0) rel = -rel
          printf "step %d: np1 %s np4 %s rel %.2e\n", $1, $2, $4, rel
          if ($1 != $3 || rel > 1e-5) bad = 1 }
        END { exit bad }' || fail "np 1 (batch_size 16) and np 4 (batch_per_rank 4) differ"
    expect_error "batch_size and batch_per_rank both set" "set one of them" \
        "${SHORT[@]}" --set train.batch_size=16 --set train.batch_per_rank=4 --dry-run
    ;;
resume)
    RUN=(--config "$src/jobs/quickstart.ini" --set train.log_every=1 --set train.threads=1
         --set train.epoch_size=640 --set train.epochs=2 --set eval.size=64 "$@")
    # an out-of-distribution set: its stream resumes too
    "$dist" "${RUN[@]}" --set eval.ood=gaussian --run-dir straight > straight.log 2>&1 ||
        fail "straight run"
    "$dist" "${RUN[@]}" --set eval.ood=gaussian --set train.max_steps=10 --run-dir resumed \
        > first.log 2>&1 || fail "first half"
    grep -q '"ood":{"gaussian":{"size":64,' straight/metrics.jsonl || fail "no out-of-distribution set recorded"
    "$dist" --resume --run-dir resumed --set train.max_steps=0 --set train.prefetch=on \
        > second.log 2>&1 ||
        { fail "resumed half"; cat second.log >&2; }
    # The resumed directory also records where the second segment began.
    grep -q '^{"type":"resume","step":10,' resumed/metrics.jsonl || fail "no resume record at step 10"
    strip_time() { grep -v '"type":"resume"' "$1" | sed 's/,"time":[0-9.]*//'; }
    strip_time straight/metrics.jsonl > straight.txt
    strip_time resumed/metrics.jsonl > resumed.txt
    cmp -s straight.txt resumed.txt || { fail "resumed metrics differ"; diff straight.txt resumed.txt >&2; }
    # Retraining (Appendix F.1): the weights on other sizes; another vocabulary is refused.
    "$dist" "${RUN[@]}" --set data.dim=3-4 --set train.max_steps=2 \
        --set run.init_from=straight/best.h5 > retrain.log 2>&1 ||
        { fail "retraining on sizes 3-4"; cat retrain.log >&2; }
    grep -q "weights from straight/best.h5" retrain.log || fail "retraining did not load the weights"
    expect_error "retraining with another vocabulary" "init_from: .*vocabularies differ" \
        "${RUN[@]}" --set data.encoding=B1999 --set run.init_from=straight/best.h5
    ;;
learn)
    ini=$1 tol=$2 min=$3
    shift 3
    start=$(date +%s)
    "$dist" --config "$src/jobs/$ini" "$@" --run-dir run > run.log 2>&1 ||
        { fail "training"; tail -n 20 run.log >&2; }
    acc=$(last_accuracy run/metrics.jsonl "$tol")
    echo "$ini: L1 accuracy at $tol% = ${acc:-none} (required >= $min) after $(($(date +%s) - start)) s"
    grep '"type":"eval"' run/metrics.jsonl | cut -c1-160
    awk -v a="${acc:-0}" -v m="$min" 'BEGIN { exit !(a >= m) }' || fail "accuracy ${acc:-none} < $min"
    ;;
evaluate)
    # 800 steps: the model writes well-formed answers (about 80%), not yet correct ones.
    RUN=(--set train.max_steps=800 --set eval.every=0 --set eval.size=200)
    "$dist" --config "$src/jobs/quickstart.ini" "${RUN[@]}" --run-dir run > run.log 2>&1 ||
        { fail "training"; tail -n 20 run.log >&2; }
    ck=run/step-000000800.h5
    "$dist" --evaluate "$ck" --config "$src/jobs/quickstart.ini" --set eval.size=200 \
        --run-dir again > again.log 2>&1 || { fail "--evaluate"; tail -n 20 again.log >&2; }
    "$dist" --evaluate "$ck" --set eval.size=200 > own.log 2>&1 ||
        { fail "--evaluate with the checkpoint's configuration"; tail -n 20 own.log >&2; }
    # every accuracy and the well-formed rate, after the size field
    scores() { grep '"type":"eval"' "$1" | tail -n 1 | sed 's/.*"size"/"size"/'; }
    trained=$(scores run/metrics.jsonl)
    echo "run:        $trained"
    echo "--evaluate: $(scores again/metrics.jsonl)"
    [ -n "$trained" ] && [ "$trained" = "$(scores again/metrics.jsonl)" ] ||
        fail "--evaluate does not give the run's own final evaluation"
    wf=$(echo "$trained" | sed 's/.*"well_formed":\([0-9.]*\).*/\1/')
    # the analysis by condition number covers every example, and adds up to the whole
    grep '"type":"by_condition"' again/metrics.jsonl | grep -o '"count":[0-9]*,"acc":[0-9.]*,"well_formed":[0-9.]*' |
        tr -c '0-9.\n' ' ' | awk -v wf="${wf:-0}" '
            { n += $1; good += $1 * $3 / 100 }
            END { printf "by condition number: %d examples, %.2f%% well-formed\n", n, 100 * good / n
                  d = 100 * good / n - wf; if (d < 0) d = -d
                  exit !(n == 200 && d < 0.01) }' ||
        fail "the accuracies by condition number do not add up to the whole evaluation"
    # --dump: one line an example, whose passes are the accuracy
    "$dist" --evaluate "$ck" --set eval.size=200 --dump dump.jsonl > dump.log 2>&1 ||
        { fail "--evaluate --dump"; tail -n 20 dump.log >&2; }
    acc5=$(echo "$trained" | grep -o '"acc":{"5":[0-9.]*' | cut -d: -f3)
    passes=$(grep -c '"pass":{"L1":{"5":true' dump.jsonl)
    echo "--dump: $(wc -l < dump.jsonl) examples, $passes passing at 5% (the run: ${acc5:-none}%)"
    [ "$(wc -l < dump.jsonl)" -eq 200 ] && awk -v p="$passes" -v a="${acc5:-x}" 'BEGIN { exit !(p / 2 == a) }' ||
        fail "--dump: $passes passes of $(wc -l < dump.jsonl), the run's accuracy ${acc5:-none}%"
    awk -v w="${wf:-0}" 'BEGIN { exit !(w > 10) }' ||
        fail "well-formed rate ${wf:-none}: the model learned too little for this test to tell"
    line=$(grep '^eval ' run.log | tail -n 1 | sed 's/.*: L1/L1/; s/ | [0-9.]* s$//')
    own=$(grep '^eval ' own.log | tail -n 1 | sed 's/.*: L1/L1/; s/ | [0-9.]* s$//')
    [ -n "$line" ] && [ "$line" = "$own" ] ||
        fail "--evaluate without --config: '$own', the run said '$line'"
    # other data (4x4 matrices, longer sequences) with the same weights
    "$dist" --evaluate "$ck" --set data.dim=4 --set eval.size=50 > ood.log 2>&1 &&
        grep -q "^eval .* 50 test examples" ood.log || { fail "--evaluate on 4x4"; cat ood.log >&2; }
    expect_error "a checkpoint of another model" "checkpoint enc_dim 64, config 128" \
        --evaluate "$ck" --set model.dim=128
    expect_error "--evaluate with --resume" "--evaluate and --resume do not go together" \
        --evaluate "$ck" --resume "$ck"
    ;;
measures)
    # What an evaluation records besides the accuracies, on a model of 1 step (untrained: the
    # point is which examples each number covers, and that the parts add up).
    datagen=$(dirname "$dist")/../datagen/lawt_datagen
    RUN=(--config "$src/jobs/quickstart.ini" --set train.max_steps=1 --set train.warmup=1
         --set train.threads=1 --set eval.size=60 --set eval.batch_size=25)
    record() { grep '"type":"eval"' "$1" | tail -n 1; }
    # one out-of-distribution set of an eval record: "NAME":{"size":K,...,"test_loss":X}
    ood_set() {
        record "$1" | grep -oE "\"$2\":\\{\"size\":[0-9]+,\"acc\":\\{[^}]*\\},\"acc_l2\":\\{[^}]*\\},\"acc_linf\":\\{[^}]*\\},\"well_formed\":[0-9.]+,\"test_loss\":[0-9.e+-]+\\}"
    }
    loss_of() { echo "$1" | grep -o '"test_loss":[0-9.e+-]*' | head -n 1 | cut -d: -f2; }
    EIG=("${RUN[@]}" --set data.task=eigenvalues)
    "$dist" "${EIG[@]}" --set eval.ood=laplace,wigner@0.3 --run-dir ood2 > ood2.log 2>&1 ||
        { fail "eval.ood = laplace, wigner@0.3"; tail -n 20 ood2.log >&2; }
    "$dist" "${EIG[@]}" --set eval.ood=laplace --run-dir ood1 > ood1.log 2>&1 ||
        { fail "eval.ood = laplace"; tail -n 20 ood1.log >&2; }
    laplace2=$(ood_set ood2/metrics.jsonl laplace) wigner=$(ood_set ood2/metrics.jsonl 'wigner@0.3')
    laplace1=$(ood_set ood1/metrics.jsonl laplace)
    echo "laplace:    $laplace2"
    echo "wigner@0.3: $wigner"
    [ -n "$laplace2" ] && [ -n "$wigner" ] && echo "$laplace2" | grep -q '"size":60,' ||
        fail "the eval record lacks its out-of-distribution sets: $(record ood2/metrics.jsonl)"
    # A set's examples are its own: the same whatever else eval.ood lists.
    [ "$laplace1" = "$laplace2" ] || fail "laplace alone '$laplace1', beside wigner '$laplace2'"
    # Three sets of different examples: three test losses.
    losses3=$(printf '%s\n' "$(loss_of "$(record ood2/metrics.jsonl)")" "$(loss_of "$laplace2")" \
              "$(loss_of "$wigner")")
    echo "test losses (test set, laplace, wigner@0.3):" $losses3
    [ "$(echo "$losses3" | grep -cE '^[0-9]+\.[0-9]+')" -eq 3 ] &&
        [ "$(echo "$losses3" | sort -u | wc -l)" -eq 3 ] ||
        fail "expected three different test losses, got: $losses3"
    grep -q '^ood    wigner@0.3, 60 examples: L1 accuracy' ood2.log ||
        fail "train.log has no line for the set wigner@0.3"
    # --evaluate gives the run's own evaluation back, out-of-distribution sets and test loss too.
    "$dist" --evaluate ood2/step-000000001.h5 --run-dir again > again.log 2>&1 ||
        { fail "--evaluate with eval.ood"; tail -n 20 again.log >&2; }
    after_size() { record "$1" | sed 's/.*"size"/"size"/'; }
    [ "$(after_size ood2/metrics.jsonl)" = "$(after_size again/metrics.jsonl)" ] ||
        fail "--evaluate: '$(after_size again/metrics.jsonl)', the run: '$(after_size ood2/metrics.jsonl)'"
    expect_error "an unknown law" "\\[eval\\] ood = 'laplace,cauchy': unknown law 'cauchy'" \
        "${EIG[@]}" --set eval.ood=laplace,cauchy --dry-run
    expect_error "a bad scale" "\\[eval\\] ood = 'laplace@-1': .*number > 0" \
        "${EIG[@]}" --set eval.ood=laplace@-1 --dry-run
    expect_error "an eigenvalue law for transposition" "unknown law 'semicircle' for transpose.*coefficient law" \
        "${RUN[@]}" --set eval.ood=semicircle --dry-run
    "$dist" "${RUN[@]}" --set eval.ood=gaussian,laplace@2 --dry-run > coef.log 2>&1 ||
        { fail "coefficient laws as out-of-distribution sets of transposition"; cat coef.log >&2; }

    # By problem size and by task: the groups hold the test set's examples, as lawt_datagen
    # makes them (test stream, the run's seed), and add up to it.
    "$dist" "${RUN[@]}" --set data.dim=2-4 --set data.task=transpose,add --set data.task_token=2 \
        --run-dir groups \
        > groups.log 2>&1 || { fail "dim 2-4, transpose and add"; tail -n 20 groups.log >&2; }
    rec=$(record groups/metrics.jsonl)
    "$datagen" --task transpose,add --dim 2-4 --encoding P1000 --count 60 --seed 1 --stream test \
        --format tokens > examples.txt || fail "lawt_datagen"
    for group in size task; do
        got=$(echo "$rec" | grep -o "\"by_$group\":{.*" | sed 's/,"by_task":.*//' |
              grep -oE '"[a-z0-9]+":\{"size":[0-9]+' | tr -d '"{' | sed 's/:size:/ /' | sort)
        if [ $group = size ]; then
            want=$(cut -d' ' -f2 examples.txt | sed 's/^V//' | sort | uniq -c | awk '{ print $2, $1 }')
        else
            want=$(cut -d' ' -f1 examples.txt | tr -d '<>' | sort | uniq -c | awk '{ print $2, $1 }')
        fi
        echo "by $group:" $got
        [ -n "$got" ] && [ "$got" = "$want" ] || fail "by $group: '$got', lawt_datagen: '$want'"
    done
    grep -q '^size   L1 accuracy at 5% by problem size: 2: ' groups.log ||
        fail "train.log has no line by problem size"

    # --evaluate's failure analysis (sections 4.5-4.6) and --dump, on an inversion model: the
    # input's condition number as a failure predictor buckets the examples by the condition
    # numbers the dump gives for them.
    "$dist" "${RUN[@]}" --set data.task=inversion --run-dir inv > inv.log 2>&1 ||
        { fail "inversion"; tail -n 20 inv.log >&2; }
    "$dist" --evaluate inv/step-000000001.h5 --dump inv.jsonl --run-dir inv-eval > inv-eval.log 2>&1 ||
        { fail "--evaluate --dump"; tail -n 20 inv-eval.log >&2; }
    [ "$(wc -l < inv.jsonl)" -eq 60 ] && [ "$(grep -c '^{"index":[0-9]*,"task":"inversion","input":\[\[' inv.jsonl)" -eq 60 ] ||
        fail "--dump: expected 60 examples, got $(wc -l < inv.jsonl) lines"
    got=$(grep '^pred   L1 accuracy' inv-eval.log | grep -o 'of [0-9][0-9]*' | cut -d' ' -f2 | tr '\n' ' ')
    want=$(grep -o '"cond":[0-9.e+-]*' inv.jsonl | cut -d: -f2 | awk '
        BEGIN { split("10 20 30 40 51.5 75 100 1000", edge, " ") }
        { b = 9; for (i = 8; i >= 1; i--) if ($1 < edge[i]) b = i; n[b]++ }
        END { for (i = 1; i <= 9; i++) printf "%d ", n[i] }')
    echo "by condition number of the input, the record: $got; the dump: $want"
    [ -n "$got" ] && [ "$got" = "$want" ] || fail "predictor buckets '$got', the dump's '$want'"
    grep -q '^{"type":"sub_accuracy","check":"inverse_distance","size":60,' inv-eval/metrics.jsonl &&
        grep -q '^{"type":"failure_predictor","predictor":"input_condition",' inv-eval/metrics.jsonl ||
        fail "no inverse_distance or failure_predictor record"
    expect_error "--dump over an existing file" "inv.jsonl: the file exists" \
        --evaluate inv/step-000000001.h5 --dump inv.jsonl
    expect_error "--dump without --evaluate" "--dump goes with --evaluate" "${RUN[@]}" --dump x.jsonl
    # a dump that cannot be written (a full disk): named with its errno, exit status 74
    LAWT_FAULT_WRITE_FAIL_AFTER=3000 "$dist" --evaluate inv/step-000000001.h5 --dump full.jsonl \
        > full.log 2> full.err
    status=$?
    [ $status -eq 74 ] && grep -q "writing full.jsonl failed: No space left on device" full.err ||
        { fail "--dump on a full disk: status $status (74 expected)"; cat full.err >&2; }
    # eigenvectors: the predicted Q's condition number, the eigenvalues of the prediction
    "$dist" "${RUN[@]}" --set data.task=eigenvectors --run-dir eigv > eigv.log 2>&1 ||
        { fail "eigenvectors"; tail -n 20 eigv.log >&2; }
    "$dist" --evaluate eigv/step-000000001.h5 --run-dir eigv-eval > eigv-eval.log 2>&1 ||
        { fail "--evaluate eigenvectors"; tail -n 20 eigv-eval.log >&2; }
    for record in '"type":"sub_accuracy","check":"predicted_eigenvalues","size":60,' \
                  '"type":"sub_accuracy","check":"implied_eigenvalues","size":60,' \
                  '"type":"failure_predictor","predictor":"q_condition",'; do
        grep -q "^{$record" eigv-eval/metrics.jsonl || fail "no record {$record..."
    done
    ;;
like_reference)
    examples=400000 margin=5
    ref=$(awk -v e="$examples" '!/^#/ && $2 == e { s += $3; n++ } END { if (n) printf "%.3f", s / n }' \
          "$src/bench/reference_eigenvalues_3x3.tsv")
    [ -n "$ref" ] || fail "no reference accuracy at $examples examples"
    start=$(date +%s)
    for seed in "$@"; do
        OPENBLAS_NUM_THREADS=1 "$dist" --config "$src/jobs/reference_eigenvalues_3x3.ini" \
            --set train.seed="$seed" --set train.threads=1 \
            --set train.max_steps=$((examples / 64)) --run-dir "seed$seed" > "seed$seed.log" 2>&1 &
    done
    wait
    sum=0
    for seed in "$@"; do
        acc=$(accuracy_at "seed$seed/metrics.jsonl" "$examples" 5)
        [ -n "$acc" ] || { fail "seed $seed: no evaluation at $examples examples"; tail -n 20 "seed$seed.log" >&2; }
        echo "seed $seed: L1 accuracy at 5% after $examples examples = ${acc:-none}"
        grep '"type":"eval"' "seed$seed/metrics.jsonl" | cut -c1-160
        sum=$(awk -v s="$sum" -v a="${acc:-0}" 'BEGIN { print s + a }')
    done
    mean=$(awk -v s="$sum" -v n=$# 'BEGIN { printf "%.2f", s / n }')
    echo "lawt mean $mean, the paper's code $ref (required >= $ref - $margin) after $(($(date +%s) - start)) s"
    awk -v a="$mean" -v r="${ref:-100}" -v m="$margin" 'BEGIN { exit !(a >= r - m) }' ||
        fail "lawt learns slower per example than the paper's code: $mean < $ref - $margin"
    ;;
backends)
    a=$1 b=$2
    RUN=(--config "$src/jobs/quickstart.ini" --set train.log_every=1 --set train.threads=1
         --set train.warmup=5 --set eval.size=0 --set train.max_steps=20)
    "$dist" "${RUN[@]}" --set run.device="$a" --run-dir straight > straight.log 2>&1 ||
        { fail "20 steps on $a"; tail -n 20 straight.log >&2; }
    "$dist" "${RUN[@]}" --set run.device="$a" --set train.max_steps=10 --run-dir crossed \
        > first.log 2>&1 || { fail "10 steps on $a"; tail -n 20 first.log >&2; }
    "$dist" --resume --run-dir crossed --set run.device="$b" --set train.max_steps=20 \
        > second.log 2>&1 || { fail "resumed on $b"; tail -n 20 second.log >&2; }
    grep -q "backend $b" second.log || fail "the resumed run did not say 'backend $b'"
    losses straight/metrics.jsonl > straight.txt
    losses crossed/metrics.jsonl > crossed.txt
    [ "$(wc -l < crossed.txt)" -eq 20 ] || fail "expected 20 losses, got $(wc -l < crossed.txt)"
    tol=1e-3
    [ "$a" = "$b" ] && tol=0
    paste straight.txt crossed.txt | awk -v tol="$tol" '
        { rel = ($2 - $4) / $2; if (rel < 0) rel = -rel
          printf "step %d: straight %s crossed %s rel %.2e\n", $1, $2, $4, rel
          if ($1 != $3 || rel > tol) bad = 1 }
        END { exit bad }' || fail "losses after crossing $a -> $b differ by more than $tol"
    ;;
*)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac

[ $failures -eq 0 ] && echo "test_trainer $mode: passed"
exit $((failures > 0))
