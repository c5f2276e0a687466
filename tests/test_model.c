/* test_model.c: the whole model. Parameter count and layout against Appendix G (and the
 * paper's Table 29), the full gradient against finite differences on a tiny asymmetric model
 * with padding, masking (padding never changes a counted output), decoding (the KV cache
 * equals the no-cache oracle, beam 1 equals greedy, a wide beam finds the exhaustive optimum),
 * Adam against hand-computed values, gradient norm, determinism, and the CUDA backend's
 * refusal when it is not built. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/encoding.h"
#include "model/model.h"
#include "tests/model_fixtures.h"
#include "tests/test.h"

/* ---- parameter count and layout ---- */

static void check_layout(const model_config *c, const char *what)
{
    int n = model_tensors(c, NULL, 0);
    model_tensor *t = malloc(sizeof *t * (size_t)n);
    CHECK(model_tensors(c, t, n) == n);
    size_t off = 0;
    int contiguous = 1;
    for (int i = 0; i < n; i++) {
        if (t[i].offset != off) contiguous = 0;
        off += tensor_size(&t[i]);
    }
    CHECK_MSG(contiguous, "%s: tensors must tile the buffer in order", what);
    CHECK_MSG(off == model_param_count(c), "%s: layout %zu floats, formula %zu", what, off,
              model_param_count(c));
    /* the number of tensors: 4 + 12 per encoder layer + 4 + 20 per decoder layer + 1 */
    CHECK_MSG(n == 9 + 12 * c->enc_layers + 20 * c->dec_layers, "%s: %d tensors", what, n);
    int i = find_tensor(t, n, "dec.layer0.cross_attn.kv.weight");
    CHECK_MSG(i >= 0 && t[i].shape[0] == 2 * c->dec_dim && t[i].shape[1] == c->enc_dim,
              "%s: cross-attention keys/values map enc_dim to dec_dim", what);
    free(t);
}

static void test_param_count(void)
{
    /* Table 29 of the paper, reproduced by Appendix G's formula with the paper's vocabularies
     * (P10 331 words, P1000 1231, B1999 2322, FP15 29121) and 512 positions. */
    struct {
        int ne, nd, d, wi, wo, wp;
        size_t expect;
    } rows[] = {
        {1, 1, 256, 331, 331, 512, 2276171},        {1, 1, 256, 1231, 1231, 512, 2737871},
        {1, 1, 256, 2322, 2322, 512, 3297554},      {1, 1, 256, 29121, 29121, 512, 17045441},
        {2, 2, 512, 2322, 2322, 512, 17619218},     {2, 2, 512, 331, 331, 512, 15578443},
        {2, 2, 512, 1231, 1231, 512, 16500943},     {4, 4, 512, 1231, 1231, 512, 31213775},
        {1, 4, 512, 1231, 1231, 512, 21756623},     {1, 6, 512, 1231, 1231, 512, 30164687},
        {1, 6, 512, 29121, 29121, 512, 58751937},   {6, 1, 512, 29121, 29121, 512, 53493697},
        {6, 1, 512, 1231, 1231, 512, 24906447},     {6, 6, 512, 1231, 1231, 512, 45926607},
        {6, 1, 512, 29121, 1231, 512, 39186127},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        model_config c = transformer_config(rows[i].ne, rows[i].nd, rows[i].d, rows[i].d, 8, 8,
                                  rows[i].wi, rows[i].wo, rows[i].wp);
        CHECK_MSG(model_param_count(&c) == rows[i].expect, "Table 29 row %zu: %zu != %zu", i,
                  model_param_count(&c), rows[i].expect);
        check_layout(&c, "Table 29 config");
    }
    /* asymmetric configurations: dims, heads, layers and vocabularies all different */
    model_config a = transformer_config(1, 6, 512, 516, 8, 12, 29121, 1231, 80);
    check_layout(&a, "E:1/512/8 D:6/516/12");
    model_config b = transformer_config(3, 2, 8, 12, 2, 3, 13, 10, 9);
    check_layout(&b, "tiny asymmetric");
    model_config c = transformer_config(24, 1, 64, 32, 4, 4, 7, 300, 40);
    check_layout(&c, "24/1 layers");
    /* by hand for the smallest: de=dd=2, 1/1 layers, wi=wo=3, wp=2:
     * 2*(3+2+2) + (3+2+2)*2 + 3 + 2*(24+13) + 2*(28+4+19) = 14 + 17 + 74 + 102 = 207 */
    model_config h = transformer_config(1, 1, 2, 2, 1, 1, 3, 3, 2);
    CHECK(model_param_count(&h) == 207);
    check_layout(&h, "hand-counted");

    model *m = model_create(&b, BACKEND_CPU, 2);
    CHECK(model_num_params(m) == model_param_count(&b));
    CHECK(model_get_config(m)->dec_dim == 12);
    model_free(m);

    char err[128] = "";
    model_config bad = transformer_config(1, 1, 10, 8, 3, 2, 5, 5, 8);
    CHECK(model_config_validate(&bad, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "divisible") != NULL, "message: %s", err);
    CHECK(model_config_validate(&b, err, sizeof err) == 0);
}

/* ---- the whole model's gradient ---- */

static void test_model_gradient(void)
{
    model_config c = transformer_config(2, 2, 8, 12, 2, 3, 13, 10, 9);
    gradient_case gc = gradient_case_make(&c);
    relu_away_from_kinks(gc.p, gc.t, gc.nt);
    gradient_case_backward(&gc);
    /* directional derivatives per tensor, and two single coordinates each */
    gradient_errors worst = check_model_gradient(&gc, 2, "transformer");
    printf("  whole-model gradient: %d tensors, worst relative error %.2e (directional), "
           "%.2e (coordinates)\n",
           gc.nt, worst.directional, worst.coordinate);
    /* The padding token never appears at a counted source position: its input embedding row
     * gets exactly zero gradient. */
    const float *g = gc.g;
    int i = find_tensor(gc.t, gc.nt, "enc.tok_emb.weight");
    int zero = 1;
    for (int j = 0; j < c.enc_dim; j++)
        zero &= g[gc.t[i].offset + TOK_PAD * c.enc_dim + j] == 0.0f;
    CHECK_MSG(zero, "the source padding embedding must get zero gradient");
    /* loss_scale multiplies the gradient */
    float *u = malloc(gc.np * sizeof(float));
    model_zero_grad(gc.m);
    loss_of(gc.m, &gc.ob.b);
    model_backward(gc.m, &gc.ob.b, 0.25f);
    model_copy_out(gc.m, BUF_GRADS, u);
    double e2 = 0, r2 = 0;
    for (size_t j = 0; j < gc.np; j++) {
        e2 += pow(u[j] - 0.25 * g[j], 2);
        r2 += pow(0.25 * g[j], 2);
    }
    CHECK_MSG(sqrt(e2) <= 1e-5 * sqrt(r2), "loss_scale scales the gradient");
    /* gradients accumulate across backward calls */
    loss_of(gc.m, &gc.ob.b);
    model_backward(gc.m, &gc.ob.b, 0.75f);
    model_copy_out(gc.m, BUF_GRADS, u);
    e2 = r2 = 0;
    for (size_t j = 0; j < gc.np; j++) {
        e2 += pow(u[j] - g[j], 2);
        r2 += pow(g[j], 2);
    }
    CHECK_MSG(sqrt(e2) <= 1e-5 * sqrt(r2), "backward accumulates into the gradients");
    free(u);
    gradient_case_free(&gc);
}

/* ---- masking ---- */

static int bitwise_equal(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void test_masking(void)
{
    model_config c = transformer_config(2, 2, 16, 8, 4, 2, 17, 11, 12);
    model *m = model_create(&c, BACKEND_CPU, 4);
    model_init_params(m, 3);
    perturb_params(m, 0.2f);
    const size_t np = model_num_params(m);
    const int B = 4, S = 9, T = 8, V = c.vocab_out;
    const int src_len[4] = {9, 5, 2, 7}, tgt_len[4] = {8, 3, 5, 2};
    owned_batch ob = batch_make(B, S, T, src_len, tgt_len, c.vocab_in, c.vocab_out);
    float *lg = malloc(sizeof(float) * B * (T - 1) * V), *lg2 = malloc(sizeof(float) * B * (T + 2) * V);
    float *g1 = malloc(np * sizeof(float)), *g2 = malloc(np * sizeof(float));
    long nt1, nt2;
    model_zero_grad(m);
    double l1 = model_forward(m, &ob.b, &nt1);
    model_copy_logits(m, lg);
    model_backward(m, &ob.b, 1.0f / (float)nt1);
    model_copy_out(m, BUF_GRADS, g1);

    /* 1. other values in the padding: identical loss, counted logits and gradients */
    owned_batch ob2 = batch_make(B, S, T, src_len, tgt_len, c.vocab_in, c.vocab_out);
    memcpy(ob2.src, ob.src, sizeof(int) * B * S);
    memcpy(ob2.tgt, ob.tgt, sizeof(int) * B * T);
    for (int b = 0; b < B; b++) {
        for (int s = src_len[b]; s < S; s++) ob2.src[b * S + s] = 2 + irand(c.vocab_in - 2);
        for (int t = tgt_len[b]; t < T; t++) ob2.tgt[b * T + t] = 2 + irand(c.vocab_out - 2);
    }
    model_zero_grad(m);
    double l2 = model_forward(m, &ob2.b, &nt2);
    model_copy_logits(m, lg2);
    model_backward(m, &ob2.b, 1.0f / (float)nt2);
    model_copy_out(m, BUF_GRADS, g2);
    CHECK(nt1 == nt2 && nt1 == 7 + 2 + 4 + 1);
    CHECK_MSG(l1 == l2, "padding values changed the loss: %.17g vs %.17g", l1, l2);
    int same = 1;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < tgt_len[b] - 1; t++)
            same &= bitwise_equal(lg + ((size_t)b * (T - 1) + t) * V,
                                  lg2 + ((size_t)b * (T - 1) + t) * V, (size_t)V);
    CHECK_MSG(same, "padding values changed a counted output");
    CHECK_MSG(bitwise_equal(g1, g2, np), "padding values changed the gradient");

    /* 2. more padding (S + 3, T + 2): same loss and counted outputs up to rounding */
    owned_batch ob3 = batch_make(B, S + 3, T + 2, src_len, tgt_len, c.vocab_in, c.vocab_out);
    for (int b = 0; b < B; b++) {
        memcpy(ob3.src + b * (S + 3), ob.src + b * S, sizeof(int) * S);
        memcpy(ob3.tgt + b * (T + 2), ob.tgt + b * T, sizeof(int) * T);
    }
    model_zero_grad(m);
    double l3 = model_forward(m, &ob3.b, &nt2);
    model_copy_logits(m, lg2);
    model_backward(m, &ob3.b, 1.0f / (float)nt2);
    model_copy_out(m, BUF_GRADS, g2);
    CHECK(nt2 == nt1);
    CHECK_CLOSE(l3, l1, 1e-6);
    double maxd = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < tgt_len[b] - 1; t++)
            for (int v = 0; v < V; v++)
                maxd = fmax(maxd, fabs(lg[((size_t)b * (T - 1) + t) * V + v] -
                                       lg2[((size_t)b * (T + 1) + t) * V + v]));
    CHECK_MSG(maxd < 1e-5, "appending padding changed a counted logit by %g", maxd);
    double e2 = 0, r2 = 0;
    for (size_t j = 0; j < np; j++) {
        e2 += pow((double)g1[j] - g2[j], 2);
        r2 += pow((double)g1[j], 2);
    }
    CHECK_MSG(sqrt(e2) <= 1e-5 * sqrt(r2), "appending padding changed the gradient (%g)",
              sqrt(e2 / r2));

    /* 3. examples do not see each other: the batch loss is the sum of the lone losses */
    double sum = 0;
    long ntsum = 0;
    for (int b = 0; b < B; b++) {
        model_batch one = {1, S, T, ob.src + b * S, ob.src_len + b, ob.tgt + b * T,
                           ob.tgt_len + b};
        long n1;
        sum += model_forward(m, &one, &n1);
        ntsum += n1;
    }
    CHECK(ntsum == nt1);
    CHECK_CLOSE(sum, l1, 1e-6);

    free(lg), free(lg2), free(g1), free(g2);
    batch_free(&ob), batch_free(&ob2), batch_free(&ob3);
    model_free(m);
}

/* ---- decoding ---- */

static void test_decoding(void)
{
    model_config c = transformer_config(2, 2, 16, 24, 2, 3, 15, 9, 12);
    model *m = model_create(&c, BACKEND_CPU, 16);
    model_init_params(m, 11);
    const copy_task copy = {.len = 8, .max_content = 6, .lr = 3e-3f};
    double first = 0, last = train_copy(m, &copy, 150, &first);
    printf("  copy task: loss per token %.3f -> %.3f after 150 steps\n", first, last);
    CHECK_MSG(last < 0.5 * first, "training must reduce the loss (%.3f -> %.3f)", first, last);
    const int B = 6, S = 8, max_out = 10;
    const int src_len[6] = {8, 3, 5, 8, 2, 6}, tgt_len[6] = {2, 2, 2, 2, 2, 2};
    owned_batch ob = batch_make(B, S, 2, src_len, tgt_len, c.vocab_in, c.vocab_out);
    decode_counts counts = check_greedy_decoders_agree(m, &ob, max_out, "transformer");
    CHECK_MSG(counts.early > 0, "some outputs should stop at EOS");
    counts = check_greedy_decoders_agree(m, &ob, 3, "transformer");
    CHECK_MSG(counts.full > 0, "some outputs should stop at max_out");
    check_greedy_decoders_agree(m, &ob, 1, "transformer");

    int out1[6 * 10], len1[6];
    model_greedy_decode(m, ob.src, ob.src_len, B, S, max_out, out1, len1);
    for (int b = 0; b < B; b++) {
        printf("  greedy %d (len %d):", b, len1[b]);
        for (int i = 0; i < len1[b]; i++) printf(" %d", out1[b * max_out + i]);
        printf("\n");
    }
    check_greedy_is_argmax(m, &ob, out1, len1, max_out, "transformer");
    check_beam_not_worse(m, &ob, out1, len1, 3, max_out, "transformer");
    batch_free(&ob);
    model_free(m);
}

/* A beam wide enough to keep every hypothesis is an exhaustive search. */
static void test_beam_exhaustive(void)
{
    model_config c = transformer_config(1, 1, 8, 8, 2, 2, 7, 4, 6);
    model *m = model_create(&c, BACKEND_CPU, 2);
    model_init_params(m, 5);
    perturb_params(m, 0.6f);
    const int B = 2, S = 5, max_out = 3, beam = 32;
    const int src_len[2] = {5, 3}, tgt_len[2] = {2, 2};
    owned_batch ob = batch_make(B, S, 2, src_len, tgt_len, c.vocab_in, c.vocab_out);
    int out[2 * 3], len[2];
    model_beam_decode(m, ob.src, ob.src_len, B, S, beam, max_out, out, len);
    const int toks[3] = {TOK_PAD, 2, 3}; /* every token but EOS */
    for (int b = 0; b < B; b++) {
        double best = -INFINITY;
        int best_seq[3] = {0}, best_n = -1;
        for (int n = 0; n <= max_out; n++) {
            int count = 1;
            for (int i = 0; i < n; i++) count *= 3;
            for (int k = 0; k < count; k++) {
                int seq[3], x = k;
                for (int i = 0; i < n; i++, x /= 3) seq[i] = toks[x % 3];
                double sc = answer_score(m, &ob, b, seq, n, max_out);
                if (sc > best) {
                    best = sc;
                    best_n = n;
                    memcpy(best_seq, seq, sizeof seq);
                }
            }
        }
        double got = answer_score(m, &ob, b, out + b * max_out, len[b], max_out);
        CHECK_MSG(fabs(got - best) < 1e-5, "source %d: beam answer scores %.7g, optimum %.7g", b,
                  got, best);
        int same = len[b] == best_n;
        for (int i = 0; same && i < best_n; i++) same &= out[b * max_out + i] == best_seq[i];
        CHECK_MSG(same, "source %d: the wide beam must return the exhaustive optimum", b);
    }
    batch_free(&ob);
    model_free(m);
}

/* ---- optimizer ---- */

static void test_adam(void)
{
    model_config c = transformer_config(1, 1, 4, 4, 1, 1, 5, 5, 4);
    model *m = model_create(&c, BACKEND_CPU, 1);
    size_t n = model_num_params(m);
    float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    float *mm = malloc(n * sizeof(float)), *vv = malloc(n * sizeof(float));
    /* step 1 from zero moments: m = 0.05, v = 2.5e-4, mhat = 0.5, vhat = 0.25:
     * p = 1 - 0.01 * 0.5 / (0.5 + 1e-8) = 0.9900000002 */
    for (size_t i = 0; i < n; i++) p[i] = 1.0f, g[i] = 0.25f, mm[i] = vv[i] = 0.0f;
    model_copy_in(m, BUF_PARAMS, p);
    model_copy_in(m, BUF_GRADS, g);
    model_copy_in(m, BUF_ADAM_M, mm);
    model_copy_in(m, BUF_ADAM_V, vv);
    adam_hparams h = {0.01f, 0.9f, 0.999f, 1e-8f};
    model_adam_step(m, &h, 1, 2.0f); /* grad_scale 2: g = 0.5 */
    model_copy_out(m, BUF_PARAMS, p);
    model_copy_out(m, BUF_ADAM_M, mm);
    model_copy_out(m, BUF_ADAM_V, vv);
    CHECK_CLOSE(p[0], 0.99, 1e-7);
    CHECK_CLOSE(p[n - 1], 0.99, 1e-7);
    CHECK_CLOSE(mm[3], 0.05, 1e-7);
    /* 1 - 0.999f is 0.99998713e-3 in float: v = 2.5e-4 to 1.3e-5 relative */
    CHECK(fabs(vv[3] - 2.5e-4) < 2.5e-4 * 2e-5);
    /* step 7 from arbitrary moments, against the formula in double */
    for (size_t i = 0; i < n; i++) {
        p[i] = (float)(0.1 * ((int)(i % 11) - 5));
        g[i] = (float)(0.03 * ((int)(i % 7) - 3));
        mm[i] = (float)(0.01 * ((int)(i % 3) - 1));
        vv[i] = (float)(1e-4 * (double)(i % 5));
    }
    model_copy_in(m, BUF_PARAMS, p);
    model_copy_in(m, BUF_GRADS, g);
    model_copy_in(m, BUF_ADAM_M, mm);
    model_copy_in(m, BUF_ADAM_V, vv);
    h = (adam_hparams){1e-3f, 0.9f, 0.98f, 1e-6f};
    model_adam_step(m, &h, 7, 0.5f);
    float *p2 = malloc(n * sizeof(float));
    model_copy_out(m, BUF_PARAMS, p2);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double gi = 0.5 * g[i];
        /* the hyperparameters as the float struct holds them */
        double b1 = h.beta1, b2 = h.beta2, lr = h.lr, eps = h.eps;
        double mi = b1 * mm[i] + (1 - b1) * gi, vi = b2 * vv[i] + (1 - b2) * gi * gi;
        /* the paper's code: eps added to sqrt(v) before the bias correction */
        double step_size = lr * sqrt(1 - pow(b2, 7)) / (1 - pow(b1, 7));
        double upd = step_size * mi / (sqrt(vi) + eps), expect = p[i] - upd;
        /* float rounding: relative to the parameter and to the update (large where v ~ 0) */
        worst = fmax(worst, fabs(p2[i] - expect) / fmax(1.0, fabs(upd)));
    }
    CHECK_MSG(worst < 3e-7, "Adam step 7 differs from the formula by %g", worst);
    /* the gradient norm */
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    CHECK_CLOSE(model_grad_norm(m), sqrt(s), 1e-12);
    free(p), free(p2), free(g), free(mm), free(vv);
    model_free(m);
}

/* ---- determinism ---- */

static void run_steps(model *m, owned_batch *batches, int nb, double *losses, double *norms)
{
    adam_hparams h = {1e-3f, 0.9f, 0.999f, 1e-8f};
    for (int i = 0; i < nb; i++) {
        long nt;
        model_zero_grad(m);
        losses[i] = model_forward(m, &batches[i].b, &nt);
        model_backward(m, &batches[i].b, 1.0f / (float)nt);
        norms[i] = model_grad_norm(m);
        model_adam_step(m, &h, i + 1, norms[i] > 1.0 ? (float)(1.0 / norms[i]) : 1.0f);
    }
}

/* Big enough for every parallel loop to split (with OPENBLAS_NUM_THREADS=2 from CTest). */
static void test_determinism(void)
{
    model_config c = transformer_config(2, 1, 128, 64, 4, 2, 20, 14, 32);
    enum { NB = 16 };
    owned_batch bs[3];
    int sl[3][NB], tl[3][NB];
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < NB; b++) {
            sl[i][b] = 2 + irand(31);
            tl[i][b] = 2 + irand(23);
        }
    for (int i = 0; i < 3; i++) bs[i] = batch_make(NB, 32, 24, sl[i], tl[i], 20, 14);
    double l1[3], l2[3], n1[3], n2[3];
    model *a = model_create(&c, BACKEND_CPU, NB), *b = model_create(&c, BACKEND_CPU, NB);
    model_init_params(a, 42);
    model_init_params(b, 42);
    run_steps(a, bs, 3, l1, n1);
    run_steps(b, bs, 3, l2, n2);
    size_t n = model_num_params(a);
    float *pa = malloc(n * sizeof(float)), *pb = malloc(n * sizeof(float));
    CHECK_MSG(memcmp(l1, l2, sizeof l1) == 0, "same seed and batches: different losses");
    CHECK_MSG(memcmp(n1, n2, sizeof n1) == 0, "same seed and batches: different norms");
    for (int w = BUF_PARAMS; w <= BUF_ADAM_V; w++) {
        model_copy_out(a, (model_buffer)w, pa);
        model_copy_out(b, (model_buffer)w, pb);
        CHECK_MSG(bitwise_equal(pa, pb, n), "same seed and batches: buffer %d differs", w);
    }
    CHECK(l1[2] != l1[0]); /* the steps did something */
    /* a different seed gives other parameters */
    model_init_params(b, 43);
    model_copy_out(a, BUF_PARAMS, pa);
    model_copy_out(b, BUF_PARAMS, pb);
    CHECK(!bitwise_equal(pa, pb, n));
    /* the initialisation, kind by kind (model.h): layer norms (1, 0); linear weights and
     * biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); embeddings N(0, 1/d), the padding row 0 */
    model_init_params(a, 42);
    model_copy_out(a, BUF_PARAMS, pa);
    int nt_;
    model_tensor *t = tensors_of(&c, &nt_);
    int ln = find_tensor(t, nt_, "enc.layer1.ln2.weight");
    int lnb = find_tensor(t, nt_, "dec.layer0.ln3.bias");
    CHECK(pa[t[ln].offset] == 1.0f && pa[t[ln].offset + 127] == 1.0f);
    CHECK(pa[t[lnb].offset] == 0.0f && pa[t[lnb].offset + 63] == 0.0f);
    const struct {
        const char *name;
        double std;       /* expected standard deviation */
        double bound;     /* uniform: every |x| <= bound; 0: normal */
    } KINDS[] = {
        {"enc.layer0.ffn.fc1.weight", 1 / sqrt(3 * 128.0), 1 / sqrt(128.0)},
        {"enc.layer1.ffn.fc2.weight", 1 / sqrt(3 * 512.0), 1 / sqrt(512.0)},
        {"dec.layer0.cross_attn.kv.weight", 1 / sqrt(3 * 128.0), 1 / sqrt(128.0)},
        {"dec.layer0.self_attn.qkv.weight", 1 / sqrt(3 * 64.0), 1 / sqrt(64.0)},
        {"dec.layer0.ffn.fc1.bias", 1 / sqrt(3 * 64.0), 1 / sqrt(64.0)},
        {"dec.out_bias", 1 / sqrt(3 * 64.0), 1 / sqrt(64.0)},
        {"enc.tok_emb.weight", 1 / sqrt(128.0), 0},
        {"enc.pos_emb.weight", 1 / sqrt(128.0), 0},
        {"dec.tok_emb.weight", 1 / sqrt(64.0), 0},
    };
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        int w = find_tensor(t, nt_, KINDS[k].name);
        const float *x = pa + t[w].offset;
        size_t nw = tensor_size(&t[w]), skip = 0, beyond = 0;
        /* a token embedding's padding row (row 0) starts at 0 and is left out of the std */
        if (strstr(KINDS[k].name, "tok_emb")) {
            for (int j = 0; j < t[w].shape[1]; j++) CHECK(x[j] == 0.0f);
            skip = (size_t)t[w].shape[1];
        }
        double s2 = 0, s1 = 0;
        for (size_t i = skip; i < nw; i++) {
            s1 += x[i], s2 += (double)x[i] * x[i];
            if (KINDS[k].bound > 0 && fabs(x[i]) > KINDS[k].bound) beyond++;
        }
        double n = (double)(nw - skip), std = sqrt(s2 / n - (s1 / n) * (s1 / n));
        /* std of the sample std is about std / sqrt(2n) for a normal, less for a uniform */
        double tol = 5 / sqrt(2 * n);
        CHECK_MSG(fabs(std / KINDS[k].std - 1) < tol, "%s: std %.5f, expected %.5f (+-%.1f%%)",
                  KINDS[k].name, std, KINDS[k].std, 100 * tol);
        CHECK_MSG(fabs(s1 / n) < 5 * KINDS[k].std / sqrt(n), "%s: mean %g", KINDS[k].name, s1 / n);
        CHECK_MSG(beyond == 0, "%s: %zu values beyond the bound %g", KINDS[k].name, beyond,
                  KINDS[k].bound);
    }
    free(t);
    free(pa), free(pb);
    for (int i = 0; i < 3; i++) batch_free(&bs[i]);
    model_free(a);
    model_free(b);
}

/* ---- the CUDA backend when it is not built ---- */

static void test_cuda_refusal(void)
{
#ifndef LAWT_MODEL_HAVE_CUDA
    model_config c = transformer_config(1, 1, 8, 8, 2, 2, 5, 5, 4);
    char msg[512];
    CHECK_MSG(cuda_refused(&c, msg, sizeof msg),
              "model_create(BACKEND_CUDA) must exit non-zero when CUDA is not built");
    CHECK_MSG(strstr(msg, "CUDA") != NULL, "message: %s", msg);
#endif
}

int main(void)
{
    fixture_seed(0x9e3779b97f4a7c15ULL);
    test_param_count();
    test_model_gradient();
    test_masking();
    test_decoding();
    test_beam_exhaustive();
    test_adam();
    test_determinism();
    test_cuda_refusal();
    return test_report("test_model");
}
