/* test_universal.c: universal transformers (model.h, arch = universal; Appendix E.2): the
 * parameter count formula against the layout, configuration errors, the whole model's
 * gradient against finite differences with a looped encoder, a looped decoder and both, in
 * every loop mode (fixed, gated, ACT halting early and running out of iterations, with the
 * ponder cost), decoding of a looped decoder (the key/value cache per iteration equals the
 * no-cache oracle, beam 1 equals greedy), and determinism. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/encoding.h"
#include "model/model.h"
#include "tests/test.h"

static uint64_t rng_state = 0x5deece66dULL;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static int irand(int n) { return (int)(urand() * n); }
static float nrand(void)
{
    double u1 = urand() + 1e-12, u2 = urand();
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* A universal transformer: enc_loops / dec_loops (0: a plain one-layer side). */
static model_config ut_make(int enc_loops, int dec_loops, int mode, int de, int dd, int he,
                            int hd, int wi, int wo, int wp)
{
    model_config c = {.enc_layers = 1, .dec_layers = 1, .enc_dim = de, .dec_dim = dd,
                      .enc_heads = he, .dec_heads = hd, .vocab_in = wi, .vocab_out = wo,
                      .max_len = wp, .arch = ARCH_UNIVERSAL, .enc_loops = enc_loops,
                      .dec_loops = dec_loops, .loop_mode = mode, .act_threshold = 0.99,
                      .ponder_cost = 0.1};
    return c;
}

typedef struct {
    model_batch b;
    int *src, *src_len, *tgt, *tgt_len;
} owned_batch;

static owned_batch batch_make(int B, int S, int T, const int *src_len, const int *tgt_len,
                              int vocab_in, int vocab_out)
{
    owned_batch o;
    o.src = calloc((size_t)B * S, sizeof(int));
    o.tgt = calloc((size_t)B * T, sizeof(int));
    o.src_len = malloc(sizeof(int) * B);
    o.tgt_len = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) {
        o.src_len[b] = src_len[b];
        o.tgt_len[b] = tgt_len[b];
        for (int s = 0; s < S; s++) {
            int v = TOK_PAD;
            if (s == 0 || s == src_len[b] - 1) v = TOK_EOS;
            else if (s < src_len[b]) v = 2 + irand(vocab_in - 2);
            o.src[b * S + s] = v;
        }
        for (int t = 0; t < T; t++) {
            int v = TOK_PAD;
            if (t == 0 || t == tgt_len[b] - 1) v = TOK_EOS;
            else if (t < tgt_len[b]) v = 2 + irand(vocab_out - 2);
            o.tgt[b * T + t] = v;
        }
    }
    o.b = (model_batch){B, S, T, o.src, o.src_len, o.tgt, o.tgt_len};
    return o;
}

static void batch_free(owned_batch *o)
{
    free(o->src);
    free(o->tgt);
    free(o->src_len);
    free(o->tgt_len);
}

static size_t tensor_size(const model_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

static const char *mode_name(int mode) { return enum_name(&MODEL_LOOP_MODE_TABLE, mode); }

/* ---- parameter count ---- */

/* The layout tiles the buffer, sums to the formula, and holds the loop tensors it should. */
static void check_layout(const model_config *c, const char *what, int loop_tensors)
{
    int n = model_tensors(c, NULL, 0);
    model_tensor *t = malloc(sizeof *t * (size_t)n);
    CHECK(model_tensors(c, t, n) == n);
    size_t off = 0;
    int contiguous = 1, loops = 0;
    for (int i = 0; i < n; i++) {
        contiguous &= t[i].offset == off;
        off += tensor_size(&t[i]);
        loops += strstr(t[i].name, ".loop.") != NULL;
    }
    CHECK_MSG(contiguous, "%s: tensors must tile the buffer in order", what);
    CHECK_MSG(off == model_param_count(c), "%s: layout %zu floats, formula %zu", what, off,
              model_param_count(c));
    CHECK_MSG(loops == loop_tensors, "%s: %d loop tensors, expected %d", what, loops,
              loop_tensors);
    free(t);
}

static void test_param_count(void)
{
    /* By hand, de = dd = 2, wi = wo = 3, wp = 2, one layer a side (the transformer has 207,
     * test_model.c): the copy gate adds d(d + 1) = 6 a looped side, the halting unit d + 1 = 3. */
    model_config h = ut_make(4, 0, LOOP_FIXED, 2, 2, 1, 1, 3, 3, 2);
    CHECK(model_param_count(&h) == 207);
    h.loop_mode = LOOP_GATED;
    CHECK(model_param_count(&h) == 213);
    h.dec_loops = 3;
    CHECK(model_param_count(&h) == 219);
    h.loop_mode = LOOP_ACT;
    CHECK(model_param_count(&h) == 213);
    h.dec_loops = 0;
    CHECK(model_param_count(&h) == 210);
    /* every side and mode, asymmetric widths: the formula against the layout and the model */
    const int sides[3][2] = {{3, 0}, {0, 2}, {4, 3}};
    for (int s = 0; s < 3; s++)
        for (int mode = LOOP_FIXED; mode <= LOOP_ACT; mode++) {
            model_config c = ut_make(sides[s][0], sides[s][1], mode, 8, 12, 2, 3, 13, 10, 9);
            char what[96];
            snprintf(what, sizeof what, "enc_loops %d dec_loops %d %s", sides[s][0], sides[s][1],
                     mode_name(mode));
            int looped_sides = (sides[s][0] > 0) + (sides[s][1] > 0);
            check_layout(&c, what, mode == LOOP_FIXED ? 0 : 2 * looped_sides);
            model_config t = c;
            t.arch = ARCH_TRANSFORMER;
            t.enc_loops = t.dec_loops = 0;
            t.loop_mode = LOOP_FIXED;
            size_t extra = 0;
            if (mode == LOOP_GATED)
                extra = (sides[s][0] ? 8 * 9 : 0) + (sides[s][1] ? 12 * 13 : 0);
            if (mode == LOOP_ACT) extra = (sides[s][0] ? 9 : 0) + (sides[s][1] ? 13 : 0);
            CHECK_MSG(model_param_count(&c) == model_param_count(&t) + extra,
                      "%s: %zu parameters, the 1/1 transformer's %zu + %zu", what,
                      model_param_count(&c), model_param_count(&t), extra);
            model *m = model_create(&c, BACKEND_CPU, 2);
            CHECK(model_num_params(m) == model_param_count(&c));
            model_free(m);
        }
    /* Table 23's models (B1999: 2322 words; 512 positions as Table 29 counts them): the
     * looped encoder shares one layer, so 4 loops cost no more than 1 layer. */
    const int dims[2] = {256, 512};
    for (int i = 0; i < 2; i++)
        for (int mode = LOOP_FIXED; mode <= LOOP_ACT; mode++) {
            model_config c = ut_make(4, 0, mode, dims[i], dims[i], 8, 8, 2322, 2322, 512);
            printf("  Table 23: %d dimensions, 4 encoder loops, %-5s %zu parameters\n", dims[i],
                   mode_name(mode), model_param_count(&c));
        }
    model_config t23 = ut_make(4, 0, LOOP_FIXED, 256, 256, 8, 8, 2322, 2322, 512);
    CHECK(model_param_count(&t23) == 3297554); /* Table 29's 1/1, 256, B1999 */
}

static void expect_invalid(const model_config *c, const char *fragment)
{
    char err[256] = "";
    CHECK_MSG(model_config_validate(c, err, sizeof err) == -1 && strstr(err, fragment),
              "expected an error with '%s', got '%s'", fragment, err);
}

static void test_validation(void)
{
    model_config ok = ut_make(4, 0, LOOP_ACT, 8, 8, 2, 2, 10, 10, 8);
    char err[256];
    CHECK_MSG(model_config_validate(&ok, err, sizeof err) == 0, "%s", err);
    model_config c = ok;
    c.arch = ARCH_LSTM;
    c.rnn_layers = c.rnn_hidden = 8;
    expect_invalid(&c, "loops need arch = universal");
    c = ok;
    c.enc_loops = 0;
    expect_invalid(&c, "needs enc_loops > 0 or dec_loops > 0");
    c = ok;
    c.enc_layers = 2;
    expect_invalid(&c, "one shared layer");
    c = ok;
    c.act_threshold = 0;
    expect_invalid(&c, "act_threshold");
    c = ok;
    c.ponder_cost = -1;
    expect_invalid(&c, "ponder_cost");
    c = ok;
    c.recompute = MODEL_RECOMPUTE_FFN;
    expect_invalid(&c, "recompute");
    c = ok;
    c.arch = ARCH_TRANSFORMER;
    expect_invalid(&c, "loops need arch = universal");
    CHECK(enum_from_name(&MODEL_ARCH_TABLE, "universal") == ARCH_UNIVERSAL);
    CHECK(enum_from_name(&MODEL_LOOP_MODE_TABLE, "act") == LOOP_ACT);
}

/* ---- the whole model's gradient ---- */

static double loss_of(model *m, const model_batch *b)
{
    long nt;
    return model_forward(m, b, &nt);
}

/* ACT variants of the gradient test: the halting unit's weights small and its bias set so
 * that every position's halting probabilities sit near p (0.3: the sums stay below the
 * threshold and every position runs to the last iteration; 0.8: every position halts at the
 * second), far from any decision a finite difference could cross. */
static void set_halting(float *p, const model_tensor *t, int nt, float prob)
{
    for (int i = 0; i < nt; i++) {
        if (strstr(t[i].name, "loop.halt.weight"))
            for (size_t j = 0; j < tensor_size(&t[i]); j++) p[t[i].offset + j] = 0.05f * nrand();
        if (strstr(t[i].name, "loop.halt.bias")) p[t[i].offset] = logf(prob / (1.0f - prob));
    }
}

static double gradient_check(const model_config *c, float halt_prob, const char *what)
{
    model *m = model_create(c, BACKEND_CPU, 4);
    model_init_params(m, 7);
    const size_t np = model_num_params(m);
    float *p = malloc(np * sizeof(float)), *g = malloc(np * sizeof(float));
    model_copy_out(m, BUF_PARAMS, p);
    for (size_t i = 0; i < np; i++) p[i] += 0.3f * nrand();
    int nt_ = model_tensors(c, NULL, 0);
    model_tensor *t = malloc(sizeof *t * (size_t)nt_);
    model_tensors(c, t, nt_);
    /* every ReLU unit away from its kink, as test_model.c does */
    for (int i = 0; i < nt_; i++)
        if (strstr(t[i].name, "ffn.fc1.bias"))
            for (int j = 0; j < t[i].shape[0]; j++) p[t[i].offset + j] = j % 2 ? -4.0f : 4.0f;
    if (halt_prob > 0) set_halting(p, t, nt_, halt_prob);
    model_copy_in(m, BUF_PARAMS, p);
    const int src_len[3] = {7, 4, 3}, tgt_len[3] = {6, 3, 4};
    owned_batch ob = batch_make(3, 7, 6, src_len, tgt_len, c->vocab_in, c->vocab_out);
    model_zero_grad(m);
    double l0 = loss_of(m, &ob.b);
    CHECK(isfinite(l0) && l0 > 0);
    model_backward(m, &ob.b, 1.0f);
    model_copy_out(m, BUF_GRADS, g);
    const double eps = 1e-2;
    double worst = 0;
    float *u = malloc(np * sizeof(float));
    for (int i = 0; i < nt_; i++) {
        size_t n = tensor_size(&t[i]), off = t[i].offset;
        double norm = 0, an = 0;
        for (size_t j = 0; j < n; j++) {
            u[j] = nrand();
            norm += (double)u[j] * u[j];
        }
        norm = sqrt(norm);
        for (size_t j = 0; j < n; j++) {
            u[j] = (float)(u[j] / norm);
            an += (double)u[j] * g[off + j];
        }
        for (size_t j = 0; j < n; j++) p[off + j] += (float)(eps * u[j]);
        model_copy_in(m, BUF_PARAMS, p);
        double lp = loss_of(m, &ob.b);
        for (size_t j = 0; j < n; j++) p[off + j] -= (float)(2 * eps * u[j]);
        model_copy_in(m, BUF_PARAMS, p);
        double lm = loss_of(m, &ob.b);
        for (size_t j = 0; j < n; j++) p[off + j] += (float)(eps * u[j]);
        double fd = (lp - lm) / (2 * eps);
        double err = fabs(fd - an) / (fabs(an) + 1e-2);
        if (err > worst) worst = err;
        CHECK_MSG(err < 2e-2, "%s: %s: directional derivative: finite difference %.6g, "
                  "backward %.6g", what, t[i].name, fd, an);
        CHECK_MSG(an != 0.0, "%s: %s: zero gradient", what, t[i].name);
    }
    model_copy_in(m, BUF_PARAMS, p);
    printf("  gradient %-44s %2d tensors, worst relative error %.2e\n", what, nt_, worst);
    free(u);
    free(t);
    free(p);
    free(g);
    batch_free(&ob);
    model_free(m);
    return worst;
}

static void test_gradients(void)
{
    const int sides[3][2] = {{3, 0}, {0, 3}, {2, 3}};
    const char *side_name[3] = {"looped encoder", "looped decoder", "both looped"};
    for (int s = 0; s < 3; s++)
        for (int mode = LOOP_FIXED; mode <= LOOP_ACT; mode++) {
            model_config c = ut_make(sides[s][0], sides[s][1], mode, 8, 12, 2, 3, 13, 10, 9);
            char what[96];
            if (mode != LOOP_ACT) {
                snprintf(what, sizeof what, "%s, %s", side_name[s], mode_name(mode));
                gradient_check(&c, 0, what);
                continue;
            }
            snprintf(what, sizeof what, "%s, act (every position runs out)", side_name[s]);
            gradient_check(&c, 0.3f, what);
            snprintf(what, sizeof what, "%s, act (every position halts early)", side_name[s]);
            gradient_check(&c, 0.8f, what);
        }
}

/* ACT's ponder cost is in the loss: with ponder_cost 0 the loss drops by tau times the sum of
 * N + R, which for halting probabilities near 0.8 and 3 loops is 2 + 0.2 a counted position. */
static void test_ponder_cost(void)
{
    model_config c = ut_make(3, 0, LOOP_ACT, 8, 8, 2, 2, 13, 10, 9);
    model *m = model_create(&c, BACKEND_CPU, 4);
    model_init_params(m, 3);
    const size_t np = model_num_params(m);
    float *p = malloc(np * sizeof(float));
    model_copy_out(m, BUF_PARAMS, p);
    int nt_ = model_tensors(&c, NULL, 0);
    model_tensor *t = malloc(sizeof *t * (size_t)nt_);
    model_tensors(&c, t, nt_);
    for (int i = 0; i < nt_; i++)
        if (strstr(t[i].name, "loop.halt.weight"))
            memset(p + t[i].offset, 0, tensor_size(&t[i]) * sizeof(float));
        else if (strstr(t[i].name, "loop.halt.bias"))
            p[t[i].offset] = logf(0.8f / 0.2f);
    model_copy_in(m, BUF_PARAMS, p);
    const int src_len[3] = {7, 4, 3}, tgt_len[3] = {6, 3, 4};
    owned_batch ob = batch_make(3, 7, 6, src_len, tgt_len, c.vocab_in, c.vocab_out);
    double with = loss_of(m, &ob.b);
    model_free(m);
    c.ponder_cost = 0;
    m = model_create(&c, BACKEND_CPU, 4);
    model_copy_in(m, BUF_PARAMS, p);
    double without = loss_of(m, &ob.b);
    const double counted = 7 + 4 + 3; /* source tokens before the padding */
    CHECK_CLOSE(with - without, 0.1 * counted * (2 + 0.2), 1e-4);
    free(p);
    free(t);
    batch_free(&ob);
    model_free(m);
}

/* ---- decoding ---- */

/* A copy task, as test_model.c's, to give the decoders outputs that depend on the source. */
static double train_copy(model *m, int steps)
{
    const model_config *c = model_get_config(m);
    enum { B = 16, S = 8, T = 8 };
    int src[B * S], tgt[B * T], sl[B], tl[B];
    adam_hparams h = {3e-3f, 0.9f, 0.98f, 1e-8f};
    double last = 0;
    for (int step = 1; step <= steps; step++) {
        for (int b = 0; b < B; b++) {
            int n = 1 + irand(6);
            sl[b] = tl[b] = n + 2;
            for (int i = 0; i < S; i++) src[b * S + i] = TOK_PAD;
            for (int i = 0; i < T; i++) tgt[b * T + i] = TOK_PAD;
            src[b * S] = tgt[b * T] = TOK_EOS;
            for (int i = 0; i < n; i++) {
                int x = 2 + irand(c->vocab_in - 2);
                src[b * S + 1 + i] = x;
                tgt[b * T + 1 + i] = 2 + x % (c->vocab_out - 2);
            }
            src[b * S + n + 1] = tgt[b * T + n + 1] = TOK_EOS;
        }
        model_batch bt = {B, S, T, src, sl, tgt, tl};
        long nt;
        model_zero_grad(m);
        last = model_forward(m, &bt, &nt) / (double)nt;
        model_backward(m, &bt, 1.0f / (float)nt);
        double norm = model_grad_norm(m);
        model_adam_step(m, &h, step, norm > 5.0 ? (float)(5.0 / norm) : 1.0f);
    }
    return last;
}

static void test_decoding(void)
{
    for (int mode = LOOP_FIXED; mode <= LOOP_ACT; mode++) {
        model_config c = ut_make(2, 3, mode, 16, 24, 2, 3, 15, 9, 12);
        model *m = model_create(&c, BACKEND_CPU, 16);
        model_init_params(m, 11);
        double last = train_copy(m, 60);
        const int B = 6, S = 8, max_out = 10;
        const int src_len[6] = {8, 3, 5, 8, 2, 6}, tgt_len[6] = {2, 2, 2, 2, 2, 2};
        owned_batch ob = batch_make(B, S, 2, src_len, tgt_len, c.vocab_in, c.vocab_out);
        int o1[6 * 10], o2[6 * 10], o3[6 * 10], o4[6 * 10], l1[6], l2[6], l3[6], l4[6];
        model_greedy_decode(m, ob.src, ob.src_len, B, S, max_out, o1, l1);
        model_greedy_decode_nocache(m, ob.src, ob.src_len, B, S, max_out, o2, l2);
        model_beam_decode(m, ob.src, ob.src_len, B, S, 1, max_out, o3, l3);
        model_beam_decode(m, ob.src, ob.src_len, B, S, 3, max_out, o4, l4);
        int same2 = 1, same3 = 1, tokens = 0;
        for (int b = 0; b < B; b++) {
            same2 &= l1[b] == l2[b];
            same3 &= l1[b] == l3[b];
            for (int i = 0; i < l1[b]; i++) {
                if (i < l2[b]) same2 &= o1[b * max_out + i] == o2[b * max_out + i];
                if (i < l3[b]) same3 &= o1[b * max_out + i] == o3[b * max_out + i];
            }
            tokens += l1[b];
            CHECK(l4[b] >= 0 && l4[b] <= max_out);
        }
        printf("  decoding, looped decoder (%s): copy loss %.3f, %d greedy tokens\n",
               mode_name(mode), last, tokens);
        CHECK_MSG(tokens > 0, "%s: greedy decoding produced nothing", mode_name(mode));
        CHECK_MSG(same2, "%s: greedy decoding with the cache differs from the no-cache oracle",
                  mode_name(mode));
        CHECK_MSG(same3, "%s: beam 1 differs from greedy decoding", mode_name(mode));
        batch_free(&ob);
        model_free(m);
    }
}

/* ---- determinism ---- */

static void test_determinism(void)
{
    model_config c = ut_make(3, 2, LOOP_ACT, 64, 32, 4, 2, 20, 14, 24);
    enum { NB = 8, STEPS = 3 };
    owned_batch bs[STEPS];
    for (int i = 0; i < STEPS; i++) {
        int sl[NB], tl[NB];
        for (int b = 0; b < NB; b++) {
            sl[b] = 2 + irand(23);
            tl[b] = 2 + irand(15);
        }
        bs[i] = batch_make(NB, 24, 16, sl, tl, 20, 14);
    }
    for (int mode = LOOP_FIXED; mode <= LOOP_ACT; mode++) {
        c.loop_mode = mode;
        double loss[2][STEPS];
        float *params[2];
        size_t n = model_param_count(&c);
        for (int run = 0; run < 2; run++) {
            model *m = model_create(&c, BACKEND_CPU, NB);
            model_init_params(m, 42);
            adam_hparams h = {1e-3f, 0.9f, 0.999f, 1e-8f};
            for (int i = 0; i < STEPS; i++) {
                long nt;
                model_zero_grad(m);
                loss[run][i] = model_forward(m, &bs[i].b, &nt);
                model_backward(m, &bs[i].b, 1.0f / (float)nt);
                model_adam_step(m, &h, i + 1, 1.0f);
            }
            params[run] = malloc(n * sizeof(float));
            model_copy_out(m, BUF_PARAMS, params[run]);
            model_free(m);
        }
        CHECK_MSG(memcmp(loss[0], loss[1], sizeof loss[0]) == 0,
                  "%s: same seed and batches, different losses", mode_name(mode));
        CHECK_MSG(memcmp(params[0], params[1], n * sizeof(float)) == 0,
                  "%s: same seed and batches, different parameters", mode_name(mode));
        CHECK(loss[0][STEPS - 1] != loss[0][0]);
        free(params[0]);
        free(params[1]);
    }
    for (int i = 0; i < STEPS; i++) batch_free(&bs[i]);
}

int main(void)
{
    model_set_threads(2);
    test_param_count();
    test_validation();
    test_gradients();
    test_ponder_cost();
    test_decoding();
    test_determinism();
    return test_report("test_universal");
}
