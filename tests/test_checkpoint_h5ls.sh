#!/bin/bash
# test_checkpoint_h5ls.sh TEST_CHECKPOINT H5LS H5DUMP
# Writes a checkpoint of the tiny test model and checks that the standard HDF5 tools read it
# and list the documented layout (README.md, "Checkpoint format"): one float32 dataset per
# tensor under /params, /adam/m and /adam/v with the tensor's shape, the two text datasets,
# and the attributes of the root group.
set -u
bin=$1 h5ls=$2 h5dump=$3
dir=$(mktemp -d "${TMPDIR:-/tmp}/lawt-h5ls.XXXXXX")
trap 'rm -rf "$dir"' EXIT
file=$dir/step-000000042.h5
passed=0 failed=0
check() { if [ "$1" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2" >&2; fi; }

"$bin" --write "$file" >"$dir/tensors.txt"
check $? "writing the checkpoint failed"
"$h5ls" -r "$file" >"$dir/h5ls.txt"
check $? "h5ls -r failed"
echo "--- h5ls -r $file (first 12 lines)"
head -n 12 "$dir/h5ls.txt"

has() { grep -Eq -- "$1" "$dir/h5ls.txt"; check $? "h5ls -r does not list: $1"; }
has '^/params +Group$'
has '^/adam +Group$'
has '^/adam/m +Group$'
has '^/adam/v +Group$'
has '^/config_text +Dataset \{SCALAR\}$'
has '^/metrics_jsonl +Dataset \{SCALAR\}$'
# "name shape" as h5ls prints them, e.g. "/params/enc.tok_emb.weight {21, 16}".
declare -A listed
while read -r n kind shape; do
    [ "$kind" = Dataset ] && listed[$n]=$shape
done <"$dir/h5ls.txt"
ntensors=0
while IFS=$'\t' read -r name shape; do
    ntensors=$((ntensors + 1))
    for group in /params /adam/m /adam/v; do
        [ "${listed["$group/$name"]:-missing}" = "{$shape}" ]
        check $? "$group/$name: listed as '${listed["$group/$name"]:-nothing}', expected Dataset {$shape}"
    done
done <"$dir/tensors.txt"
[ "$ntensors" -gt 10 ]; check $? "only $ntensors tensors"
# Exactly the documented objects: 5 groups (/ included), 2 texts, 3 x ntensors tensors.
lines=$(wc -l <"$dir/h5ls.txt")
[ "$lines" = $((7 + 3 * ntensors)) ]; check $? "h5ls lists $lines objects, expected $((7 + 3 * ntensors))"

# Attributes of the root group and a tensor, as h5dump shows them.
"$h5dump" -A -g / "$file" >"$dir/attrs.txt" 2>&1 || "$h5dump" -A "$file" >"$dir/attrs.txt"
for attr in lawt_version format_version step examples_seen epoch seed test_index lr best_accuracy \
            wall_seconds num_params attributes_crc32 params_crc32 adam_m_crc32 adam_v_crc32 config_text_crc32 \
            metrics_jsonl_crc32 enc_layers dec_layers enc_dim dec_dim enc_heads dec_heads vocab_in \
            vocab_out max_len arch rnn_layers rnn_hidden rnn_reverse_source enc_loops dec_loops \
            loop_mode act_threshold ponder_cost; do
    grep -q "ATTRIBUTE \"$attr\"" "$dir/attrs.txt"; check $? "attribute $attr is missing"
done
"$h5dump" -a /step "$file" | grep -q '(0): 42$'; check $? "h5dump -a /step is not 42"
"$h5dump" -a /format_version "$file" | grep -q '(0): 4$'; check $? "h5dump -a /format_version is not 4"
first=$(head -n 1 "$dir/tensors.txt" | cut -f 1)
"$h5dump" -a "/params/$first/offset" "$file" | grep -q '(0): 0$'; check $? "offset of $first is not 0"
"$h5dump" -d /config_text "$file" | grep -q 'enc_layers = 1'; check $? "h5dump -d /config_text"

echo "test_checkpoint_h5ls: $passed passed, $failed failed"
[ "$failed" = 0 ]
