/* test_checkpoint.c: HDF5 checkpoints on a tiny model.
 *   - save + load round trip is bit-exact (parameters, both Adam moments, every meta field,
 *     including -0.0, a NaN payload, a denormal and infinities);
 *   - a model config that differs is refused naming the field;
 *   - corrupted files (bytes flipped in the middle, in a tensor, in the config text; truncated;
 *     not HDF5; not a lawt checkpoint; another format version) are refused with a clear message
 *     and leave the model untouched;
 *   - a failed write (the temporary path unusable; the file size limit hit mid-write) keeps the
 *     previous checkpoint intact and leaves no temporary file;
 *   - checkpoint_step_path / checkpoint_latest / checkpoint_keep_last.
 * "test_checkpoint --write FILE" writes a checkpoint of the tiny model and prints its tensors
 * (name, TAB, shape as h5ls prints it) for tests/test_checkpoint_h5ls.sh. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"
#include "model/model.h"
#include "tests/test.h"

static const model_config TINY = {
    .enc_layers = 1, .dec_layers = 2, .enc_dim = 16, .dec_dim = 24, .enc_heads = 2,
    .dec_heads = 4, .vocab_in = 21, .vocab_out = 19, .max_len = 13,
};

static char dir[256];

static void path_in_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Parameters from the model's own initialisation plus special values; moments a pattern. */
static model *make_model(const model_config *cfg, uint64_t seed, int fill_moments)
{
    model *m = model_create(cfg, BACKEND_CPU, 1);
    model_init_params(m, seed);
    size_t n = model_num_params(m);
    float *p = lawt_malloc(n * sizeof *p);
    model_copy_out(m, BUF_PARAMS, p);
    p[0] = -0.0f;
    p[1] = bits_float(0x7fc01234u); /* a quiet NaN with a payload */
    p[2] = bits_float(0x00000001u); /* the smallest denormal */
    p[n - 1] = bits_float(0xff800000u); /* -inf */
    model_copy_in(m, BUF_PARAMS, p);
    if (fill_moments) {
        for (size_t i = 0; i < n; i++) p[i] = (float)((double)((i * 2654435761u + seed) % 10007) / 997.0 - 5.0);
        p[3] = bits_float(0x7f800000u);
        model_copy_in(m, BUF_ADAM_M, p);
        for (size_t i = 0; i < n; i++) p[i] = (float)((double)((i * 40503u + seed) % 8191) * 1e-7);
        model_copy_in(m, BUF_ADAM_V, p);
    }
    free(p);
    return m;
}

/* Are buffer `which` of a and b identical bit for bit? */
static int same_buffer(const model *a, const model *b, model_buffer which)
{
    size_t n = model_num_params(a);
    if (n != model_num_params(b)) return 0;
    float *x = lawt_malloc(n * sizeof *x), *y = lawt_malloc(n * sizeof *y);
    model_copy_out(a, which, x);
    model_copy_out(b, which, y);
    int same = memcmp(x, y, n * sizeof *x) == 0;
    free(x);
    free(y);
    return same;
}

static int buffer_is_zero(const model *m, model_buffer which)
{
    size_t n = model_num_params(m);
    float *x = lawt_malloc(n * sizeof *x);
    model_copy_out(m, which, x);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= x[i] == 0.0f;
    free(x);
    return zero;
}

static checkpoint_meta sample_meta(long step)
{
    checkpoint_meta meta = {
        .step = step, .examples_seen = step * 64, .epoch = step / 7,
        .seed = 0xDEADBEEFCAFEF00DULL, /* above INT64_MAX */
        .test_index = (uint64_t)1 << 40, .lr = 5e-5 / 3.0, .best_accuracy = 87.53125,
        .wall_seconds = 1234.0625,
        .config_text = "[model]\nenc_layers = 1\n# caf\xc3\xa9 = UTF-8\n[train]\nlr = 5e-5\n",
    };
    static char metrics[20000];
    size_t off = 0;
    for (int i = 0; i < 200; i++)
        off += (size_t)snprintf(metrics + off, sizeof metrics - off,
                                "{\"step\": %d, \"loss\": %.6f, \"acc\": %.2f}\n", i * 100, 1.0 / (i + 1), i * 0.4);
    meta.metrics_jsonl = metrics;
    return meta;
}

static int file_size(const char *path, long *size)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    *size = (long)st.st_size;
    return 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int copy_file(const char *from, const char *to, long truncate_to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) return -1;
    char buf[65536];
    long total = 0;
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) {
        if (truncate_to >= 0 && total + (long)k > truncate_to) k = (size_t)(truncate_to - total);
        fwrite(buf, 1, k, out);
        total += (long)k;
        if (truncate_to >= 0 && total >= truncate_to) break;
    }
    fclose(in);
    return fclose(out);
}

static void flip_bytes(const char *path, long offset, int count)
{
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    for (int i = 0; i < count; i++) {
        fseek(f, offset + i, SEEK_SET);
        int c = fgetc(f);
        fseek(f, offset + i, SEEK_SET);
        fputc((c ^ 0x5A) & 0xFF, f);
    }
    fclose(f);
}

/* File offset of a contiguous dataset's data (via HDF5 directly). */
static long dataset_offset(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    haddr_t a = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    return a == HADDR_UNDEF ? -1 : (long)a;
}

static void test_round_trip(void)
{
    model *a = make_model(&TINY, 7, 1);
    checkpoint_meta meta = sample_meta(12345);
    char path[512], err[1024];
    CHECK(checkpoint_step_path(dir, meta.step, path, sizeof path) == 0);
    char want[512];
    snprintf(want, sizeof want, "%s/step-000012345.h5", dir);
    CHECK_MSG(strcmp(path, want) == 0, "step path %s", path);
    int rc = checkpoint_save(path, a, &meta, err, sizeof err);
    CHECK_MSG(rc == 0, "save: %s", err);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!exists(tmp));

    model_config cfg;
    rc = checkpoint_read_model_config(path, &cfg, err, sizeof err);
    CHECK_MSG(rc == 0, "read config: %s", err);
    CHECK(memcmp(&cfg, &TINY, sizeof cfg) == 0);

    checkpoint_meta got;
    rc = checkpoint_read_meta(path, &got, err, sizeof err);
    CHECK_MSG(rc == 0, "read meta: %s", err);
    if (rc == 0) {
        CHECK(got.step == meta.step);
        CHECK(got.examples_seen == meta.examples_seen);
        CHECK(got.epoch == meta.epoch);
        CHECK(got.seed == meta.seed);
        CHECK(got.test_index == meta.test_index);
        CHECK(memcmp(&got.lr, &meta.lr, sizeof got.lr) == 0);
        CHECK(got.best_accuracy == meta.best_accuracy);
        CHECK(got.wall_seconds == meta.wall_seconds);
        CHECK(strcmp(got.config_text, meta.config_text) == 0);
        CHECK(strcmp(got.metrics_jsonl, meta.metrics_jsonl) == 0);
        checkpoint_meta_free(&got);
        CHECK(got.config_text == NULL && got.metrics_jsonl == NULL);
    }

    model *b = make_model(&TINY, 99, 0);
    CHECK(!same_buffer(a, b, BUF_PARAMS));
    rc = checkpoint_load(path, b, 1, err, sizeof err);
    CHECK_MSG(rc == 0, "load: %s", err);
    CHECK(same_buffer(a, b, BUF_PARAMS));
    CHECK(same_buffer(a, b, BUF_ADAM_M));
    CHECK(same_buffer(a, b, BUF_ADAM_V));

    /* Without the optimizer: parameters only, the moments stay as they were (zero). */
    model *c = make_model(&TINY, 5, 0);
    rc = checkpoint_load(path, c, 0, err, sizeof err);
    CHECK_MSG(rc == 0, "load without optimizer: %s", err);
    CHECK(same_buffer(a, c, BUF_PARAMS));
    CHECK(buffer_is_zero(c, BUF_ADAM_M) && buffer_is_zero(c, BUF_ADAM_V));

    /* Empty / NULL texts round-trip as "". */
    checkpoint_meta empty = {.step = 1, .examples_seen = 64};
    char path2[512];
    path_in_dir(path2, sizeof path2, "empty.h5");
    rc = checkpoint_save(path2, a, &empty, err, sizeof err);
    CHECK_MSG(rc == 0, "save with NULL texts: %s", err);
    rc = checkpoint_read_meta(path2, &got, err, sizeof err);
    CHECK_MSG(rc == 0 && got.config_text && got.config_text[0] == '\0' && got.metrics_jsonl &&
                  got.metrics_jsonl[0] == '\0',
              "empty texts: %s", err);
    checkpoint_meta_free(&got);
    unlink(path2);

    model_free(a);
    model_free(b);
    model_free(c);
}

static void test_config_mismatch(void)
{
    char path[512], err[1024];
    CHECK(checkpoint_step_path(dir, 12345, path, sizeof path) == 0);
    model_config other = TINY;
    other.dec_dim = 32;
    model *m = make_model(&other, 3, 0);
    model *ref = make_model(&other, 3, 0);
    CHECK(checkpoint_load(path, m, 1, err, sizeof err) != 0);
    CHECK_MSG(strstr(err, "has dec_dim 24, the model (config) has 32") != NULL, "message: %s", err);
    CHECK(strstr(err, path) != NULL);
    CHECK(same_buffer(m, ref, BUF_PARAMS));
    printf("  config mismatch: %s\n", err);
    model_free(m);
    model_free(ref);

    other = TINY;
    other.max_len = 14;
    m = make_model(&other, 3, 0);
    CHECK(checkpoint_load(path, m, 0, err, sizeof err) != 0);
    CHECK_MSG(strstr(err, "max_len 13") != NULL && strstr(err, "has 14") != NULL, "message: %s", err);
    model_free(m);
}

/* A universal transformer (format_version 3's config attributes): its loop settings and loop
 * tensors round-trip, and a model with other loop settings is refused, naming the field. */
static void test_universal_round_trip(void)
{
    model_config ut = TINY;
    ut.dec_layers = 1;
    ut.arch = ARCH_UNIVERSAL;
    ut.enc_loops = 3;
    ut.dec_loops = 2;
    ut.loop_mode = LOOP_ACT;
    ut.act_threshold = 0.9;
    ut.ponder_cost = 0.05;
    model *a = make_model(&ut, 7, 1);
    checkpoint_meta meta = sample_meta(10);
    char path[512], err[1024];
    path_in_dir(path, sizeof path, "universal.h5");
    CHECK_MSG(checkpoint_save(path, a, &meta, err, sizeof err) == 0, "save: %s", err);
    model_config cfg;
    CHECK_MSG(checkpoint_read_model_config(path, &cfg, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(&cfg, &ut, sizeof cfg) == 0);
    model *b = make_model(&ut, 99, 0);
    CHECK_MSG(checkpoint_load(path, b, 1, err, sizeof err) == 0, "load: %s", err);
    CHECK(same_buffer(a, b, BUF_PARAMS) && same_buffer(a, b, BUF_ADAM_V));
    model_free(b);
    model_config other = ut;
    other.loop_mode = LOOP_GATED;
    b = make_model(&other, 3, 0);
    CHECK(checkpoint_load(path, b, 0, err, sizeof err) != 0 && strstr(err, "loop_mode 2"));
    model_free(b);
    other = ut;
    other.act_threshold = 0.99;
    b = make_model(&other, 3, 0);
    CHECK(checkpoint_load(path, b, 0, err, sizeof err) != 0 && strstr(err, "act_threshold 0.9"));
    model_free(b);
    other = ut;
    other.dec_loops = 4;
    b = make_model(&other, 3, 0);
    CHECK(checkpoint_load_for_retraining(path, b, err, sizeof err) != 0 &&
          strstr(err, "dec_loops 2"));
    printf("  universal config mismatch: %s\n", err);
    model_free(b);
    model_free(a);
    unlink(path);
}

/* Loads path into a fresh model: expects a refusal whose message contains every non-NULL
 * fragment, and the model untouched. */
static void expect_refused(const char *what, const char *path, int with_optimizer, const char *frag1,
                           const char *frag2)
{
    char err[1024] = "";
    model *m = make_model(&TINY, 11, 1), *ref = make_model(&TINY, 11, 1);
    int rc = checkpoint_load(path, m, with_optimizer, err, sizeof err);
    CHECK_MSG(rc != 0, "%s: the load succeeded", what);
    CHECK_MSG(err[0] != '\0' && strstr(err, path) != NULL, "%s: message '%s'", what, err);
    if (frag1) CHECK_MSG(strstr(err, frag1) != NULL, "%s: message '%s' lacks '%s'", what, err, frag1);
    if (frag2) CHECK_MSG(strstr(err, frag2) != NULL, "%s: message '%s' lacks '%s'", what, err, frag2);
    CHECK_MSG(same_buffer(m, ref, BUF_PARAMS) && same_buffer(m, ref, BUF_ADAM_M) &&
                  same_buffer(m, ref, BUF_ADAM_V),
              "%s: the refused load changed the model", what);
    printf("  %s: %s\n", what, err);
    model_free(m);
    model_free(ref);
}

static void test_corruption(void)
{
    char good[512], bad[512];
    CHECK(checkpoint_step_path(dir, 12345, good, sizeof good) == 0);
    path_in_dir(bad, sizeof bad, "bad.h5");
    long size = 0;
    CHECK(file_size(good, &size) == 0 && size > 4096);

    /* 16 bytes in the middle of the file. */
    copy_file(good, bad, -1);
    flip_bytes(bad, size / 2, 16);
    expect_refused("middle bytes flipped", bad, 0, NULL, NULL);
    expect_refused("middle bytes flipped (with optimizer)", bad, 1, NULL, NULL);

    /* Inside the data of a parameter tensor, of the second moment, of the config text. */
    char ds[128];
    model_tensor t[4];
    model_tensors(&TINY, t, 4);
    snprintf(ds, sizeof ds, "/params/%s", t[1].name);
    long off = dataset_offset(good, ds);
    CHECK(off > 0);
    copy_file(good, bad, -1);
    flip_bytes(bad, off + 8, 4);
    expect_refused("a parameter flipped", bad, 0, "/params is corrupt", "params_crc32");

    snprintf(ds, sizeof ds, "/adam/v/%s", t[0].name);
    off = dataset_offset(good, ds);
    CHECK(off > 0);
    copy_file(good, bad, -1);
    flip_bytes(bad, off + 4, 1);
    expect_refused("a second moment flipped", bad, 0, "/adam/v is corrupt", NULL);

    off = dataset_offset(good, "/config_text");
    CHECK(off > 0);
    copy_file(good, bad, -1);
    flip_bytes(bad, off + 3, 1);
    expect_refused("the config text flipped", bad, 1, "/config_text is corrupt", NULL);
    checkpoint_meta meta;
    char err[1024];
    CHECK(checkpoint_read_meta(bad, &meta, err, sizeof err) != 0 && strstr(err, "/config_text is corrupt"));

    /* Truncated files. */
    copy_file(good, bad, size / 2);
    expect_refused("truncated to half", bad, 1, "truncated or corrupt", NULL);
    copy_file(good, bad, size - 1);
    expect_refused("truncated by one byte", bad, 1, "truncated or corrupt", NULL);
    copy_file(good, bad, 0);
    expect_refused("empty file", bad, 1, "truncated or corrupt", NULL);
    model_config cfg;
    CHECK(checkpoint_read_model_config(bad, &cfg, err, sizeof err) != 0 && strstr(err, "truncated"));

    /* Not HDF5; missing. */
    FILE *f = fopen(bad, "w");
    fputs("[model]\nenc_layers = 1\n", f);
    fclose(f);
    expect_refused("a text file", bad, 1, "not a readable HDF5 file", NULL);
    unlink(bad);
    expect_refused("a missing file", bad, 1, "cannot open", "No such file");

    /* HDF5, but not a lawt checkpoint; a future format version. */
    hid_t h = H5Fcreate(bad, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(h);
    expect_refused("an HDF5 file without our attributes", bad, 1, "not a lawt checkpoint", NULL);
    copy_file(good, bad, -1);
    h = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(h, "format_version", H5P_DEFAULT);
    int v = CHECKPOINT_FORMAT_VERSION + 1;
    H5Awrite(a, H5T_NATIVE_INT, &v);
    H5Aclose(a);
    H5Fclose(h);
    char version_text[64];
    snprintf(version_text, sizeof version_text, "has format_version %d", v);
    expect_refused("format version + 1", bad, 1, version_text, "reads format_version 1 to");
    unlink(bad);
}

/* A write that fails must leave the previous checkpoint as it was. */
static void test_failed_write_keeps_previous(void)
{
    char path[512], tmp[600], err[1024];
    path_in_dir(path, sizeof path, "keep.h5");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    model *old = make_model(&TINY, 21, 1), *newer = make_model(&TINY, 22, 1);
    checkpoint_meta m1 = sample_meta(1), m2 = sample_meta(2);
    CHECK(checkpoint_save(path, old, &m1, err, sizeof err) == 0);
    long size = 0;
    CHECK(file_size(path, &size) == 0);

    /* 1. The temporary file cannot be created (a directory is in the way). */
    CHECK(mkdir(tmp, 0700) == 0);
    int rc = checkpoint_save(path, newer, &m2, err, sizeof err);
    CHECK_MSG(rc != 0 && strstr(err, "cannot create") != NULL && strstr(err, tmp) != NULL, "save over a blocked tmp: rc %d, '%s'", rc, err);
    printf("  blocked temporary file: %s\n", err);
    rmdir(tmp);

    /* 2. The disk "fills up" in the middle of the write: a file size limit of half the file,
     * in a child process (the limit and SIGXFSZ stay there). */
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = (rlim_t)(size / 2);
        setrlimit(RLIMIT_FSIZE, &rl);
        char e[1024] = "";
        int r = checkpoint_save(path, newer, &m2, e, sizeof e);
        ssize_t w = write(pipefd[1], e, strlen(e) + 1);
        (void)w;
        _exit(r != 0 && !exists(tmp) ? 0 : 1);
    }
    close(pipefd[1]);
    char child_err[1024] = "";
    ssize_t k = read(pipefd[0], child_err, sizeof child_err - 1);
    child_err[k > 0 ? k : 0] = '\0';
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the save under a size limit: succeeded or left %s (status %d, '%s')", tmp, status, child_err);
    CHECK(child_err[0] != '\0');
    printf("  disk full mid-write: %s\n", child_err);
    CHECK(!exists(tmp));

    /* The previous checkpoint is intact. */
    model *check = make_model(&TINY, 23, 0);
    rc = checkpoint_load(path, check, 1, err, sizeof err);
    CHECK_MSG(rc == 0, "the previous checkpoint no longer loads: %s", err);
    CHECK(same_buffer(check, old, BUF_PARAMS) && same_buffer(check, old, BUF_ADAM_M) &&
          same_buffer(check, old, BUF_ADAM_V));
    checkpoint_meta got;
    CHECK(checkpoint_read_meta(path, &got, err, sizeof err) == 0 && got.step == 1);
    checkpoint_meta_free(&got);

    /* And a save that works replaces it. */
    CHECK(checkpoint_save(path, newer, &m2, err, sizeof err) == 0);
    rc = checkpoint_load(path, check, 1, err, sizeof err);
    CHECK_MSG(rc == 0 && same_buffer(check, newer, BUF_PARAMS), "the save after the failed one: %s", err);
    unlink(path);
    model_free(old);
    model_free(newer);
    model_free(check);
}

static void touch(const char *d, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", d, name);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
}

static void test_latest_keep_last(void)
{
    char d[300], p[600];
    snprintf(d, sizeof d, "%s/run", dir);
    CHECK(mkdir(d, 0700) == 0);
    CHECK(checkpoint_latest(d, p, sizeof p) != 0); /* none yet */
    CHECK(checkpoint_latest("/nonexistent/lawt", p, sizeof p) != 0);
    const char *names[] = {"step-000000100.h5", "step-000000020.h5", "step-000001000.h5", "step-000000003.h5",
                           "step-000000500.h5", "best.h5", "step-000002000.h5.tmp", "step-x.h5",
                           "step-.h5", "notes.txt", "step-000000700.h5.bak"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) touch(d, names[i]);
    CHECK(checkpoint_latest(d, p, sizeof p) == 0);
    char want[600];
    snprintf(want, sizeof want, "%s/step-000001000.h5", d);
    CHECK_MSG(strcmp(p, want) == 0, "latest: %s", p);
    char small[8];
    CHECK(checkpoint_latest(d, small, sizeof small) != 0); /* does not fit */
    /* Beyond the zero padding the order is still numeric. */
    touch(d, "step-1234567890.h5");
    CHECK(checkpoint_latest(d, p, sizeof p) == 0 && strstr(p, "/step-1234567890.h5"));
    CHECK(checkpoint_step_path(d, 1234567890L, p, sizeof p) == 0 && strstr(p, "/step-1234567890.h5"));
    CHECK(checkpoint_step_path(d, 7, small, sizeof small) != 0);

    checkpoint_keep_last(d, 0); /* keeps everything */
    checkpoint_keep_last(d, 3);
    const char *kept[] = {"step-000000500.h5", "step-000001000.h5", "step-1234567890.h5", "best.h5",
                          "step-000002000.h5.tmp", "step-x.h5", "step-.h5", "notes.txt", "step-000000700.h5.bak"};
    const char *gone[] = {"step-000000003.h5", "step-000000020.h5", "step-000000100.h5"};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        snprintf(p, sizeof p, "%s/%s", d, kept[i]);
        CHECK_MSG(exists(p), "keep_last removed %s", kept[i]);
    }
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        snprintf(p, sizeof p, "%s/%s", d, gone[i]);
        CHECK_MSG(!exists(p), "keep_last kept %s", gone[i]);
    }
    checkpoint_keep_last(d, 1);
    CHECK(checkpoint_latest(d, p, sizeof p) == 0 && strstr(p, "/step-1234567890.h5"));
    snprintf(p, sizeof p, "%s/step-000001000.h5", d);
    CHECK(!exists(p));
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        remove_tree(p);
    }
    closedir(d);
    rmdir(path);
}

static int write_sample(const char *path)
{
    model *m = make_model(&TINY, 7, 1);
    checkpoint_meta meta = sample_meta(42);
    char err[1024];
    if (checkpoint_save(path, m, &meta, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int n = model_tensors(&TINY, NULL, 0);
    model_tensor *t = lawt_calloc((size_t)n, sizeof *t);
    model_tensors(&TINY, t, n);
    for (int i = 0; i < n; i++) {
        printf("%s\t", t[i].name);
        for (int k = 0; k < t[i].ndim; k++) printf(k ? ", %d" : "%d", t[i].shape[k]);
        printf("\n");
    }
    free(t);
    model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write") == 0) return write_sample(argv[2]);
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/lawt-test-checkpoint-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the test's own HDF5 calls print nothing */
    test_round_trip();
    test_config_mismatch();
    test_universal_round_trip();
    test_corruption();
    test_failed_write_keeps_previous();
    test_latest_keep_last();
    remove_tree(dir);
    return test_report("test_checkpoint");
}
