/* test_checkpoint_retrain.c: checkpoint_load_for_retraining (the paper's Appendix F.1) on tiny
 * models:
 *   - a bigger max_len: every tensor but the position tables is copied bit for bit; the position
 *     tables get the checkpoint's rows and keep the model's own initialisation beyond them;
 *   - a smaller max_len: the first rows of the position tables; the same max_len: everything;
 *   - the optimizer starts afresh: both Adam moments (and the gradients) are zero after the load,
 *     though the checkpoint and the model both had non-zero moments;
 *   - different vocabularies (the vocabulary sizes of two real encodings), layers, dimensions or
 *     heads are refused with a message naming the field and both values, the model untouched;
 *   - a corrupted parameter is refused by its CRC. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"
#include "encoding/encoding.h"
#include "model/model.h"
#include "tests/test.h"

static const model_config TINY = {
    .enc_layers = 1, .dec_layers = 2, .enc_dim = 16, .dec_dim = 24, .enc_heads = 2,
    .dec_heads = 4, .vocab_in = 21, .vocab_out = 19, .max_len = 13,
};

static char dir[256];

/* A model from its own initialisation (seed), with non-zero moments and gradients when asked:
 * a run in progress. */
static model *make_model(const model_config *cfg, uint64_t seed, int dirty_optimizer)
{
    model *m = model_create(cfg, BACKEND_CPU, 1);
    model_init_params(m, seed);
    if (dirty_optimizer) {
        size_t n = model_num_params(m);
        float *p = lawt_malloc(n * sizeof *p);
        for (size_t i = 0; i < n; i++) p[i] = (float)((double)((i * 2654435761u + seed) % 10007) / 997.0 - 5.0);
        model_copy_in(m, BUF_ADAM_M, p);
        for (size_t i = 0; i < n; i++) p[i] = (float)((double)((i * 40503u + seed) % 8191) * 1e-7 + 1e-9);
        model_copy_in(m, BUF_ADAM_V, p);
        for (size_t i = 0; i < n; i++) p[i] = (float)i * 1e-6f + 0.5f;
        model_copy_in(m, BUF_GRADS, p);
        free(p);
    }
    return m;
}

static float *buffer_of(const model *m, model_buffer which)
{
    size_t n = model_num_params(m);
    float *x = lawt_malloc(n * sizeof *x);
    model_copy_out(m, which, x);
    return x;
}

static int buffer_is_zero(const model *m, model_buffer which)
{
    size_t n = model_num_params(m);
    float *x = buffer_of(m, which);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= x[i] == 0.0f;
    free(x);
    return zero;
}

static int same_buffers(const model *a, const model *b)
{
    model_buffer all[] = {BUF_PARAMS, BUF_GRADS, BUF_ADAM_M, BUF_ADAM_V};
    size_t n = model_num_params(a);
    if (n != model_num_params(b)) return 0;
    int same = 1;
    for (int k = 0; k < 4; k++) {
        float *x = buffer_of(a, all[k]), *y = buffer_of(b, all[k]);
        same &= memcmp(x, y, n * sizeof *x) == 0;
        free(x);
        free(y);
    }
    return same;
}

static model_tensor *tensors(const model_config *cfg, int *n)
{
    *n = model_tensors(cfg, NULL, 0);
    model_tensor *t = lawt_calloc((size_t)*n, sizeof *t);
    model_tensors(cfg, t, *n);
    return t;
}

static int is_position_table(const char *name)
{
    return strcmp(name, "enc.pos_emb.weight") == 0 || strcmp(name, "dec.pos_emb.weight") == 0;
}

static void save(const char *path, const model *m)
{
    checkpoint_meta meta = {.step = 1000, .examples_seen = 64000, .seed = 3, .lr = 1e-4,
                            .config_text = "[model]\n", .metrics_jsonl = ""};
    char err[1024];
    int rc = checkpoint_save(path, m, &meta, err, sizeof err);
    CHECK_MSG(rc == 0, "save: %s", err);
}

/* Loads `path` (saved from src) for retraining into a model of config `cfg` (initialised from
 * seed 99, with a dirty optimizer) and checks every tensor: copied, or for a position table
 * the overlapping rows copied and the rest the model's own. */
static void check_retrain(const char *what, const char *path, const model *src, const model_config *cfg)
{
    char err[1024] = "";
    model *m = make_model(cfg, 99, 1);
    float *own = buffer_of(m, BUF_PARAMS);
    int rc = checkpoint_load_for_retraining(path, m, err, sizeof err);
    CHECK_MSG(rc == 0, "%s: %s", what, err);
    float *got = buffer_of(m, BUF_PARAMS), *from = buffer_of(src, BUF_PARAMS);
    const model_config *scfg = model_get_config(src);
    int nm, ns;
    model_tensor *tm = tensors(cfg, &nm), *ts = tensors(scfg, &ns);
    CHECK(nm == ns);
    int tables = 0, others = 0;
    for (int i = 0; i < nm && i < ns; i++) {
        CHECK(strcmp(tm[i].name, ts[i].name) == 0);
        size_t row = 1;
        for (int k = 1; k < tm[i].ndim; k++) row *= (size_t)tm[i].shape[k];
        size_t rows_m = (size_t)tm[i].shape[0], rows_s = (size_t)ts[i].shape[0];
        if (is_position_table(tm[i].name)) {
            tables++;
            CHECK(rows_m == (size_t)cfg->max_len && rows_s == (size_t)scfg->max_len);
            size_t common = rows_m < rows_s ? rows_m : rows_s;
            CHECK_MSG(memcmp(got + tm[i].offset, from + ts[i].offset, common * row * sizeof *got) == 0,
                      "%s: %s: the checkpoint's %zu rows were not copied exactly", what, tm[i].name, common);
            if (rows_m > common) {
                CHECK_MSG(memcmp(got + tm[i].offset + common * row, own + tm[i].offset + common * row,
                                 (rows_m - common) * row * sizeof *got) == 0,
                          "%s: %s: rows %zu.. lost the model's own initialisation", what, tm[i].name, common);
                /* And they are the model's own, not the checkpoint's: the two inits differ. */
                CHECK(memcmp(own + tm[i].offset + common * row, from + ts[i].offset,
                             row * sizeof *own) != 0);
            }
        } else {
            others++;
            CHECK(rows_m == rows_s);
            CHECK_MSG(memcmp(got + tm[i].offset, from + ts[i].offset, rows_m * row * sizeof *got) == 0,
                      "%s: %s differs from the checkpoint", what, tm[i].name);
        }
    }
    CHECK(tables == 2 && others == nm - 2);
    /* A fresh optimizer: the checkpoint had non-zero moments, and so had the model. */
    CHECK_MSG(buffer_is_zero(m, BUF_ADAM_M), "%s: the first moment is not zero", what);
    CHECK_MSG(buffer_is_zero(m, BUF_ADAM_V), "%s: the second moment is not zero", what);
    CHECK_MSG(buffer_is_zero(m, BUF_GRADS), "%s: the gradients are not zero", what);
    printf("  %s: %d tensors copied, 2 position tables %d -> %d rows\n", what, others, scfg->max_len,
           cfg->max_len);

    /* The model trains from there: one Adam step on its zero moments moves the parameters by
     * at most lr per coordinate (bias-corrected first step: |update| = lr * |g| / (|g| + eps)). */
    size_t n = model_num_params(m);
    float *g = lawt_malloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++) g[i] = (i % 3 == 0) ? 1.0f : -0.25f;
    model_copy_in(m, BUF_GRADS, g);
    adam_hparams h = {1e-3f, 0.9f, 0.98f, 1e-9f};
    model_adam_step(m, &h, 1, 1.0f);
    float *after = buffer_of(m, BUF_PARAMS);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)after[i] - (double)got[i];
        double want = g[i] > 0 ? -1e-3 : 1e-3;
        double e = d - want;
        if (e < 0) e = -e;
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst < 1e-6, "%s: the first Adam step after the load is not that of fresh moments "
                            "(worst deviation %g)", what, worst);
    free(after);
    free(g);
    free(tm);
    free(ts);
    free(own);
    free(got);
    free(from);
    model_free(m);
}

/* Expects a refusal mentioning every non-NULL fragment, with the model untouched. */
static void expect_refused(const char *what, const char *path, const model_config *cfg, const char *frag1,
                           const char *frag2, const char *frag3)
{
    char err[1024] = "";
    model *m = make_model(cfg, 5, 1), *ref = make_model(cfg, 5, 1);
    int rc = checkpoint_load_for_retraining(path, m, err, sizeof err);
    CHECK_MSG(rc != 0, "%s: the load succeeded", what);
    CHECK_MSG(strstr(err, path) != NULL, "%s: message '%s' lacks the path", what, err);
    const char *frags[] = {frag1, frag2, frag3};
    for (int k = 0; k < 3; k++)
        if (frags[k]) CHECK_MSG(strstr(err, frags[k]) != NULL, "%s: message '%s' lacks '%s'", what, err, frags[k]);
    CHECK_MSG(same_buffers(m, ref), "%s: the refused load changed the model", what);
    printf("  %s: %s\n", what, err);
    model_free(m);
    model_free(ref);
}

static int vocab_size_of(const char *name)
{
    lawt_encoding enc;
    if (encoding_from_name(name, &enc) != 0) return -1;
    lawt_vocab v;
    vocab_init(&v, &enc);
    int n = v.size;
    vocab_free(&v);
    return n;
}

static void test_max_len(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/src.h5", dir);
    model *src = make_model(&TINY, 7, 1);
    save(path, src);

    model_config bigger = TINY;
    bigger.max_len = 29;
    check_retrain("max_len 13 -> 29", path, src, &bigger);
    model_config smaller = TINY;
    smaller.max_len = 5;
    check_retrain("max_len 13 -> 5", path, src, &smaller);
    check_retrain("max_len 13 -> 13", path, src, &TINY);

    /* checkpoint_load itself still refuses another max_len (resume needs the same model). */
    char err[1024];
    model *m = make_model(&bigger, 1, 0);
    CHECK(checkpoint_load(path, m, 0, err, sizeof err) != 0 && strstr(err, "max_len"));
    model_free(m);
    model_free(src);
}

static void test_refused(void)
{
    /* Vocabularies of two real encodings: a P1000 checkpoint, a B1999 config. */
    int p1000 = vocab_size_of("P1000"), b1999 = vocab_size_of("B1999");
    CHECK(p1000 > 0 && b1999 > 0 && p1000 != b1999);
    model_config pc = TINY;
    pc.vocab_in = pc.vocab_out = p1000;
    char path[512], frag[256];
    snprintf(path, sizeof path, "%s/p1000.h5", dir);
    model *src = make_model(&pc, 7, 1);
    save(path, src);
    model_free(src);

    model_config other = pc;
    other.vocab_in = b1999;
    snprintf(frag, sizeof frag, "vocabularies differ: checkpoint vocab_in %d, config %d (encoding P1000 vs B1999?)",
             p1000, b1999);
    expect_refused("vocab_in P1000 vs B1999", path, &other, frag, NULL, NULL);
    other = pc;
    other.vocab_out = 77; /* the vocabulary of no encoding */
    snprintf(frag, sizeof frag, "vocabularies differ: checkpoint vocab_out %d, config 77 (encoding P1000 vs unknown?)",
             p1000);
    expect_refused("vocab_out", path, &other, frag, NULL, NULL);
    /* Vocabularies are reported even when max_len differs too. */
    other.max_len = 40;
    expect_refused("vocab_out with another max_len", path, &other, "vocab_out", NULL, NULL);

    other = pc;
    other.enc_layers = 2;
    expect_refused("enc_layers", path, &other, "checkpoint enc_layers 1, config 2", "only max_len may change", NULL);
    other = pc;
    other.dec_layers = 1;
    expect_refused("dec_layers", path, &other, "checkpoint dec_layers 2, config 1", NULL, NULL);
    other = pc;
    other.enc_dim = 32;
    other.max_len = 20;
    expect_refused("enc_dim", path, &other, "checkpoint enc_dim 16, config 32", NULL, NULL);
    other = pc;
    other.dec_dim = 12;
    expect_refused("dec_dim", path, &other, "checkpoint dec_dim 24, config 12", NULL, NULL);
    other = pc;
    other.enc_heads = 4;
    expect_refused("enc_heads", path, &other, "checkpoint enc_heads 2, config 4", NULL, NULL);
    other = pc;
    other.dec_heads = 2;
    expect_refused("dec_heads", path, &other, "checkpoint dec_heads 4, config 2", NULL, NULL);

    /* A corrupted parameter (CRC), with a max_len that would otherwise be accepted. */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.h5", dir);
    FILE *in = fopen(path, "rb"), *out = fopen(bad, "wb");
    CHECK(in && out);
    if (in && out) {
        char buf[65536];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, k, out);
    }
    if (in) fclose(in);
    if (out) fclose(out);
    hid_t f = H5Fopen(bad, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/params/dec.layer1.ffn.fc1.weight", H5P_DEFAULT);
    haddr_t off = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    CHECK(off != HADDR_UNDEF);
    FILE *w = fopen(bad, "r+b");
    if (w && off != HADDR_UNDEF) {
        fseek(w, (long)off + 40, SEEK_SET);
        int c = fgetc(w);
        fseek(w, (long)off + 40, SEEK_SET);
        fputc(c ^ 0x10, w);
    }
    if (w) fclose(w);
    other = pc;
    other.max_len = 30;
    expect_refused("a parameter flipped", bad, &other, "/params is corrupt", "params_crc32", NULL);
    unlink(bad);
    snprintf(bad, sizeof bad, "%s/missing.h5", dir);
    expect_refused("a missing file", bad, &other, "cannot open", NULL, NULL);
    unlink(path);
}

int main(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/lawt-test-retrain-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    test_max_len();
    test_refused();
    char p[600];
    snprintf(p, sizeof p, "%s/src.h5", dir);
    unlink(p);
    rmdir(dir);
    return test_report("test_checkpoint_retrain");
}
