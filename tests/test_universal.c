/* test_universal.c: universal transformers (model.h, arch = universal; Appendix E.2): the
 * parameter count formula against the layout, configuration errors, the whole model's
 * gradient against finite differences with a looped encoder, a looped decoder and both, in
 * every loop mode (fixed, gated, ACT halting early and running out of iterations, with the
 * ponder cost), decoding of a looped decoder (the key/value cache per iteration equals the
 * no-cache oracle, beam 1 equals greedy), and determinism. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/encoding.h"
#include "model/model.h"
#include "tests/model_fixtures.h"
#include "tests/test.h"

/* A universal transformer: enc_loops / dec_loops (0: a plain one-layer side), ponder cost 0.1. */
static model_config ut_make(int enc_loops, int dec_loops, int mode, int de, int dd, int he,
                            int hd, int wi, int wo, int wp)
{
    return universal_config(transformer_config(1, 1, de, dd, he, hd, wi, wo, wp), enc_loops,
                            dec_loops, mode, 0.1);
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
    gradient_case gc = gradient_case_make(c);
    relu_away_from_kinks(gc.p, gc.t, gc.nt);
    if (halt_prob > 0) set_halting(gc.p, gc.t, gc.nt, halt_prob);
    gradient_case_backward(&gc);
    double worst = check_model_gradient(&gc, 0, what).directional;
    printf("  gradient %-44s %2d tensors, worst relative error %.2e\n", what, gc.nt, worst);
    gradient_case_free(&gc);
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
    int nt_;
    model_tensor *t = tensors_of(&c, &nt_);
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

static void test_decoding(void)
{
    for (int mode = LOOP_FIXED; mode <= LOOP_ACT; mode++) {
        model_config c = ut_make(2, 3, mode, 16, 24, 2, 3, 15, 9, 12);
        model *m = model_create(&c, BACKEND_CPU, 16);
        model_init_params(m, 11);
        const copy_task copy = {.len = 8, .max_content = 6, .lr = 3e-3f};
        double last = train_copy(m, &copy, 60, NULL);
        const int B = 6, S = 8, max_out = 10;
        const int src_len[6] = {8, 3, 5, 8, 2, 6}, tgt_len[6] = {2, 2, 2, 2, 2, 2};
        owned_batch ob = batch_make(B, S, 2, src_len, tgt_len, c.vocab_in, c.vocab_out);
        decode_counts counts = check_greedy_decoders_agree(m, &ob, max_out, mode_name(mode));
        int out[6 * 10], len[6];
        model_beam_decode(m, ob.src, ob.src_len, B, S, 3, max_out, out, len);
        for (int b = 0; b < B; b++) CHECK(len[b] >= 0 && len[b] <= max_out);
        printf("  decoding, looped decoder (%s): copy loss %.3f, %d greedy tokens\n",
               mode_name(mode), last, counts.tokens);
        CHECK_MSG(counts.tokens > 0, "%s: greedy decoding produced nothing", mode_name(mode));
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
    fixture_seed(0x5deece66dULL);
    model_set_threads(2);
    test_param_count();
    test_validation();
    test_gradients();
    test_ponder_cost();
    test_decoding();
    test_determinism();
    return test_report("test_universal");
}
