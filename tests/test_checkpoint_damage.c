/* test_checkpoint_damage: damaged, truncated and foreign checkpoints, and a checkpoint of the
 * previous format (issue 11).
 *
 * Each variant is loaded in a child process, so that a crash is reported as a failure of that
 * variant, through every reader the trainer uses (checkpoint_read_meta, checkpoint_load,
 * checkpoint_load_for_retraining). It must be refused with a message naming the file, or load
 * exactly the original (a flipped bit in bytes HDF5 does not use changes nothing): counters,
 * texts, parameters and both moments bit for bit. Variants: every numeric attribute and every
 * CRC attribute rewritten (step = 10^12, NaN lr and best_accuracy among them), bit flips at
 * deterministic pseudo-random offsets over the whole file and in each tensor group's data,
 * truncations, and foreign files (a directory, an empty file, text, HDF5 files with our names
 * but other types).
 *
 * tests/data/checkpoint_v1.h5 was written by lawt 0.1.0 at commit a609551 (format_version 1,
 * no attributes_crc32) for the model MINI below: parameters from that commit's
 * model_init_params(seed 11) (the reference reads them with HDF5), first moment i * 0.001,
 * second moment i * 1e-6 (float i, the flat index), and the counters of V1_META. It must
 * still load, exactly; its counters are checked by range alone.
 *
 * tests/fuzz/corpus/checkpoint/v2.h5, a file of format_version 2 for the same model, must load
 * too (format 3 added the architecture attributes, format 4 the loops).
 *
 * Usage: test_checkpoint_damage PATH/TO/checkpoint_v1.h5 PATH/TO/v2.h5 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"
#include "model/model.h"
#include "tests/test.h"

static const model_config MINI = {.enc_layers = 1, .dec_layers = 1, .enc_dim = 4,
                                   .dec_dim = 4, .enc_heads = 1, .dec_heads = 1,
                                   .vocab_in = 5, .vocab_out = 5, .max_len = 3};

static const checkpoint_meta V1_META = {
    .step = 30, .examples_seen = 240, .epoch = 3, .seed = 5, .test_index = 40, .lr = 2.5e-4,
    .best_accuracy = 12.5, .wall_seconds = 3.25, .config_text = "[model]\nenc_layers = 1\n",
    .metrics_jsonl = "{\"step\": 10}\n",
};

static char dir[256];

/* What a variant may load: exactly this. */
typedef struct {
    checkpoint_meta meta;
    float *params, *m, *v;
    size_t n;
} reference;

static model *make_model(uint64_t seed)
{
    model *m = model_create(&MINI, BACKEND_CPU, 1);
    model_init_params(m, seed);
    return m;
}

/* The parameters of the format-1 file as HDF5 itself reads them, tensor by tensor (the
 * initialisation that made them has changed since), and its moments from their pattern. */
static void reference_v1(reference *r, const char *v1)
{
    model *m = make_model(0);
    r->meta = V1_META;
    r->n = model_num_params(m);
    r->params = lawt_malloc(r->n * sizeof(float));
    r->m = lawt_malloc(r->n * sizeof(float));
    r->v = lawt_malloc(r->n * sizeof(float));
    int nt = model_tensors(&MINI, NULL, 0);
    model_tensor *t = lawt_calloc((size_t)nt, sizeof *t);
    model_tensors(&MINI, t, nt);
    hid_t f = H5Fopen(v1, H5F_ACC_RDONLY, H5P_DEFAULT);
    for (int i = 0; i < nt; i++) {
        char name[96];
        snprintf(name, sizeof name, "/params/%s", t[i].name);
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        if (d < 0 || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->params + t[i].offset) < 0) {
            fprintf(stderr, "%s: cannot read %s\n", v1, name);
            exit(1);
        }
        H5Dclose(d);
    }
    H5Fclose(f);
    free(t);
    for (size_t i = 0; i < r->n; i++) r->m[i] = (float)i * 0.001f;
    for (size_t i = 0; i < r->n; i++) r->v[i] = (float)i * 1e-6f;
    model_free(m);
}

static void reference_free(reference *r)
{
    free(r->params);
    free(r->m);
    free(r->v);
}

/* The reference written in the current format. */
static void write_current(const reference *r, const char *path)
{
    model *m = make_model(0);
    model_copy_in(m, BUF_PARAMS, r->params);
    model_copy_in(m, BUF_ADAM_M, r->m);
    model_copy_in(m, BUF_ADAM_V, r->v);
    char err[1024];
    if (checkpoint_save(path, m, &r->meta, err, sizeof err)) {
        fprintf(stderr, "cannot write the reference: %s\n", err);
        exit(1);
    }
    model_free(m);
}

static int same_meta(const checkpoint_meta *a, const checkpoint_meta *b)
{
    return a->step == b->step && a->examples_seen == b->examples_seen && a->epoch == b->epoch &&
           a->seed == b->seed && a->test_index == b->test_index &&
           memcmp(&a->lr, &b->lr, sizeof a->lr) == 0 &&
           memcmp(&a->best_accuracy, &b->best_accuracy, sizeof a->best_accuracy) == 0 &&
           memcmp(&a->wall_seconds, &b->wall_seconds, sizeof a->wall_seconds) == 0 &&
           strcmp(a->config_text, b->config_text) == 0 &&
           strcmp(a->metrics_jsonl, b->metrics_jsonl) == 0;
}

static int same_floats(const model *m, model_buffer which, const float *want, size_t n)
{
    float *got = lawt_malloc(n * sizeof *got);
    model_copy_out(m, which, got);
    int same = memcmp(got, want, n * sizeof *got) == 0;
    free(got);
    return same;
}

enum { LOADED_EXACTLY = 0, REFUSED = 1, LOADED_WRONG = 3, MESSAGE_LACKS_FILE = 4 };

/* In the child: every reader on path. */
static int try_readers(const char *path, const reference *r, char *first_err, size_t cap)
{
    char err[2048];
    int refused = 0, wrong = 0, nameless = 0;
    first_err[0] = '\0';
#define OUTCOME(rc, loaded_ok)                                                  \
    do {                                                                        \
        if ((rc) != 0) {                                                        \
            refused = 1;                                                        \
            if (!strstr(err, path)) nameless = 1;                              \
            if (!first_err[0]) snprintf(first_err, cap, "%s", err);             \
        } else if (!(loaded_ok)) {                                              \
            wrong = 1;                                                          \
        }                                                                       \
    } while (0)
    checkpoint_meta meta;
    int rc = checkpoint_read_meta(path, &meta, err, sizeof err);
    OUTCOME(rc, same_meta(&meta, &r->meta));
    if (rc == 0) checkpoint_meta_free(&meta);

    model_config cfg;
    rc = checkpoint_read_model_config(path, &cfg, err, sizeof err);
    OUTCOME(rc, memcmp(&cfg, &MINI, sizeof cfg) == 0);

    model *m = make_model(1);
    rc = checkpoint_load(path, m, 1, err, sizeof err);
    OUTCOME(rc, same_floats(m, BUF_PARAMS, r->params, r->n) && same_floats(m, BUF_ADAM_M, r->m, r->n) &&
                    same_floats(m, BUF_ADAM_V, r->v, r->n));
    model_free(m);

    m = make_model(2);
    rc = checkpoint_load_for_retraining(path, m, err, sizeof err);
    OUTCOME(rc, same_floats(m, BUF_PARAMS, r->params, r->n));
    model_free(m);
#undef OUTCOME
    if (wrong) return LOADED_WRONG;
    if (nameless) return MESSAGE_LACKS_FILE;
    return refused ? REFUSED : LOADED_EXACTLY;
}

static int variants, refusals, harmless;

/* Loads path in a child; must_refuse: a damage every reader must see. want: a fragment the
 * first message must hold (or NULL). */
static void check_variant(const char *what, const char *path, const reference *r, int must_refuse,
                          const char *want)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        char msg[2048];
        int outcome = try_readers(path, r, msg, sizeof msg);
        ssize_t len = (ssize_t)strlen(msg);
        if (write(fds[1], msg, (size_t)len) != len) outcome = 5;
        close(fds[1]);
        exit(outcome);
    }
    close(fds[1]);
    char msg[2048];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof msg - 1 && (k = read(fds[0], msg + got, sizeof msg - 1 - got)) > 0) got += (size_t)k;
    msg[got] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    variants++;
    if (WIFSIGNALED(status)) {
        CHECK_MSG(0, "%s: the reader crashed (signal %d)", what, WTERMSIG(status));
        return;
    }
    int outcome = WEXITSTATUS(status);
    CHECK_MSG(outcome == REFUSED || outcome == LOADED_EXACTLY, "%s: %s (%s)", what,
              outcome == LOADED_WRONG ? "loaded values that differ from the file's" :
              outcome == MESSAGE_LACKS_FILE ? "a message without the file's name" : "child failed",
              msg);
    if (must_refuse) CHECK_MSG(outcome == REFUSED, "%s: loaded, should be refused", what);
    if (want && outcome == REFUSED) CHECK_MSG(strstr(msg, want), "%s: message '%s' lacks '%s'", what, msg, want);
    if (outcome == REFUSED) refusals++;
    if (outcome == LOADED_EXACTLY) harmless++;
    printf("  %-44s %s\n", what, outcome == REFUSED ? msg : "loads, unchanged");
}

static long size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void copy_file(const char *from, const char *to, long length)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) {
        perror(from);
        exit(1);
    }
    char buf[65536];
    long total = 0;
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0 && (length < 0 || total < length)) {
        if (length >= 0 && total + (long)k > length) k = (size_t)(length - total);
        if (fwrite(buf, 1, k, out) != k) exit(1);
        total += (long)k;
    }
    fclose(in);
    if (fclose(out) != 0) exit(1);
}

static void flip_bit(const char *path, long offset, int bit)
{
    FILE *f = fopen(path, "r+b");
    if (!f || fseek(f, offset, SEEK_SET) != 0) exit(1);
    int c = fgetc(f);
    fseek(f, offset, SEEK_SET);
    fputc((c ^ (1 << bit)) & 0xFF, f);
    if (fclose(f) != 0) exit(1);
}

/* Rewrites a root attribute through HDF5 (its metadata checksums stay right): the damage only
 * our checks can see. */
static void set_attr(const char *path, const char *name, hid_t mem_type, const void *value)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (f < 0 || a < 0 || H5Awrite(a, mem_type, value) < 0) {
        fprintf(stderr, "cannot rewrite attribute %s of %s\n", name, path);
        exit(1);
    }
    H5Aclose(a);
    H5Fclose(f);
}

static void get_attr(const char *path, const char *name, hid_t mem_type, void *value)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (f < 0 || a < 0 || H5Aread(a, mem_type, value) < 0) exit(1);
    H5Aclose(a);
    H5Fclose(f);
}

static void test_old_format(const char *v1, const reference *r)
{
    char err[2048];
    checkpoint_meta meta;
    CHECK_MSG(checkpoint_read_meta(v1, &meta, err, sizeof err) == 0, "%s", err);
    CHECK(same_meta(&meta, &V1_META));
    model *m = make_model(3);
    CHECK_MSG(checkpoint_load(v1, m, 1, err, sizeof err) == 0, "%s", err);
    CHECK(same_floats(m, BUF_PARAMS, r->params, r->n) && same_floats(m, BUF_ADAM_M, r->m, r->n) &&
          same_floats(m, BUF_ADAM_V, r->v, r->n));
    model_free(m);
    /* Its counters against a resuming run: 8 examples a step, 10 steps an epoch, 40 steps. */
    CHECK_MSG(checkpoint_check_progress(v1, &meta, 8, 10, 40, err, sizeof err) == 0, "%s", err);
    CHECK(checkpoint_check_progress(v1, &meta, 8, 10, 20, err, sizeof err) != 0 &&
          strstr(err, v1) && strstr(err, "step 30 is beyond the run's 20 steps"));
    CHECK(checkpoint_check_progress(v1, &meta, 16, 10, 40, err, sizeof err) != 0 &&
          strstr(err, "train.batch_size must stay 8"));
    CHECK(checkpoint_check_progress(v1, &meta, 8, 7, 40, err, sizeof err) != 0 &&
          strstr(err, "train.epoch_size"));
    checkpoint_meta_free(&meta);

    /* Without attributes_crc32, the ranges are what refuses a damaged counter. */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/v1-bad.h5", dir);
    long long big = 1000000000000LL;
    copy_file(v1, bad, -1);
    set_attr(bad, "step", H5T_NATIVE_LLONG, &big);
    check_variant("v1: step = 10^12", bad, r, 1, "attribute step = 1000000000000");
    double nan = NAN;
    copy_file(v1, bad, -1);
    set_attr(bad, "lr", H5T_NATIVE_DOUBLE, &nan);
    check_variant("v1: lr = NaN", bad, r, 1, "attribute lr = nan");
    copy_file(v1, bad, -1);
    set_attr(bad, "best_accuracy", H5T_NATIVE_DOUBLE, &nan);
    check_variant("v1: best_accuracy = NaN", bad, r, 1, "attribute best_accuracy = nan");
    long long negative = -3;
    copy_file(v1, bad, -1);
    set_attr(bad, "epoch", H5T_NATIVE_LLONG, &negative);
    check_variant("v1: epoch = -3", bad, r, 1, "attribute epoch = -3");
    unlink(bad);
}

/* Every numeric attribute of the root group changed, one at a time. */
static void test_attributes(const char *good, const reference *r)
{
    static const char *const ints[] = {"step", "examples_seen", "epoch", "seed", "test_index",
                                       "num_params", "enc_layers", "dec_layers", "enc_dim",
                                       "dec_dim", "enc_heads", "dec_heads", "vocab_in",
                                       "vocab_out", "max_len", "arch", "enc_loops",
                                       "dec_loops", "loop_mode", "attributes_crc32", "params_crc32",
                                       "adam_m_crc32", "adam_v_crc32", "config_text_crc32",
                                       "metrics_jsonl_crc32"};
    static const char *const reals[] = {"lr", "best_accuracy", "wall_seconds", "act_threshold",
                                        "ponder_cost"};
    char bad[512], what[96];
    snprintf(bad, sizeof bad, "%s/attr.h5", dir);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long long v;
        copy_file(good, bad, -1);
        get_attr(bad, ints[i], H5T_NATIVE_LLONG, &v);
        v ^= 1; /* the lowest bit: the smallest damage */
        set_attr(bad, ints[i], H5T_NATIVE_LLONG, &v);
        snprintf(what, sizeof what, "%s, lowest bit flipped", ints[i]);
        check_variant(what, bad, r, 1, NULL);
    }
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        double v;
        copy_file(good, bad, -1);
        get_attr(bad, reals[i], H5T_NATIVE_DOUBLE, &v);
        v = nextafter(v, INFINITY);
        set_attr(bad, reals[i], H5T_NATIVE_DOUBLE, &v);
        snprintf(what, sizeof what, "%s, next double", reals[i]);
        check_variant(what, bad, r, 1, "attributes_crc32");
    }
    long long big = 1000000000000LL;
    copy_file(good, bad, -1);
    set_attr(bad, "step", H5T_NATIVE_LLONG, &big);
    check_variant("step = 10^12", bad, r, 1, "attribute step = 1000000000000");
    /* lawt_inspect's reader says the same. */
    checkpoint_contents c;
    CHECK(checkpoint_inspect(bad, &c) != 0 && c.damaged && strstr(c.problem, "attribute step"));
    checkpoint_contents_free(&c);
    unsigned long long seed;
    copy_file(good, bad, -1);
    get_attr(bad, "seed", H5T_NATIVE_ULLONG, &seed);
    seed ^= 1;
    set_attr(bad, "seed", H5T_NATIVE_ULLONG, &seed);
    CHECK(checkpoint_inspect(bad, &c) != 0 && c.damaged && strstr(c.problem, "attributes_crc32"));
    checkpoint_contents_free(&c);
    CHECK(checkpoint_inspect(good, &c) == 0 && !c.damaged && c.problem[0] == '\0');
    checkpoint_contents_free(&c);
    double nan = NAN;
    copy_file(good, bad, -1);
    set_attr(bad, "lr", H5T_NATIVE_DOUBLE, &nan);
    check_variant("lr = NaN", bad, r, 1, "attribute lr = nan");
    copy_file(good, bad, -1);
    set_attr(bad, "best_accuracy", H5T_NATIVE_DOUBLE, &nan);
    check_variant("best_accuracy = NaN", bad, r, 1, "attribute best_accuracy = nan");
    double above = 100.5;
    copy_file(good, bad, -1);
    set_attr(bad, "best_accuracy", H5T_NATIVE_DOUBLE, &above);
    check_variant("best_accuracy = 100.5", bad, r, 1, "attribute best_accuracy = 100.5");
    unlink(bad);
}

static long data_offset(const char *path, const char *dataset)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
    haddr_t a = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    return a == HADDR_UNDEF ? -1 : (long)a;
}

/* Bit flips: in each buffer's data and texts, and at pseudo-random offsets over the file. */
static void test_bit_flips(const char *good, const reference *r, int random_flips)
{
    char bad[512], what[96];
    snprintf(bad, sizeof bad, "%s/flip.h5", dir);
    static const char *const data[] = {"/params/enc.tok_emb.weight", "/adam/m/dec.out_bias",
                                       "/adam/v/enc.tok_emb.weight", "/config_text", "/metrics_jsonl"};
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) {
        long at = data_offset(good, data[i]);
        CHECK_MSG(at > 0, "no data offset for %s", data[i]);
        if (at <= 0) continue;
        copy_file(good, bad, -1);
        flip_bit(bad, at + 2, 3);
        snprintf(what, sizeof what, "bit flipped in %s", data[i]);
        check_variant(what, bad, r, 1, "corrupt");
    }
    long size = size_of(good);
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < random_flips; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        long offset = (long)((state >> 33) % (uint64_t)size);
        int bit = (int)((state >> 20) & 7);
        copy_file(good, bad, -1);
        flip_bit(bad, offset, bit);
        snprintf(what, sizeof what, "bit %d of byte %ld flipped", bit, offset);
        check_variant(what, bad, r, 0, NULL);
    }
    unlink(bad);
}

static void test_truncations(const char *good, const reference *r)
{
    char bad[512], what[96];
    snprintf(bad, sizeof bad, "%s/cut.h5", dir);
    long size = size_of(good);
    const long lengths[] = {0, 1, 8, 512, size / 4, size / 2, 3 * size / 4, size - 1};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        copy_file(good, bad, lengths[i]);
        snprintf(what, sizeof what, "truncated to %ld of %ld bytes", lengths[i], size);
        check_variant(what, bad, r, 1, NULL);
    }
    unlink(bad);
}

/* A new HDF5 file with a root attribute format_version (of the given type) and nothing else. */
static void foreign_hdf5(const char *path, hid_t type, const void *value)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format_version", type, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, value);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);
}

static void test_foreign(const char *good, const reference *r)
{
    char bad[512];
    snprintf(bad, sizeof bad, "%s/foreign", dir);
    mkdir(bad, 0700);
    check_variant("a directory", bad, r, 1, "not a regular file");
    rmdir(bad);
    check_variant("a missing file", bad, r, 1, "cannot open");
    FILE *f = fopen(bad, "w");
    fclose(f);
    check_variant("an empty file", bad, r, 1, "not a readable HDF5 file");
    f = fopen(bad, "w");
    fputs("[model]\nenc_layers = 1\n", f);
    fclose(f);
    check_variant("a text file", bad, r, 1, "not a readable HDF5 file");

    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 2);
    foreign_hdf5(bad, str, "2");
    H5Tclose(str);
    check_variant("format_version a string", bad, r, 1, "attribute format_version");
    int two = 2;
    foreign_hdf5(bad, H5T_NATIVE_INT, &two);
    check_variant("format_version alone", bad, r, 1, "attribute step is missing");

    /* A checkpoint whose /params is a dataset, and one whose /config_text is a number. */
    copy_file(good, bad, -1);
    hid_t h = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(h, "params", H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(h, "params", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Ldelete(h, "config_text", H5P_DEFAULT);
    d = H5Dcreate2(h, "config_text", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(h);
    check_variant("/params and /config_text of other types", bad, r, 1, NULL);
    unlink(bad);
}

/* A file of format_version 2 (before the architecture attributes of version 3) holds a
 * transformer: every reader takes it, as arch transformer without loops. */
static void test_format_2(const char *v2)
{
    char err[1024];
    model_config cfg;
    CHECK_MSG(checkpoint_read_model_config(v2, &cfg, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(&cfg, &MINI, sizeof cfg) == 0);
    CHECK(cfg.arch == ARCH_TRANSFORMER && cfg.enc_loops == 0 && cfg.loop_mode == LOOP_FIXED);
    checkpoint_meta meta;
    CHECK_MSG(checkpoint_read_meta(v2, &meta, err, sizeof err) == 0, "%s", err);
    checkpoint_meta_free(&meta);
    model *m = make_model(0);
    CHECK_MSG(checkpoint_load(v2, m, 1, err, sizeof err) == 0, "format 2: %s", err);
    CHECK_MSG(checkpoint_load_for_retraining(v2, m, err, sizeof err) == 0, "format 2: %s", err);
    model_free(m);
    checkpoint_contents c;
    CHECK(checkpoint_inspect(v2, &c) == 0 && !c.damaged && c.format_version == 2);
    checkpoint_contents_free(&c);
    printf("format_version 2 file %s: read, loaded and inspected\n", v2);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PATH/TO/checkpoint_v1.h5 PATH/TO/v2.h5\n", argv[0]);
        return 2;
    }
    test_format_2(argv[2]);
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/lawt-test-damage-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    reference r;
    reference_v1(&r, argv[1]);
    char good[512];
    snprintf(good, sizeof good, "%s/good.h5", dir);
    write_current(&r, good);
    printf("reference: %s, %ld bytes (format_version %d)\n", good, size_of(good),
           CHECKPOINT_FORMAT_VERSION);
    check_variant("the undamaged file", good, &r, 0, NULL);
    CHECK(harmless == 1);
    /* What no reader would take is not written either. */
    {
        model *m = make_model(0);
        checkpoint_meta bad_meta = r.meta;
        bad_meta.lr = NAN;
        char path[512], err[1024];
        snprintf(path, sizeof path, "%s/never.h5", dir);
        CHECK(checkpoint_save(path, m, &bad_meta, err, sizeof err) != 0 &&
              strstr(err, "attribute lr = nan") && size_of(path) < 0);
        model_free(m);
    }
    test_old_format(argv[1], &r);
    test_attributes(good, &r);
    test_bit_flips(good, &r, 40);
    test_truncations(good, &r);
    test_foreign(good, &r);
    printf("%d variants: %d refused, %d loaded unchanged (the damage was in unused bytes)\n",
           variants, refusals, harmless);
    unlink(good);
    rmdir(dir);
    reference_free(&r);
    return test_report("test_checkpoint_damage");
}
