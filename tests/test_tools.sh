#!/bin/bash
# test_tools.sh MODE BUILD_DIR SOURCE_DIR WORK_DIR [ARGS...]: the tools of tools/ on checkpoints
# made here by short quick-start runs.
#   inspect      the summary, --json, --config, --metrics and --tensor say what the file holds
#                (attributes as h5dump reads them, the run's own config.ini and metrics.jsonl)
#   diff         a run resumed at step 10 against the same run straight: every tensor
#                identical (exit 0); against its step-10 checkpoint: tensors differ (exit 1)
#   damaged      a flipped parameter, a flipped config text, a truncated file: non-zero exit
#                and a message naming what is damaged, the intact parts still shown
#   plot         lawt_plot draws a PNG (and an SVG) of the expected size from a run's
#                metrics.jsonl; training wrote curves.png and the summary table; a missing
#                gnuplot is named with its package (exit 77: skipped when gnuplot is absent)
#   sample_size  lawt_plot --sample-size on a synthetic metrics.jsonl: the examples seen when
#                L1 first reached 95% and 99% per tolerance (a later dip does not undo it;
#                L2 and Linf are not read); a short run's end-of-run summary has the same two
#                columns as lawt_plot --sample-size of its history
#   solve_errors every bad input of lawt_solve gets its message naming matrix and row
#                (an untrained model: the checks come before any decoding)
#   cpu_scale    scripts/cpu_scale.sh table on synthetic run directories: each row's numbers
#                are the in-distribution ones of the last eval record (not the out-of-distribution
#                set nested after them), a finished, a stopped and a missing run say so; bad
#                commands exit 2 naming the task or option
#   solve CKPT   lawt_solve with a trained quick-start model (CKPT) returns the transpose of a
#                user's 3x3 matrix, greedy and beam
set -uo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"
mode=$1 build=$2 src=$3 work=$4
shift 4
dist=$build/trainer/lawt_dist inspect=$build/tools/lawt_inspect plot=$build/tools/lawt_plot
solve=$build/tools/lawt_solve
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

# A quick-start run of $2 steps of 8 examples into directory $1 (more lawt_dist arguments
# after): seconds, under the sanitizers too.
quick_run() {
    local dir=$1 steps=$2
    shift 2
    # lawt_dist starts MPI, whose allocations LeakSanitizer reports as leaks (see comm.cmake);
    # the tools themselves are checked for leaks.
    ASAN_OPTIONS=detect_leaks=0 "$dist" --config "$src/jobs/quickstart.ini" \
        --set train.max_steps="$steps" --set eval.size=50 --set train.log_every=1 \
        --set train.threads=1 --set train.batch_size=8 "$@" --run-dir "$dir" > "$dir.log" 2>&1 ||
        { fail "training $dir"; tail -n 20 "$dir.log" >&2; }
}

# The value of attribute $2 of checkpoint $1 as h5dump prints it.
h5_attr() {
    h5dump -a "/$2" "$1" | sed -n 's/^ *(0): *//p' | tr -d '"'
}

# Flips $3 bytes of file $1 at byte offset $2.
flip() {
    local bytes
    bytes=$(dd if="$1" bs=1 skip="$2" count="$3" 2> /dev/null | od -An -tu1)
    for b in $bytes; do printf "\\$(printf %03o $((255 - b)))"; done |
        dd of="$1" bs=1 seek="$2" conv=notrunc 2> /dev/null
}

case $mode in
inspect)
    quick_run run 20
    ck=run/step-000000020.h5
    expect 0 "summary" "intact, every CRC-32 verified" "$inspect" "$ck"
    grep -q "^training   step 20 | 160 examples seen | epoch 0 " out.txt || fail "summary: counters"
    grep -q "^data       task transpose | dim 3 | encoding P1000 -> P1000" out.txt || fail "summary: data"
    params=$(sed -n 's/.* \([0-9]*\) parameters (Appendix G.*/\1/p' run.log)
    grep -q "| $params parameters" out.txt || fail "summary: parameter count (the run says $params)"
    grep -q "^parts      params ok | adam/m ok | adam/v ok | config_text ok | metrics_jsonl ok" out.txt ||
        fail "summary: parts"
    [ "$(grep -c '^  enc\.\|^  dec\.' out.txt)" -gt 30 ] || fail "summary: per-tensor statistics"
    evals=$(grep -c '"type":"eval"' run/metrics.jsonl)
    grep -q "^evaluations (L1 accuracy %): $evals" out.txt || fail "summary: $evals evaluations"
    "$inspect" --json "$ck" > json.txt || fail "--json: exit status"
    if command -v h5dump > /dev/null; then
        for a in step examples_seen epoch seed test_index num_params enc_dim dec_layers vocab_in \
                 max_len format_version params_crc32 adam_v_crc32 metrics_jsonl_crc32; do
            v=$(h5_attr "$ck" "$a")
            grep -q "\"$a\":$v[,}]" json.txt || fail "--json: $a is not $v as h5dump reads it"
        done
        v=$(h5_attr "$ck" lawt_version)
        grep -q "\"lawt_version\":\"$v\"" json.txt || fail "--json: lawt_version is not $v"
    fi
    grep -q '"intact":true' json.txt || fail "--json: intact"
    "$inspect" --config "$ck" > config.txt || fail "--config: exit status"
    cmp -s config.txt run/config.ini || fail "--config differs from the run's config.ini"
    "$inspect" --metrics "$ck" > metrics.txt || fail "--metrics: exit status"
    cmp -s metrics.txt run/metrics.jsonl || fail "--metrics differs from the run's metrics.jsonl"
    "$inspect" --tensor dec.out_bias "$ck" > t.txt || fail "--tensor: exit status"
    vocab=$(h5_attr "$ck" vocab_out)
    [ "$(sed -n 2p t.txt | wc -w)" = "$vocab" ] || fail "--tensor dec.out_bias: not $vocab values"
    "$inspect" --tensor adam/v/enc.layer0.ln1.bias "$ck" > t.txt || fail "--tensor adam/v/...: exit status"
    [ "$(wc -l < t.txt)" = 2 ] && head -n 1 t.txt | grep -q "/adam/v/enc.layer0.ln1.bias 64" ||
        fail "--tensor adam/v/enc.layer0.ln1.bias"
    expect 2 "unknown tensor" "no tensor nonesuch in /params" "$inspect" --tensor nonesuch "$ck"
    expect 1 "no file" "nothing.h5: damaged: cannot open" "$inspect" nothing.h5
    expect 2 "no argument" "one checkpoint, please" "$inspect"
    expect 0 "--help" "usage: lawt_inspect" "$inspect" --help
    ;;
diff)
    RUN=(--set train.epoch_size=80 --set train.epochs=2 --set eval.size=16)
    quick_run straight 0 "${RUN[@]}"
    quick_run resumed 10 "${RUN[@]}"
    ASAN_OPTIONS=detect_leaks=0 "$dist" --resume --run-dir resumed --set train.max_steps=0 > second.log 2>&1 ||
        { fail "resumed half"; tail -n 20 second.log >&2; }
    expect 0 "resumed against straight" "all tensors identical" \
        "$inspect" --diff straight/step-000000020.h5 resumed/step-000000020.h5
    for p in params adam/m adam/v; do
        grep -Eq "^tensors    /$p: ([0-9]+) of \\1 identical" out.txt || fail "diff: /$p not all identical"
    done
    grep -q "^config     run.dir: straight | resumed" out.txt || fail "diff: run.dir difference not shown"
    expect 1 "step 10 against step 20" "tensors differ" \
        "$inspect" --diff resumed/step-000000010.h5 straight/step-000000020.h5
    grep -q "^attribute  step: 10 | 20" out.txt || fail "diff: the step difference not shown"
    grep -q "^tensor     /params/dec.out_bias: max |a-b| [0-9.e-]*, |a-b|/|a| [0-9.e-]*" out.txt ||
        fail "diff: relative difference of a tensor not shown"
    expect 2 "--diff with one file" "needs two checkpoints" "$inspect" --diff straight/best.h5
    ;;
damaged)
    command -v h5dump > /dev/null || { echo "h5dump (package hdf5-tools) not found: skipped"; exit 77; }
    quick_run run 20
    ck=run/step-000000020.h5
    offset() { h5dump -p -H -d "$2" "$1" | sed -n 's/^ *OFFSET \([0-9]*\)/\1/p'; }
    cp "$ck" param.h5
    flip param.h5 $(($(offset param.h5 /params/dec.out_bias) + 40)) 4
    expect 1 "a parameter flipped" "damaged: /params is corrupt: CRC-32 0x[0-9a-f]*, the file records params_crc32" \
        "$inspect" param.h5
    grep -q "^parts      params corrupt | adam/m ok | adam/v ok | config_text ok | metrics_jsonl ok" out.txt ||
        fail "a parameter flipped: the other parts are not shown intact"
    grep -q "^training   step 20 " out.txt || fail "a parameter flipped: the counters are not shown"
    expect 1 "a parameter flipped, --json" '"intact":false' "$inspect" --json param.h5
    expect 2 "a parameter flipped, --diff" "damaged: /params is corrupt" "$inspect" --diff "$ck" param.h5
    cp "$ck" config.h5
    flip config.h5 $(($(offset config.h5 /config_text) + 5)) 1
    expect 1 "the config text flipped" "damaged: /config_text is corrupt" "$inspect" --config config.h5
    expect 1 "the config text flipped, summary" "^parts      params ok .* config_text corrupt" "$inspect" config.h5
    size=$(stat -c %s "$ck")
    head -c $((size / 2)) "$ck" > half.h5
    expect 1 "truncated" "half.h5: damaged: not a readable HDF5 file \\(truncated or corrupt\\?\\)" "$inspect" half.h5
    expect 1 "truncated, --json" '"intact":false,"problem":"not a readable HDF5 file' "$inspect" --json half.h5
    printf 'not hdf5\n' > text.h5
    expect 1 "not HDF5" "text.h5: damaged: not a readable HDF5 file" "$inspect" text.h5
    ;;
plot)
    command -v gnuplot > /dev/null || { echo "gnuplot (package gnuplot-nox) not found: skipped"; exit 77; }
    quick_run run 20
    quick_run other 20 --set train.seed=2
    # The PNG's width and height: bytes 16-23 (IHDR), big-endian.
    png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{ print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8 }'; }
    png_magic() { [ "$(od -An -tx1 -N8 "$1" | tr -d ' ')" = 89504e470d0a1a0a ]; }
    "$plot" run other -o both.png > plot.log 2>&1 || { fail "lawt_plot"; cat plot.log >&2; }
    png_magic both.png && [ "$(png_size both.png)" = 1200x500 ] || fail "both.png: not a 1200x500 PNG"
    "$plot" run/metrics.jsonl --norms L1,Linf --size 640x480 -o small.png > plot.log 2>&1 ||
        { fail "lawt_plot --size"; cat plot.log >&2; }
    png_magic small.png && [ "$(png_size small.png)" = 640x480 ] || fail "small.png: not a 640x480 PNG"
    "$plot" run/step-000000020.h5 --svg -o c.svg > plot.log 2>&1 || { fail "lawt_plot --svg"; cat plot.log >&2; }
    grep -q '<svg' c.svg || fail "c.svg is not an SVG"
    # The end of training: the summary table and curves.png.
    png_magic run/curves.png && [ "$(png_size run/curves.png)" = 1200x500 ] || fail "run/curves.png"
    grep -q "^summary  160 examples seen | wall time [0-9.]* s | [0-9.]* examples/s" run.log ||
        fail "no summary line"
    acc=$(grep '"type":"eval"' run/metrics.jsonl | tail -n 1 | grep -o '"acc":{"5":[0-9.]*' | cut -d: -f3)
    grep -Eq "^         5%  +\\| $acc \\(160\\) +$acc \\|" run.log || fail "summary: L1 at 5% is not $acc"
    grep -q "^summary" run/train.log || fail "the summary is not in train.log"
    expect 1 "gnuplot missing" "install the Debian package gnuplot-nox" env PATH=/nonexistent "$plot" run
    # gnuplot failing: its messages are shown; training still ends well, with a warning.
    mkdir -p broken
    printf '#!/bin/sh\necho "boom: no cairo today" >&2\nexit 3\n' > broken/gnuplot
    chmod +x broken/gnuplot
    expect 1 "gnuplot failing" "gnuplot failed \\(status 3\\) drawing curves.png" \
        env PATH="$PWD/broken:$PATH" "$plot" run
    grep -q "gnuplot: boom: no cairo today" out.txt || fail "gnuplot failing: its message not shown"
    PATH="$PWD/broken:$PATH" quick_run broken_run 2
    grep -q "^warning: gnuplot failed (status 3) drawing broken_run/curves.png" broken_run.log ||
        fail "training with a failing gnuplot: no warning"
    expect 1 "unwritable output" "gnuplot failed .* drawing /nonexistent/c.png" "$plot" run -o /nonexistent/c.png
    grep -aq PNG out.txt && fail "unwritable output: the image went to the terminal"
    expect 1 "no such run" "nothing: no such run directory" "$plot" nothing
    expect 2 "bad norm" "unknown norm 'L3'" "$plot" run --norms L1,L3
    expect 0 "--help" "usage: lawt_plot" "$plot" --help
    ;;
sample_size)
    # L1 at 5%: 95 at 2000 examples, a dip below at 3000, 99.2 at 4000; at 1%: 96 at 3000,
    # never 99. L2 and Linf reach 99% at 2000 everywhere: only L1 counts.
    eval_line() { # STEP L1_5 L1_1
        printf '{"type":"eval","step":%d,"examples":%d,"time":%d,"size":100,"acc":{"5":%s,"1":%s},' \
            "$1" "$(($1 * 100))" "$1" "$2" "$3"
        printf '"acc_l2":{"5":99.50,"1":99.00},"acc_linf":{"5":99.50,"1":99.00},"well_formed":100.00}\n'
    }
    mkdir -p synth
    {
        echo '{"type":"train","step":1,"examples":100,"loss":3.0,"lr":0.001,"time":0.1}'
        eval_line 10 50.00 10.00
        eval_line 20 95.00 40.00
        eval_line 30 94.99 96.00
        echo '{"type":"by_condition","tolerance":5,"buckets":[]}'
        eval_line 40 99.20 98.99
    } > synth/metrics.jsonl
    expect 0 "--sample-size" "^\\| 5% \\| 2000 \\| 4000 \\|$" "$plot" synth --sample-size
    grep -q "^| 1% | 3000 | not reached |$" out.txt || { fail "--sample-size at 1%"; cat out.txt >&2; }
    grep -q "^| tolerance | examples to 95% (L1) | examples to 99% (L1) |$" out.txt ||
        fail "--sample-size: no header"
    # Never reached anywhere, and a history with no evaluation.
    eval_line 10 94.99 0 > low.jsonl
    expect 0 "--sample-size, not reached" "^\\| 5% \\| not reached \\| not reached \\|$" \
        "$plot" low.jsonl --sample-size
    head -n 1 synth/metrics.jsonl > train_only.jsonl
    expect 0 "--sample-size, no evaluation" "^\\| tolerance \\|" "$plot" train_only.jsonl --sample-size
    expect 1 "--sample-size, no such run" "nothing: no such run" "$plot" nothing --sample-size
    # The end-of-run summary: the same two columns, from the run's own history.
    quick_run run 10
    grep -q "^summary .*" run.log || fail "no summary"
    grep -Eq "^         tolerance .*\| +L1 to 95% \| +L1 to 99%$" run.log || fail "summary: no sample-size columns"
    "$plot" run --sample-size > table.txt || fail "--sample-size of the run"
    for tol in $(sed -n 's/^| \([0-9.]*\)% |.*/\1/p' table.txt); do
        want=$(sed -n "s/^| $tol% | \(.*\) | \(.*\) |$/\1 \2/p" table.txt | sed 's/not reached/-/g')
        got=$(grep -E "^         $tol% " run.log | awk -F'|' '{ print $(NF-1), $NF }' | tr -s ' ' | sed 's/^ //;s/ $//')
        [ "$got" = "$want" ] || fail "summary at $tol%: '$got', lawt_plot --sample-size says '$want'"
    done
    ;;
cpu_scale)
    script=$src/scripts/cpu_scale.sh
    mkdir -p runs/transpose runs/add
    for t in transpose add; do
        printf '; lawt: resolved configuration\n\n[data]\ntask = %s\ndim = 3\ndim2 = 4\nencoding = P1000\nout_encoding = \n\n[model]\nenc_layers = 1\ndec_layers = 2\nenc_dim = 64\ndec_dim = 64\n' "$t" > runs/$t/config.ini
    done
    { echo '{"type":"train","step":10,"examples":640,"loss":1.5,"lr":0.001,"time":2.0}'
      echo '{"type":"eval","epoch":1,"step":10,"examples":640,"time":3.0,"size":100,"acc":{"5":10.00,"2":5.00,"1":1.00,"0.5":0.00},"acc_l2":{"5":11.00,"2":6.00,"1":2.00,"0.5":1.00},"acc_linf":{"5":9.00,"2":4.00,"1":0.00,"0.5":0.00},"well_formed":90.00}'
      echo '{"type":"eval","epoch":2,"step":20,"examples":1280,"time":120.0,"size":100,"acc":{"5":99.50,"2":98.00,"1":97.00,"0.5":96.00},"acc_l2":{"5":100.00,"2":99.75,"1":99.00,"0.5":98.50},"acc_linf":{"5":99.00,"2":97.50,"1":96.50,"0.5":95.00},"well_formed":100.00,"ood":{"gaussian":{"size":100,"examples":5,"acc":{"5":1.00,"2":1.00,"1":1.00,"0.5":1.00},"well_formed":7.00}}}'
    } > runs/transpose/metrics.jsonl
    echo 'done: 20 steps, 1280 examples, 120.0 s' > runs/transpose/train.log
    head -n 2 runs/transpose/metrics.jsonl > runs/add/metrics.jsonl
    echo 'stopped: 10 steps, 640 examples, 3.0 s' > runs/add/train.log
    "$script" table --runs runs transpose add matvec > table.md 2> err.txt || fail "table exited $?"
    cat table.md
    row() { grep "^| $1 |" table.md; }
    row transpose | grep -qF '| transpose | 3x4 | P1000 | 1/2 x 64 | 1280 | 2 min | 11 | 99.50 / 98.00 / 97.00 / 96.00 | 100.00 / 99.75 / 99.00 / 98.50 | 99.00 / 97.50 / 96.50 / 95.00 | 100.00 | >= 99 | done |' ||
        fail "transpose row: $(row transpose)"
    row add | grep -qF '| 640 | 0 min | 213 | 10.00 / 5.00 / 1.00 / 0.00 |' || fail "add row: $(row add)"
    row add | grep -qF '| stopped |' || fail "add is not shown as stopped: $(row add)"
    row matvec | grep -qF 'not run' || fail "matvec is not shown as missing: $(row matvec)"
    expect 2 "an unknown task" "no job jobs/cpu/bogus.ini" "$script" table --runs runs bogus
    expect 2 "an unknown command" "unknown command 'tabel'" "$script" tabel
    expect 2 "an unknown option" "unknown option '--lane'" "$script" run --lane 2
    ;;
solve_errors)
    quick_run run 1 --set eval.size=0
    quick_run eig 1 --set eval.size=0 --set data.task=eigenvalues
    ck=run/step-000000001.h5
    printf '1 2 3\n4 5\n6 7 8\n' > ragged.txt
    expect 1 "ragged rows" "matrix 1 \\(ragged.txt, line 1\\), row 2 \\(line 2\\): 2 numbers, row 1 has 3" \
        "$solve" --checkpoint "$ck" ragged.txt
    printf '1 2 3\n4 5 6\n7 8 9\n\n1 2 3 4\n5 6 7 8\n9 1 2 3\n4 5 6 7\n' > size.txt
    expect 1 "a size not trained on" "matrix 2 \\(size.txt, line 5\\): M is 4x4; the model was trained on transpose of 3x3 matrices only" \
        "$solve" --checkpoint "$ck" size.txt
    printf '1 2\n3 4\n5 6\n' > shape.txt
    expect 1 "not square" "matrix 1 \\(shape.txt, line 1\\): M is 3x2; the model was trained on transpose of 3x3" \
        "$solve" --checkpoint "$ck" shape.txt
    printf '1 2 3\n4 nan 6\n7 8 9\n' > nan.txt
    expect 1 "NaN" "matrix 1 \\(nan.txt, line 1\\), row 2 \\(line 2\\), column 2: nan is not a finite number" \
        "$solve" --checkpoint "$ck" nan.txt
    printf '1 2 3\n4 5 6\n7 8 -inf\n' > inf.txt
    expect 1 "Inf" "row 3 \\(line 3\\), column 3: -inf is not a finite number" "$solve" --checkpoint "$ck" inf.txt
    printf '1 2 3\n4 5 6\n7 1e200 9\n' > big.txt
    expect 1 "out of range" "row 3 \\(line 3\\), column 2: 1e\\+200 is outside the range of the P1000 encoding" \
        "$solve" --checkpoint "$ck" big.txt
    printf '1 2 3\n4 5 6\n7 1e-200 9\n' > tiny.txt
    expect 1 "tiny" "row 3 \\(line 3\\), column 2: 1e-200 is outside the range" "$solve" --checkpoint "$ck" tiny.txt
    printf '1 2 3\n4 five 6\n7 8 9\n' > word.txt
    expect 1 "not a number" "matrix 1 \\(word.txt, line 1\\), row 2 \\(line 2\\): 'five' is not a number" \
        "$solve" --checkpoint "$ck" word.txt
    printf '1 2 3\n2 5 6\n3 7 9\n' > sym.txt
    expect 1 "not symmetric" "row 3 \\(line 3\\): not symmetric: column 2 is 7, row 2 column 3 is 6" \
        "$solve" --checkpoint eig/step-000000001.h5 sym.txt
    # Every bad matrix is named, and nothing is decoded.
    cat ragged.txt <(echo) nan.txt > two.txt
    expect 1 "two bad matrices" "matrix 2 \\(two.txt, line 5\\), row 2" "$solve" --checkpoint "$ck" two.txt
    grep -q "matrix 1 (two.txt, line 1), row 2" out.txt || fail "two bad matrices: the first not named"
    grep -q "decoding" out.txt && fail "two bad matrices: something was decoded"
    : > empty.txt
    expect 1 "no matrix" "empty.txt: no matrix" "$solve" --checkpoint "$ck" empty.txt
    expect 1 "no checkpoint" "nothing.h5: cannot open" "$solve" --checkpoint nothing.h5 size.txt
    expect 1 "other task" "--task inversion: the model of .* was trained on: transpose" \
        "$solve" --checkpoint "$ck" --task inversion size.txt
    expect 2 "no --checkpoint" "--checkpoint FILE is required" "$solve" size.txt
    expect 0 "--help" "usage: lawt_solve" "$solve" --help
    # Inversion: LAPACK's answer and the reliability predictor, whatever the (untrained) model says.
    quick_run inv 1 --set eval.size=0 --set data.task=inversion
    printf '1 0 0\n0 -2 0\n0 0 4\n' > diag.txt
    expect 0 "inversion" "reliability: condition number of the input 4 " \
        "$solve" --checkpoint inv/step-000000001.h5 diag.txt
    grep -Eq "^  .* +1 +0 +0$" out.txt && grep -Eq "^  .* +0 +-0.5 +0$" out.txt &&
        grep -Eq "^  .* +0 +0 +0.25$" out.txt || fail "inversion: LAPACK's inverse is not diag(1, -0.5, 0.25)"
    # An HDF5 dataset: a missing one is named; two good matrices are decoded.
    if command -v h5import > /dev/null; then
        printf '1 2 3 4 5 6 7 8 9\n9 8 7 6 5 4 3 2 1\n' > m.txt
        printf 'PATH matrices\nINPUT-CLASS TEXTFP\nRANK 3\nDIMENSION-SIZES 2 3 3\nOUTPUT-CLASS FP\nOUTPUT-SIZE 64\n' > m.cfg
        h5import m.txt -c m.cfg -o m.h5 || fail "h5import"
        expect 1 "no dataset" "m.h5:/nothing: m.h5 has no dataset /nothing" "$solve" --checkpoint "$ck" m.h5:/nothing
        expect 0 "an HDF5 dataset" "matrix 2 \\(m.h5:/matrices\\[1\\]\\): transpose of a 3 x 3 matrix" \
            "$solve" --checkpoint "$ck" m.h5:/matrices
    fi
    ;;
solve)
    ck=$1
    [ -f "$ck" ] || { fail "no trained model at $ck (the fixture trainer_learns_transpose makes it)"; exit 1; }
    printf '# a user matrix\n1.5 -2 3.75\n4, 5.25, -0.25\n7 8 9.5\n' > user.txt
    for decoding in --greedy "--beam 2"; do
        # shellcheck disable=SC2086
        expect 0 "solve $decoding" "relative error \\(the paper's check\\): L1 0 \\| L2 0 \\| Linf 0" \
            "$solve" --checkpoint "$ck" $decoding user.txt
        cat out.txt
        # The model's rows, as printed beside LAPACK's: the columns of the input.
        awk '/^  model/ { on = 1; next } on && NF == 6 { print $1, $2, $3 } on && NF != 6 { on = 0 }' out.txt > model.txt
        printf '1.5 4 7\n-2 5.25 8\n3.75 -0.25 9.5\n' > want.txt
        cmp -s model.txt want.txt || { fail "solve $decoding: the model's answer is not the transpose"; cat model.txt >&2; }
    done
    ;;
*)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac
[ "$failures" = 0 ] && echo "PASS" || { echo "$failures failure(s)"; exit 1; }
