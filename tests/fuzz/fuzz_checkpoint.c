/* fuzz_checkpoint: libFuzzer target for the checkpoint loader (checkpoint/checkpoint.c). The
 * input is written to a file and read by every reader the trainer uses, into a small model of
 * the seed files' configuration. Each must load or refuse with a message naming the file,
 * never crash; counters it accepts must be in the ranges the loader promises. Seeds:
 * tests/fuzz/corpus/checkpoint (format_version 1 and 2). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"

static const model_config MINI = {.enc_layers = 1, .dec_layers = 1, .enc_dim = 4,
                                   .dec_dim = 4, .enc_heads = 1, .dec_heads = 1,
                                   .vocab_in = 5, .vocab_out = 5, .max_len = 3};

static char path[4096];

static void remove_input(void) { unlink(path); }

/* Where the input file goes: memory (/dev/shm) when there is one, the file being rewritten
 * for every input; else TMPDIR or /tmp. */
static const char *scratch_dir(void)
{
    if (access("/dev/shm", W_OK) == 0) return "/dev/shm";
    return getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void refused_well(const char *path, const char *err)
{
    if (!strstr(err, path)) {
        fprintf(stderr, "a refusal that does not name the file: %s\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static model *m;
    if (!m) {
        snprintf(path, sizeof path, "%s/lawt-fuzz-checkpoint-%ld.h5", scratch_dir(), (long)getpid());
        atexit(remove_input);
        m = model_create(&MINI, BACKEND_CPU, 1);
        model_init_params(m, 1);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    char err[2048];
    checkpoint_meta meta;
    if (checkpoint_read_meta(path, &meta, err, sizeof err) == 0) {
        if (meta.step < 0 || meta.epoch < 0 || meta.epoch > meta.step || meta.examples_seen < meta.step ||
            !(meta.lr >= 0 && meta.lr <= 1 + 1e-9) || !isfinite(meta.wall_seconds) ||
            !(meta.best_accuracy == -1 || (meta.best_accuracy >= 0 && meta.best_accuracy <= 100)) ||
            !meta.config_text || !meta.metrics_jsonl)
            abort();
        checkpoint_meta_free(&meta);
    } else {
        refused_well(path, err);
    }
    model_config cfg;
    if (checkpoint_read_model_config(path, &cfg, err, sizeof err) != 0) refused_well(path, err);
    if (checkpoint_load(path, m, 1, err, sizeof err) != 0) refused_well(path, err);
    if (checkpoint_load_for_retraining(path, m, err, sizeof err) != 0) refused_well(path, err);
    return 0;
}
