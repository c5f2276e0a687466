/* test_checkpoint_inspect.c: checkpoint_inspect (lawt_inspect's reader) on a tiny model.
 *   - an intact file: every part OK, every attribute with its value, the tensors' values those
 *     of the model, in buffer order;
 *   - an attribute it does not know (a later format's "counters_crc32") and another
 *     format_version are read like the others, the file still intact;
 *   - damage is named part by part, the other parts still read: a flipped byte in /adam/m, a
 *     deleted tensor of /adam/v, a deleted /metrics_jsonl, a truncated file, a missing file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"
#include "model/model.h"
#include "tests/test.h"

static const model_config TINY = {
    .enc_layers = 1, .dec_layers = 1, .enc_dim = 16, .dec_dim = 16, .enc_heads = 2,
    .dec_heads = 2, .vocab_in = 21, .vocab_out = 19, .max_len = 13,
};

static char dir[256];

static void path_in_dir(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static void copy_file(const char *from, const char *to, long truncate_to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[4096];
    size_t k;
    long total = 0;
    while (in && out && (k = fread(buf, 1, sizeof buf, in)) > 0) {
        if (truncate_to >= 0 && total + (long)k > truncate_to) k = (size_t)(truncate_to - total);
        fwrite(buf, 1, k, out);
        total += (long)k;
        if (truncate_to >= 0 && total >= truncate_to) break;
    }
    if (in) fclose(in);
    if (out) fclose(out);
}

/* Opens a copy read-write through HDF5 itself, to make the changes a later lawt or damage
 * would make. */
static hid_t open_rw(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(f >= 0);
    return f;
}

static int part_status(const checkpoint_contents *c, checkpoint_part_id id) { return c->parts[id].status; }

static void test_intact(const char *path, const model *m, const checkpoint_meta *meta)
{
    checkpoint_contents c;
    CHECK(checkpoint_inspect(path, &c) == 0);
    CHECK(!c.damaged && c.problem[0] == '\0');
    CHECK(c.format_version == CHECKPOINT_FORMAT_VERSION);
    for (int p = 0; p < CHECKPOINT_PARTS; p++)
        CHECK_MSG(c.parts[p].status == CHECKPOINT_PART_OK, "%s: %s", c.parts[p].name, c.parts[p].problem);
    const checkpoint_attr *a = checkpoint_contents_attr(&c, "step");
    CHECK(a && a->kind == CHECKPOINT_ATTR_INT && a->i == meta->step);
    a = checkpoint_contents_attr(&c, "seed");
    CHECK(a && a->kind == CHECKPOINT_ATTR_UINT && a->u == meta->seed);
    a = checkpoint_contents_attr(&c, "lr");
    CHECK(a && a->kind == CHECKPOINT_ATTR_FLOAT && a->f == meta->lr);
    a = checkpoint_contents_attr(&c, "lawt_version");
    CHECK(a && a->kind == CHECKPOINT_ATTR_STRING && strcmp(a->s, LAWT_VERSION) == 0);
    a = checkpoint_contents_attr(&c, "num_params");
    CHECK(a && a->u == model_num_params(m));
    CHECK(strcmp(c.parts[CHECKPOINT_PART_CONFIG].text, meta->config_text) == 0);
    CHECK(strcmp(c.parts[CHECKPOINT_PART_METRICS].text, meta->metrics_jsonl) == 0);
    /* The tensors, in buffer order, hold the model's values. */
    size_t n = model_num_params(m);
    float *want = lawt_malloc(n * sizeof *want);
    model_copy_out(m, BUF_ADAM_V, want);
    const checkpoint_part *v = &c.parts[CHECKPOINT_PART_ADAM_V];
    model_tensor probe;
    CHECK(v->ntensors == model_tensors(&TINY, &probe, 1));
    size_t at = 0;
    int same = 1;
    for (int i = 0; i < v->ntensors; i++) {
        same &= v->tensors[i].values && memcmp(v->tensors[i].values, want + at, v->tensors[i].count * sizeof *want) == 0;
        at += v->tensors[i].count;
    }
    CHECK(same && at == n);
    free(want);
    checkpoint_contents_free(&c);
}

static void test_later_format(const char *good)
{
    char path[512];
    path_in_dir(path, sizeof path, "later.h5");
    copy_file(good, path, -1);
    hid_t f = open_rw(path);
    unsigned int crc = 0x12345678u;
    int version = CHECKPOINT_FORMAT_VERSION + 1;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "counters_crc32", H5T_STD_U32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Awrite(a, H5T_NATIVE_UINT, &crc) >= 0);
    H5Aclose(a);
    a = H5Aopen(f, "format_version", H5P_DEFAULT);
    CHECK(H5Awrite(a, H5T_NATIVE_INT, &version) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);
    checkpoint_contents c;
    CHECK(checkpoint_inspect(path, &c) == 0);
    CHECK(c.format_version == CHECKPOINT_FORMAT_VERSION + 1);
    const checkpoint_attr *x = checkpoint_contents_attr(&c, "counters_crc32");
    CHECK(x && x->kind == CHECKPOINT_ATTR_UINT && x->u == 0x12345678u);
    checkpoint_contents_free(&c);
}

static void test_damage(const char *good)
{
    char path[512];
    checkpoint_contents c;

    /* A flipped byte in a moment: that part is corrupt, the others intact and read. */
    path_in_dir(path, sizeof path, "moment.h5");
    copy_file(good, path, -1);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "adam/m/dec.out_bias", H5P_DEFAULT);
    long offset = (long)H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    FILE *w = fopen(path, "r+b");
    fseek(w, offset + 6, SEEK_SET);
    fputc(0x5A, w);
    fclose(w);
    CHECK(checkpoint_inspect(path, &c) != 0 && c.damaged);
    CHECK(part_status(&c, CHECKPOINT_PART_ADAM_M) == CHECKPOINT_PART_CORRUPT);
    CHECK_MSG(strstr(c.parts[CHECKPOINT_PART_ADAM_M].problem, "the file records adam_m_crc32"), "%s",
              c.parts[CHECKPOINT_PART_ADAM_M].problem);
    CHECK(part_status(&c, CHECKPOINT_PART_PARAMS) == CHECKPOINT_PART_OK);
    CHECK(part_status(&c, CHECKPOINT_PART_ADAM_V) == CHECKPOINT_PART_OK);
    CHECK(part_status(&c, CHECKPOINT_PART_CONFIG) == CHECKPOINT_PART_OK);
    CHECK(c.parts[CHECKPOINT_PART_ADAM_M].tensors[0].values != NULL);
    checkpoint_contents_free(&c);

    /* A tensor deleted from /adam/v, and /metrics_jsonl deleted. */
    path_in_dir(path, sizeof path, "deleted.h5");
    copy_file(good, path, -1);
    f = open_rw(path);
    CHECK(H5Ldelete(f, "adam/v/enc.layer0.ln1.bias", H5P_DEFAULT) >= 0);
    CHECK(H5Ldelete(f, "metrics_jsonl", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    CHECK(checkpoint_inspect(path, &c) != 0);
    CHECK(part_status(&c, CHECKPOINT_PART_ADAM_V) == CHECKPOINT_PART_UNREADABLE);
    CHECK_MSG(strstr(c.parts[CHECKPOINT_PART_ADAM_V].problem, "should be enc.layer0.ln1.bias"), "%s",
              c.parts[CHECKPOINT_PART_ADAM_V].problem);
    CHECK(part_status(&c, CHECKPOINT_PART_METRICS) == CHECKPOINT_PART_MISSING);
    CHECK(part_status(&c, CHECKPOINT_PART_PARAMS) == CHECKPOINT_PART_OK);
    checkpoint_contents_free(&c);

    /* Truncated, and missing: the whole file is named. */
    path_in_dir(path, sizeof path, "half.h5");
    FILE *g = fopen(good, "rb");
    fseek(g, 0, SEEK_END);
    long size = ftell(g);
    fclose(g);
    copy_file(good, path, size / 2);
    CHECK(checkpoint_inspect(path, &c) != 0);
    CHECK_MSG(strstr(c.problem, "not a readable HDF5 file (truncated or corrupt?)"), "%s", c.problem);
    checkpoint_contents_free(&c);
    path_in_dir(path, sizeof path, "nothing.h5");
    CHECK(checkpoint_inspect(path, &c) != 0);
    CHECK_MSG(strstr(c.problem, "cannot open"), "%s", c.problem);
    checkpoint_contents_free(&c);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/lawt_test_inspect_XXXXXX");
    if (!mkdtemp(dir)) lawt_die("mkdtemp failed");
    model *m = model_create(&TINY, BACKEND_CPU, 1);
    model_init_params(m, 3);
    size_t n = model_num_params(m);
    float *moment = lawt_malloc(n * sizeof *moment);
    for (size_t i = 0; i < n; i++) moment[i] = (float)i * 1e-3f;
    model_copy_in(m, BUF_ADAM_M, moment);
    for (size_t i = 0; i < n; i++) moment[i] = (float)(i % 17) * 1e-6f;
    model_copy_in(m, BUF_ADAM_V, moment);
    free(moment);
    checkpoint_meta meta = {.step = 42, .examples_seen = 42 * 8, .epoch = 1, .seed = 99, .test_index = 7,
                            .lr = 3.5e-4, .best_accuracy = 12.5, .wall_seconds = 9.25,
                            .config_text = "[data]\ntask = transpose\n",
                            .metrics_jsonl = "{\"type\":\"train\",\"step\":42,\"examples\":336,\"loss\":1.5}\n"};
    char good[512], err[1024];
    path_in_dir(good, sizeof good, "good.h5");
    CHECK_MSG(checkpoint_save(good, m, &meta, err, sizeof err) == 0, "%s", err);
    test_intact(good, m, &meta);
    test_later_format(good);
    test_damage(good);
    model_free(m);
    const char *names[] = {"good.h5", "later.h5", "moment.h5", "deleted.h5", "half.h5"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[512];
        path_in_dir(p, sizeof p, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return test_report("test_checkpoint_inspect");
}
