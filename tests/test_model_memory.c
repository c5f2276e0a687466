/* test_model_memory.c: the memory plan (model_memory_plan) against what the CPU backend really
 * allocates (model_cpu_bytes_in_use) for training and for decoding; activations sized by the
 * source and target lengths they hold (max_src, max_tgt), with results bit-identical to
 * activations sized by max_len; decoding more sources than max_batch, in chunks, equal to
 * decoding them one chunk at a time; the plan of a CUDA model on a machine without a GPU;
 * activation recomputation (ffn, layer): the same loss, gradients and decoding bit for bit, and
 * less memory, as planned. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/encoding.h"
#include "model/model.h"
#include "tests/test.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;
static int irand(int n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((rng_state >> 33) % (uint64_t)n);
}

/* An asymmetric model: sources longer than targets, as for eigenvalues. */
static model_config base_cfg(void)
{
    return (model_config){.enc_layers = 2, .dec_layers = 3, .enc_dim = 32, .dec_dim = 48,
                          .enc_heads = 4, .dec_heads = 6, .vocab_in = 37, .vocab_out = 29,
                          .max_len = 40, .max_src = 40, .max_tgt = 12};
}

/* Framed rows: EOS content EOS, then padding. */
static void frame(int *row, int L, int len, int vocab)
{
    for (int t = 0; t < L; t++)
        row[t] = t == 0 || t == len - 1 ? TOK_EOS : t < len ? 2 + irand(vocab - 2) : TOK_PAD;
}

typedef struct {
    int B, S, T;
    int *src, *src_len, *tgt, *tgt_len;
    model_batch b;
} batch;

static batch batch_make(int B, int S, int T, const model_config *c)
{
    batch o = {B, S, T, malloc(sizeof(int) * B * S), malloc(sizeof(int) * B),
               malloc(sizeof(int) * B * T), malloc(sizeof(int) * B), {0}};
    for (int b = 0; b < B; b++) {
        o.src_len[b] = b == 0 ? S : 3 + irand(S - 2);
        o.tgt_len[b] = b == 1 ? T : 2 + irand(T - 1);
        frame(o.src + b * S, S, o.src_len[b], c->vocab_in);
        frame(o.tgt + b * T, T, o.tgt_len[b], c->vocab_out);
    }
    o.b = (model_batch){B, S, T, o.src, o.src_len, o.tgt, o.tgt_len};
    return o;
}

static void batch_free(batch *o)
{
    free(o->src);
    free(o->src_len);
    free(o->tgt);
    free(o->tgt_len);
}

static size_t planned(const model_config *c, int max_batch, int beam)
{
    model_memory m;
    model_memory_plan(c, BACKEND_CPU, max_batch, beam, &m);
    /* on the CPU the staging is the backend's memory too */
    return m.backend_total + m.host;
}

static void check_within(const char *what, size_t actual, size_t plan, double tol)
{
    double rel = ((double)actual - (double)plan) / (double)plan;
    CHECK_MSG(rel <= tol && rel >= -tol, "%s: allocated %zu bytes, planned %zu (%+.2f%%)", what,
              actual, plan, 100.0 * rel);
}

/* Training allocations, then decoding's (greedy, then a beam of 3), against the plan. */
static void plan_matches_allocation(model_config c)
{
    const int max_batch = 5;
    size_t before = model_cpu_bytes_in_use();
    model *m = model_create(&c, BACKEND_CPU, max_batch);
    model_init_params(m, 7);
    check_within("training", model_cpu_bytes_in_use() - before, planned(&c, max_batch, 0), 0.05);
    batch bt = batch_make(max_batch, c.max_src, c.max_tgt, &c);
    long nt;
    model_forward(m, &bt.b, &nt);
    model_zero_grad(m);
    model_backward(m, &bt.b, 1.0f / (float)nt);
    check_within("after a step", model_cpu_bytes_in_use() - before, planned(&c, max_batch, 0),
                 0.05);
    int out[5 * 10], out_len[5];
    model_greedy_decode(m, bt.src, bt.src_len, max_batch, c.max_src, 10, out, out_len);
    check_within("greedy decoding", model_cpu_bytes_in_use() - before, planned(&c, max_batch, 1),
                 0.05);
    model_beam_decode(m, bt.src, bt.src_len, max_batch, c.max_src, 3, 10, out, out_len);
    check_within("beam decoding", model_cpu_bytes_in_use() - before, planned(&c, max_batch, 3),
                 0.05);
    model_free(m);
    CHECK_MSG(model_cpu_bytes_in_use() == before, "%zu bytes left after model_free",
              model_cpu_bytes_in_use() - before);
    batch_free(&bt);
}

/* A transformer, and universal transformers (issue 17) whose loops hold every iteration's
 * activations, gates, ACT's halting state and the decoding caches of every iteration. */
static void test_plan_matches_allocation(void)
{
    plan_matches_allocation(base_cfg());
    for (int mode = LOOP_FIXED; mode <= LOOP_ACT; mode++) {
        model_config u = base_cfg();
        u.enc_layers = u.dec_layers = 1;
        u.arch = ARCH_UNIVERSAL;
        u.enc_loops = 4;
        u.dec_loops = 3;
        u.loop_mode = mode;
        u.act_threshold = 0.99;
        plan_matches_allocation(u);
        model_memory a, b;
        model_memory_plan(&u, BACKEND_CPU, 5, 3, &a);
        u.enc_loops = 2;
        model_memory_plan(&u, BACKEND_CPU, 5, 3, &b);
        CHECK_MSG(a.enc_layers > b.enc_layers && a.params == b.params,
                  "%s: more loops, more activations (%zu vs %zu), the same parameters",
                  enum_name(&MODEL_LOOP_MODE_TABLE, mode), a.enc_layers, b.enc_layers);
    }
}

/* The decoder's activations follow max_tgt and the encoder's max_src; the parameters follow
 * neither. */
static void test_plan_follows_lengths(void)
{
    model_config c = base_cfg(), wide = c;
    wide.max_tgt = 0; /* max_len: the old sizing */
    model_memory a, b;
    model_memory_plan(&c, BACKEND_CPU, 8, 0, &a);
    model_memory_plan(&wide, BACKEND_CPU, 8, 0, &b);
    CHECK(a.params == b.params && a.adam == 2 * a.params);
    CHECK(a.enc_layer == b.enc_layer);
    CHECK_MSG(a.dec_layer * 2 < b.dec_layer, "decoder layer %zu vs %zu", a.dec_layer,
              b.dec_layer);
    model_memory_plan(&c, BACKEND_CPU, 16, 0, &b);
    CHECK(b.activations > 19 * a.activations / 10 && b.activations < 21 * a.activations / 10);
    CHECK(a.activations == a.embeddings + a.enc_layers + a.dec_layers + a.logits + a.backward);
    CHECK(a.enc_layers == 2 * a.enc_layer && a.dec_layers == 3 * a.dec_layer);
    CHECK(a.attention > 0 && a.attention < a.enc_layers + a.dec_layers);
    /* a CUDA plan needs no GPU: scores for every (example, head) row, the cuBLAS workspace */
    model_memory g;
    model_memory_plan(&c, BACKEND_CUDA, 8, 1, &g);
    CHECK(g.workspace > 0 && g.params == a.params && g.backend_state > 0 && g.decode > 0);
    CHECK(g.backend_total > g.params + g.grads + g.adam + g.activations);
}

/* Sized by max_src / max_tgt or by max_len, the same batch gives the same loss and gradients
 * bit for bit. */
static void test_sizing_changes_no_result(void)
{
    model_config c = base_cfg(), wide = c;
    wide.max_src = 0;
    wide.max_tgt = 0;
    model *m1 = model_create(&c, BACKEND_CPU, 4), *m2 = model_create(&wide, BACKEND_CPU, 4);
    model_init_params(m1, 3);
    model_init_params(m2, 3);
    batch bt = batch_make(4, c.max_src - 5, c.max_tgt, &c);
    long n1, n2;
    double l1 = model_forward(m1, &bt.b, &n1), l2 = model_forward(m2, &bt.b, &n2);
    CHECK(l1 == l2 && n1 == n2);
    model_zero_grad(m1);
    model_zero_grad(m2);
    model_backward(m1, &bt.b, 1.0f / (float)n1);
    model_backward(m2, &bt.b, 1.0f / (float)n2);
    size_t n = model_num_params(m1);
    float *g1 = malloc(n * sizeof(float)), *g2 = malloc(n * sizeof(float));
    model_copy_out(m1, BUF_GRADS, g1);
    model_copy_out(m2, BUF_GRADS, g2);
    CHECK(memcmp(g1, g2, n * sizeof(float)) == 0);
    free(g1);
    free(g2);
    batch_free(&bt);
    model_free(m1);
    model_free(m2);
}

/* 11 sources through a model of max_batch 4 (chunks 4, 4, 3) decode as each chunk alone. */
static void test_decoding_in_chunks(void)
{
    model_config c = base_cfg();
    model *m = model_create(&c, BACKEND_CPU, 4);
    model_init_params(m, 11);
    const int B = 11, S = c.max_src, max_out = 9;
    batch bt = batch_make(B, S, c.max_tgt, &c);
    int all[11 * 9], all_len[11], one[4 * 9], one_len[4];
    for (int beam = 1; beam <= 2; beam++) {
        model_beam_decode(m, bt.src, bt.src_len, B, S, beam, max_out, all, all_len);
        int same = 1;
        for (int first = 0; first < B; first += 4) {
            int n = B - first < 4 ? B - first : 4;
            model_beam_decode(m, bt.src + first * S, bt.src_len + first, n, S, beam, max_out,
                              one, one_len);
            for (int j = 0; j < n; j++) {
                same &= one_len[j] == all_len[first + j];
                for (int t = 0; t < one_len[j]; t++)
                    same &= one[j * max_out + t] == all[(first + j) * max_out + t];
            }
        }
        CHECK_MSG(same, "beam %d: chunked decoding differs", beam);
    }
    model_greedy_decode(m, bt.src, bt.src_len, B, S, max_out, all, all_len);
    int ref[11 * 9], ref_len[11];
    model_greedy_decode_nocache(m, bt.src, bt.src_len, B, S, max_out, ref, ref_len);
    int same = 1;
    for (int b = 0; b < B; b++) {
        same &= ref_len[b] == all_len[b];
        for (int t = 0; t < ref_len[b]; t++) same &= ref[b * max_out + t] == all[b * max_out + t];
    }
    CHECK_MSG(same, "greedy with cache differs from the oracle on 11 sources");
    batch_free(&bt);
    model_free(m);
}

/* Recomputation changes memory, not numbers: loss, gradients (two steps, so that Adam moves
 * the weights in between) and greedy decoding are those of the stored-activation path. */
static void test_recompute(void)
{
    model_config c = base_cfg();
    c.enc_layers = 3; /* several layers on each side share buffers */
    float *g[3];
    double loss[3];
    int out[3][4 * 9] = {{0}}, out_len[3][4]; /* tokens past out_len stay 0 */
    size_t act[3];
    batch bt = batch_make(4, c.max_src - 3, c.max_tgt, &c);
    for (int rc = MODEL_RECOMPUTE_NONE; rc <= MODEL_RECOMPUTE_LAYER; rc++) {
        c.recompute = rc;
        size_t before = model_cpu_bytes_in_use();
        model *m = model_create(&c, BACKEND_CPU, 4);
        check_within(rc == 0 ? "none" : rc == 1 ? "ffn" : "layer",
                     model_cpu_bytes_in_use() - before, planned(&c, 4, 0), 0.05);
        model_memory plan;
        model_memory_plan(&c, BACKEND_CPU, 4, 0, &plan);
        act[rc] = plan.activations;
        model_init_params(m, 5);
        adam_hparams h = {1e-3f, 0.9f, 0.999f, 1e-8f};
        long nt = 0;
        for (int step = 1; step <= 2; step++) {
            loss[rc] = model_forward(m, &bt.b, &nt);
            model_zero_grad(m);
            model_backward(m, &bt.b, 1.0f / (float)nt);
            if (step == 1) model_adam_step(m, &h, step, 1.0f);
        }
        g[rc] = malloc(model_num_params(m) * sizeof(float));
        model_copy_out(m, BUF_GRADS, g[rc]);
        model_greedy_decode(m, bt.src, bt.src_len, 4, bt.S, 9, out[rc], out_len[rc]);
        if (rc > 0) {
            size_t n = model_num_params(m) * sizeof(float);
            CHECK_MSG(loss[rc] == loss[0], "recompute %d: loss %.17g, stored %.17g", rc,
                      loss[rc], loss[0]);
            CHECK_MSG(memcmp(g[rc], g[0], n) == 0, "recompute %d: gradients differ", rc);
            CHECK_MSG(memcmp(out_len[rc], out_len[0], sizeof out_len[0]) == 0 &&
                          memcmp(out[rc], out[0], sizeof out[0]) == 0,
                      "recompute %d: decoding differs", rc);
        }
        model_free(m);
    }
    CHECK_MSG(act[1] < act[0] && act[2] < act[1], "activations: none %zu, ffn %zu, layer %zu",
              act[0], act[1], act[2]);
    for (int rc = 0; rc < 3; rc++) free(g[rc]);
    batch_free(&bt);
}

int main(void)
{
    test_plan_matches_allocation();
    test_plan_follows_lengths();
    test_sizing_changes_no_result();
    test_decoding_in_chunks();
    test_recompute();
    return test_report("test_model_memory");
}
