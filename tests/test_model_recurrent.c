/* test_model_recurrent.c: the LSTM and GRU encoder-decoders (model.arch = lstm | gru,
 * model/recurrent.c). Each cell's backward against central finite differences (with rows that
 * have stopped stepping); the parameter count formula against the layout and against
 * PyTorch's count of the same modules; the whole model's gradient against finite differences
 * on a tiny model with padding; padding that does not change a loss; a source read backwards
 * (rnn_reverse_source); decoding (the stepwise state equals the whole-prefix oracle, beam 1
 * equals greedy, a wider beam scores at least as well, greedy tokens are the teacher-forced
 * argmax); determinism; the memory plan against the allocation; the configurations refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/encoding.h"
#include "model/model.h"
#include "model/recurrent_layers.h"
#include "tests/model_fixtures.h"
#include "tests/test.h"

/* ---- the cells: backward against central differences (check_grad) ---- */

/* Rows 0 and 2 step at t = 1, row 1 (length 1) has stopped. */
enum { CB = 3, CH = 5, CT = 1 };
static const int CELL_LEN[CB] = {3, 1, 2};

typedef struct {
    float *gx, *gh, *hp, *cp, *wh, *wc; /* inputs and the upstream weights of the loss */
    float *gates, *h, *c;               /* forward outputs */
} cell_ctx;

/* l = sum(h wh) for the GRU: gates are overwritten in place, so each call starts from gx. */
static double gru_loss(void *p)
{
    cell_ctx *c = p;
    memcpy(c->gates, c->gx, sizeof(float) * CB * 3 * CH);
    gru_cell_forward(c->h, c->gates, c->gh, c->hp, CELL_LEN, CT, CB, CH);
    return dot_d(c->h, c->wh, CB * CH);
}

static void test_gru_cell(void)
{
    printf("GRU cell\n");
    cell_ctx c = {randv(CB * 3 * CH, 1), randv(CB * 3 * CH, 1), randv(CB * CH, 1), NULL,
                  randv(CB * CH, 1), NULL, malloc(sizeof(float) * CB * 3 * CH),
                  malloc(sizeof(float) * CB * CH), NULL};
    gru_loss(&c);
    /* one unit by hand: h = (1 - z) n + z h_prev */
    {
        const int b = 2, j = 3;
        double r = 1 / (1 + exp(-(c.gx[b * 3 * CH + j] + c.gh[b * 3 * CH + j])));
        double z = 1 / (1 + exp(-(c.gx[b * 3 * CH + CH + j] + c.gh[b * 3 * CH + CH + j])));
        double n = tanh(c.gx[b * 3 * CH + 2 * CH + j] + r * c.gh[b * 3 * CH + 2 * CH + j]);
        CHECK_CLOSE(c.h[b * CH + j], (1 - z) * n + z * c.hp[b * CH + j], 1e-6);
        CHECK(memcmp(c.h + CH, c.hp + CH, sizeof(float) * CH) == 0); /* row 1 stopped */
    }
    /* dh = dy + dh_carry: split the loss's weights between the two */
    float *dy = randv(CB * CH, 1), *carry = malloc(sizeof(float) * CB * CH);
    for (int i = 0; i < CB * CH; i++) carry[i] = c.wh[i] - dy[i];
    float *dgx = malloc(sizeof(float) * CB * 3 * CH), *dgh = malloc(sizeof(float) * CB * 3 * CH);
    gru_cell_backward(dgx, dgh, carry, dy, c.gates, c.gh, c.hp, CELL_LEN, CT, CB, CH);
    check_grad("gru d(gx)", gru_loss, &c, c.gx, dgx, CB * 3 * CH, 1e-2f, 2e-3);
    check_grad("gru d(gh)", gru_loss, &c, c.gh, dgh, CB * 3 * CH, 1e-2f, 2e-3);
    check_grad("gru d(h_prev) (direct part)", gru_loss, &c, c.hp, carry, CB * CH, 1e-2f, 2e-3);
    /* the stopped row passes its gradient through and has no gate gradients */
    int zero = 1;
    for (int j = 0; j < 3 * CH; j++) zero &= dgx[3 * CH + j] == 0 && dgh[3 * CH + j] == 0;
    CHECK_MSG(zero, "a stopped row has no gate gradients");
    free(c.gx), free(c.gh), free(c.hp), free(c.wh), free(c.gates), free(c.h);
    free(dy), free(carry), free(dgx), free(dgh);
}

/* l = sum(h wh) + sum(c wc) for the LSTM, from the pre-activations gx. */
static double lstm_loss(void *p)
{
    cell_ctx *c = p;
    memcpy(c->gates, c->gx, sizeof(float) * CB * 4 * CH);
    lstm_cell_forward(c->h, c->c, c->gates, c->hp, c->cp, CELL_LEN, CT, CB, CH);
    return dot_d(c->h, c->wh, CB * CH) + dot_d(c->c, c->wc, CB * CH);
}

static void test_lstm_cell(void)
{
    printf("LSTM cell\n");
    cell_ctx c = {randv(CB * 4 * CH, 1), NULL, randv(CB * CH, 1), randv(CB * CH, 1),
                  randv(CB * CH, 1), randv(CB * CH, 1), malloc(sizeof(float) * CB * 4 * CH),
                  malloc(sizeof(float) * CB * CH), malloc(sizeof(float) * CB * CH)};
    lstm_loss(&c);
    {
        const int b = 0, j = 2;
        const float *a = c.gx + b * 4 * CH;
        double i = 1 / (1 + exp(-a[j])), f = 1 / (1 + exp(-a[CH + j])), g = tanh(a[2 * CH + j]),
               o = 1 / (1 + exp(-a[3 * CH + j]));
        double cc = f * c.cp[b * CH + j] + i * g;
        CHECK_CLOSE(c.c[b * CH + j], cc, 1e-6);
        CHECK_CLOSE(c.h[b * CH + j], o * tanh(cc), 1e-6);
    }
    float *dh = malloc(sizeof(float) * CB * CH), *dc = malloc(sizeof(float) * CB * CH);
    memcpy(dh, c.wh, sizeof(float) * CB * CH); /* all of dh as carry, dy NULL */
    memcpy(dc, c.wc, sizeof(float) * CB * CH);
    float *da = malloc(sizeof(float) * CB * 4 * CH);
    lstm_cell_backward(da, dh, dc, NULL, c.gates, c.c, c.cp, CELL_LEN, CT, CB, CH);
    check_grad("lstm d(gates)", lstm_loss, &c, c.gx, da, CB * 4 * CH, 1e-2f, 2e-3);
    check_grad("lstm d(c_prev)", lstm_loss, &c, c.cp, dc, CB * CH, 1e-2f, 2e-3);
    /* h_prev reaches h only through W_hh (the caller's), or directly in a stopped row */
    check_grad("lstm d(h_prev) (direct part)", lstm_loss, &c, c.hp, dh, CB * CH, 1e-2f, 2e-3);
    free(c.gx), free(c.hp), free(c.cp), free(c.wh), free(c.wc), free(c.gates), free(c.h),
        free(c.c);
    free(dh), free(dc), free(da);
}

/* ---- the model ---- */

/* PyTorch's count of the same modules: two nn.Embedding, two nn.GRU / nn.LSTM(in, h, L)
 * (gates x (in h + h h + 2 h) for the first layer, gates x (2 h h + 2 h) for the others), the
 * nn.Linear(h, dd) projection and the output bias. */
static size_t torch_count(const model_config *c)
{
    const size_t g = c->arch == ARCH_LSTM ? 4 : 3, h = (size_t)c->rnn_hidden;
    size_t n = (size_t)c->vocab_in * c->enc_dim + (size_t)c->vocab_out * c->dec_dim;
    for (int side = 0; side < 2; side++)
        for (int l = 0; l < c->rnn_layers; l++) {
            size_t in = l ? h : (size_t)(side ? c->dec_dim : c->enc_dim);
            n += g * (in * h + h * h + 2 * h);
        }
    return n + h * (size_t)c->dec_dim + (size_t)c->dec_dim + (size_t)c->vocab_out;
}

static void test_param_count(void)
{
    printf("parameter count\n");
    lawt_encoding enc;
    encoding_from_name("P1000", &enc);
    lawt_vocab v;
    vocab_init(&v, &enc);
    const int wv = v.size;
    vocab_free(&v);
    /* Table 21 (5x5 addition, P1000) and Table 22 (eigenvalues) shapes, and small ones */
    const struct {
        int arch, layers, hidden, dim;
    } SHAPES[] = {{ARCH_GRU, 2, 1024, 256}, {ARCH_LSTM, 2, 2048, 512}, {ARCH_GRU, 4, 1024, 512},
                  {ARCH_LSTM, 8, 2048, 512}, {ARCH_GRU, 1, 3, 2}, {ARCH_LSTM, 3, 7, 4}};
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        model_config c = recurrent_config(SHAPES[s].arch, SHAPES[s].layers, SHAPES[s].hidden,
                                          SHAPES[s].dim, SHAPES[s].dim, wv, wv, 80);
        int n = model_tensors(&c, NULL, 0);
        model_tensor *t = malloc(sizeof *t * (size_t)n);
        CHECK(model_tensors(&c, t, n) == n);
        size_t off = 0;
        int contiguous = 1;
        for (int i = 0; i < n; i++) {
            contiguous &= t[i].offset == off;
            off += tensor_size(&t[i]);
        }
        CHECK_MSG(contiguous, "tensors must tile the buffer in order");
        CHECK(n == 2 + 8 * c.rnn_layers + 3);
        CHECK_MSG(off == model_param_count(&c) && off == torch_count(&c),
                  "%s %d x %d: layout %zu, formula %zu, PyTorch's count %zu",
                  enum_name(&MODEL_ARCH_TABLE, c.arch), c.rnn_layers, c.rnn_hidden, off,
                  model_param_count(&c), torch_count(&c));
        int w = find_tensor(t, n, "dec.rnn.weight_hh_l0");
        CHECK(w >= 0 && t[w].shape[0] == (c.arch == ARCH_LSTM ? 4 : 3) * c.rnn_hidden &&
              t[w].shape[1] == c.rnn_hidden);
        if (s < 4)
            printf("  %s, %d layers x %d hidden, embeddings %d, P1000: %zu parameters\n",
                   enum_name(&MODEL_ARCH_TABLE, c.arch), c.rnn_layers, c.rnn_hidden, c.enc_dim,
                   model_param_count(&c));
        free(t);
    }
    /* one count by hand: GRU, 1 layer of 3 units, embeddings 2, vocabularies 4 and 5:
     * embeddings 4*2 + 5*2, encoder 9*(2+3+2), decoder the same, projection 2*3+2, bias 5 */
    model_config c = recurrent_config(ARCH_GRU, 1, 3, 2, 2, 4, 5, 6);
    CHECK(model_param_count(&c) == 18 + 63 + 63 + 8 + 5);
}

/* Directional derivatives per tensor and two coordinates each, at the transformer's
 * tolerance (test_model.c). */
static void test_model_gradient(int arch, int reverse)
{
    const char *name = enum_name(&MODEL_ARCH_TABLE, arch);
    model_config c = recurrent_config(arch, 2, 6, 5, 4, 13, 10, 9);
    c.rnn_reverse_source = reverse;
    gradient_case gc = gradient_case_make(&c);
    gradient_case_backward(&gc);
    gradient_errors worst = check_model_gradient(&gc, 2, name);
    printf("  %s whole-model gradient: %d tensors, worst relative error %.2e (directional), "
           "%.2e (coordinates)\n", name, gc.nt, worst.directional, worst.coordinate);
    /* padding never steps the encoder: its embedding row gets exactly zero gradient */
    const float *g = gc.g;
    int e = find_tensor(gc.t, gc.nt, "enc.tok_emb.weight");
    int zero = 1;
    for (int j = 0; j < c.enc_dim; j++)
        zero &= g[gc.t[e].offset + TOK_PAD * c.enc_dim + j] == 0.0f;
    CHECK_MSG(zero, "%s: the source padding embedding must get zero gradient", name);
    /* loss_scale scales, backward accumulates */
    float *u = malloc(gc.np * sizeof(float));
    model_zero_grad(gc.m);
    loss_of(gc.m, &gc.ob.b);
    model_backward(gc.m, &gc.ob.b, 0.25f);
    loss_of(gc.m, &gc.ob.b);
    model_backward(gc.m, &gc.ob.b, 0.75f);
    model_copy_out(gc.m, BUF_GRADS, u);
    double e2 = 0, r2 = 0;
    for (size_t j = 0; j < gc.np; j++) {
        e2 += pow(u[j] - g[j], 2);
        r2 += pow(g[j], 2);
    }
    CHECK_MSG(sqrt(e2) <= 1e-5 * sqrt(r2), "%s: loss_scale and accumulation", name);
    free(u);
    gradient_case_free(&gc);
}

/* A source padded to more positions gives the same loss: padding leaves the state alone
 * (read forwards or backwards). Reading backwards is reading the reversed source forwards. */
static void test_padding(int arch, int reverse)
{
    model_config c = recurrent_config(arch, 2, 8, 6, 6, 11, 9, 12);
    c.rnn_reverse_source = reverse;
    model *m = model_create(&c, BACKEND_CPU, 2);
    model_init_params(m, 3);
    perturb_params(m, 0.2f);
    const int sl[2] = {5, 3}, tl[2] = {4, 5};
    owned_batch a = batch_make(2, 5, 5, sl, tl, c.vocab_in, c.vocab_out);
    owned_batch b = batch_make(2, 9, 5, sl, tl, c.vocab_in, c.vocab_out);
    for (int i = 0; i < 2; i++) {
        memcpy(b.src + i * 9, a.src + i * 5, sizeof(int) * 5);
        for (int s = 5; s < 9; s++) b.src[i * 9 + s] = TOK_PAD;
    }
    memcpy(b.tgt, a.tgt, sizeof(int) * 10);
    double la = loss_of(m, &a.b), lb = loss_of(m, &b.b);
    CHECK_MSG(fabs(la - lb) <= 1e-6 * fabs(la), "%s%s: padding changed the loss: %.9g vs %.9g",
              enum_name(&MODEL_ARCH_TABLE, arch), reverse ? " (reversed)" : "", la, lb);
    if (reverse) {
        model_config f = c;
        f.rnn_reverse_source = 0;
        model *mf = model_create(&f, BACKEND_CPU, 2);
        float *p = malloc(model_num_params(m) * sizeof(float));
        model_copy_out(m, BUF_PARAMS, p);
        model_copy_in(mf, BUF_PARAMS, p);
        for (int i = 0; i < 2; i++) /* a's sources reversed by hand into b, padding last */
            for (int s = 0; s < sl[i]; s++) b.src[i * 9 + s] = a.src[i * 5 + sl[i] - 1 - s];
        double lf = loss_of(mf, &b.b);
        CHECK_MSG(fabs(lf - la) <= 1e-6 * fabs(la),
                  "%s: reading backwards %.9g, the reversed source forwards %.9g",
                  enum_name(&MODEL_ARCH_TABLE, arch), la, lf);
        double lr = loss_of(m, &b.b);
        CHECK_MSG(fabs(lr - la) > 1e-5 * fabs(la),
                  "%s: reversing the source changed nothing: %.9g, %.9g",
                  enum_name(&MODEL_ARCH_TABLE, arch), la, lr);
        free(p);
        model_free(mf);
    }
    batch_free(&a);
    batch_free(&b);
    model_free(m);
}

/* ---- decoding ---- */

static void test_decoding(int arch)
{
    const char *name = enum_name(&MODEL_ARCH_TABLE, arch);
    model_config c = recurrent_config(arch, 2, 32, 16, 16, 9, 8, 12);
    model *m = model_create(&c, BACKEND_CPU, 16);
    model_init_params(m, 11);
    const copy_task copy = {.len = 7, .max_content = 4, .lr = 1e-2f};
    double first = 0, last = train_copy(m, &copy, 200, &first);
    printf("  %s copy task: loss per token %.3f -> %.3f after 200 steps\n", name, first, last);
    CHECK_MSG(last < 0.5 * first, "%s: training must reduce the loss (%.3f -> %.3f)", name,
              first, last);
    enum { B = 6, S = 7, MAX_OUT = 9 };
    const int src_len[B] = {7, 3, 5, 6, 2, 4}, tgt_len[B] = {2, 2, 2, 2, 2, 2};
    owned_batch ob = batch_make(B, S, 2, src_len, tgt_len, c.vocab_in, c.vocab_out);
    for (int max_out = MAX_OUT; max_out >= 1; max_out -= 4) {
        decode_counts counts = check_greedy_decoders_agree(m, &ob, max_out, name);
        if (max_out == MAX_OUT)
            CHECK_MSG(counts.early > 0, "%s: some outputs should stop at EOS", name);
    }
    int out1[B * MAX_OUT], len1[B];
    model_greedy_decode(m, ob.src, ob.src_len, B, S, MAX_OUT, out1, len1);
    int copied = 0;
    for (int b = 0; b < B; b++) {
        int ok = len1[b] == src_len[b] - 2;
        for (int i = 0; ok && i < len1[b]; i++)
            ok &= out1[b * MAX_OUT + i] == 2 + ob.src[b * S + 1 + i] % (c.vocab_out - 2);
        copied += ok;
    }
    printf("  %s greedy: %d of %d sources copied exactly\n", name, copied, B);
    check_greedy_is_argmax(m, &ob, out1, len1, MAX_OUT, name);
    check_beam_not_worse(m, &ob, out1, len1, 3, MAX_OUT, name);
    batch_free(&ob);
    model_free(m);
}

/* ---- determinism, memory, refusals ---- */

static void test_determinism(int arch)
{
    const char *name = enum_name(&MODEL_ARCH_TABLE, arch);
    model_config c = recurrent_config(arch, 2, 96, 64, 48, 20, 14, 32);
    enum { NB = 16 };
    int sl[NB], tl[NB];
    for (int b = 0; b < NB; b++) {
        sl[b] = 2 + irand(31);
        tl[b] = 2 + irand(23);
    }
    owned_batch ob = batch_make(NB, 32, 24, sl, tl, 20, 14);
    model *m[2];
    double loss[2][3];
    size_t n = 0;
    float *p[2];
    for (int k = 0; k < 2; k++) {
        m[k] = model_create(&c, BACKEND_CPU, NB);
        model_init_params(m[k], 42);
        adam_hparams h = {1e-3f, 0.9f, 0.999f, 1e-8f};
        for (int s = 0; s < 3; s++) {
            long nt;
            model_zero_grad(m[k]);
            loss[k][s] = model_forward(m[k], &ob.b, &nt);
            model_backward(m[k], &ob.b, 1.0f / (float)nt);
            model_adam_step(m[k], &h, s + 1, 1.0f);
        }
        n = model_num_params(m[k]);
        p[k] = malloc(n * sizeof(float));
        model_copy_out(m[k], BUF_PARAMS, p[k]);
    }
    CHECK_MSG(!memcmp(loss[0], loss[1], sizeof loss[0]), "%s: same seed, different losses", name);
    CHECK_MSG(!memcmp(p[0], p[1], n * sizeof(float)), "%s: same seed, different weights", name);
    CHECK(loss[0][2] < loss[0][0]);
    /* the initialisation: nn.GRU / nn.LSTM's U(-1/sqrt(h), 1/sqrt(h)) */
    model_init_params(m[0], 42);
    model_copy_out(m[0], BUF_PARAMS, p[0]);
    int nt_;
    model_tensor *t = tensors_of(&c, &nt_);
    int w = find_tensor(t, nt_, "enc.rnn.weight_hh_l1");
    size_t nw = tensor_size(&t[w]), beyond = 0;
    double s2 = 0;
    for (size_t i = 0; i < nw; i++) {
        float x = p[0][t[w].offset + i];
        s2 += (double)x * x;
        beyond += fabs(x) > 1 / sqrt(96.0);
    }
    CHECK_MSG(beyond == 0 && fabs(sqrt(s2 / (double)nw) * sqrt(3 * 96.0) - 1) < 0.02,
              "%s: weight_hh_l1 is not U(-1/sqrt(h), 1/sqrt(h))", name);
    free(t);
    /* the memory plan is what the backend allocates, training and decoding */
    size_t before = model_cpu_bytes_in_use();
    model *mm = model_create(&c, BACKEND_CPU, NB);
    size_t train = model_cpu_bytes_in_use() - before;
    int out[NB * 8], len[NB];
    model_beam_decode(mm, ob.src, ob.src_len, NB, 32, 3, 8, out, len);
    size_t decode = model_cpu_bytes_in_use() - before;
    model_memory plan0, plan3;
    model_memory_plan(&c, BACKEND_CPU, NB, 0, &plan0);
    model_memory_plan(&c, BACKEND_CPU, NB, 3, &plan3);
    CHECK_MSG(train == plan0.backend_total + plan0.host,
              "%s: allocated %zu bytes, planned %zu", name, train,
              plan0.backend_total + plan0.host);
    CHECK_MSG(decode == plan3.backend_total + plan3.host,
              "%s: with a beam of 3: allocated %zu bytes, planned %zu", name, decode,
              plan3.backend_total + plan3.host);
    model_free(mm);
    for (int k = 0; k < 2; k++) {
        free(p[k]);
        model_free(m[k]);
    }
    batch_free(&ob);
}

static void test_refusals(void)
{
    char err[256];
    model_config c = recurrent_config(ARCH_UNIVERSAL, 2, 8, 8, 8, 10, 10, 10); /* without loops */
    CHECK(model_config_validate(&c, err, sizeof err) != 0 && strstr(err, "enc_loops"));
    c = recurrent_config(ARCH_GRU, 0, 8, 8, 8, 10, 10, 10);
    CHECK(model_config_validate(&c, err, sizeof err) != 0 && strstr(err, "rnn_layers"));
    c = recurrent_config(ARCH_LSTM, 2, 8, 8, 8, 10, 10, 10);
    c.recompute = MODEL_RECOMPUTE_FFN;
    CHECK(model_config_validate(&c, err, sizeof err) != 0 && strstr(err, "transformer only"));
    /* heads do not divide a recurrent model's embeddings: not a constraint */
    c = recurrent_config(ARCH_GRU, 2, 8, 7, 9, 10, 10, 10);
    c.enc_heads = c.dec_heads = 8;
    CHECK(model_config_validate(&c, err, sizeof err) == 0);
}

int main(void)
{
    fixture_seed(0x6a09e667f3bcc909ULL);
    model_set_threads(2);
    test_gru_cell();
    test_lstm_cell();
    test_param_count();
    test_refusals();
    const int ARCHS[2] = {ARCH_GRU, ARCH_LSTM};
    for (int a = 0; a < 2; a++) {
        printf("%s\n", enum_name(&MODEL_ARCH_TABLE, ARCHS[a]));
        test_model_gradient(ARCHS[a], a); /* the LSTM reads its sources backwards */
        test_padding(ARCHS[a], 0);
        test_padding(ARCHS[a], 1);
        test_decoding(ARCHS[a]);
        test_determinism(ARCHS[a]);
    }
    return test_report("test_model_recurrent");
}
