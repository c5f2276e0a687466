/* test_cuda_recurrent.c: the CUDA backend of the LSTM and GRU encoder-decoders (model.arch =
 * lstm | gru) against the CPU reference, as test_cuda_parity.c holds the transformer's:
 *
 *   1. each cell's forward and backward (recurrent_cuda.h against recurrent_layers.h), with
 *      rows that have stopped stepping, a gradient from above or none, and the state updated
 *      in place; outputs it overwrites start as NaN on the device;
 *   2. the whole model in fp32: loss, logits and the gradient buffer (accumulated onto
 *      identical non-zero buffers), after a larger batch has filled the activations;
 *   3. decoding: GPU greedy and beam == CPU greedy and beam, stepwise == whole-prefix and
 *      beam 1 == greedy on the GPU.
 *
 * Errors are norm-wise relative, at test_cuda_parity.c's tolerances: 1e-5 per layer and for
 * the loss and logits, 1e-4 for the gradient buffer (through the steps, rounding of cuBLAS and
 * OpenBLAS products compounds). Without a usable GPU the program exits 77 (CTest: skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "encoding/encoding.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/recurrent_cuda.h"
#include "model/model.h"
#include "model/recurrent_layers.h"
#include "tests/gpu/cuda_fixtures.h"
#include "tests/test.h"

#define TOL 1e-5

/* ---- 1. the cells ---- */

static void test_gru_cell(int B, int H, int with_dy)
{
    const int t = 2;
    int *len = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) len[b] = b % 3 == 1 ? 1 : 3 + irand(4); /* every third stopped */
    const size_t g = (size_t)B * 3 * H, n = (size_t)B * H;
    float *gx = randv(g, 1), *gh = randv(g, 1), *hp = randv(n, 1), *h = malloc(n * sizeof(float));
    int *d_len = dev_up(len, sizeof(int) * B);
    float *d_gates = dup_f(gx, g), *d_gh = dup_f(gh, g), *d_hp = dup_f(hp, n), *d_h = dev_nan(n);
    gru_cell_forward(h, gx, gh, hp, len, t, B, H); /* gx now holds the gates */
    gru_cell_forward_cuda(d_h, d_gates, d_gh, d_hp, d_len, t, B, H);
    char what[96];
    snprintf(what, sizeof what, "gru_cell_forward h (B%d H%d)", B, H);
    check_dev(what, d_h, h, n, TOL);
    check_dev("gru_cell_forward gates", d_gates, gx, g, TOL);
    float *dy = with_dy ? randv(n, 1) : NULL, *carry = randv(n, 1);
    float *dgx = malloc(g * sizeof(float)), *dgh = malloc(g * sizeof(float));
    float *d_dy = dy ? dup_f(dy, n) : NULL, *d_carry = dup_f(carry, n);
    float *d_dgx = dev_nan(g), *d_dgh = dev_nan(g);
    gru_cell_backward(dgx, dgh, carry, dy, gx, gh, hp, len, t, B, H);
    gru_cell_backward_cuda(d_dgx, d_dgh, d_carry, d_dy, d_gates, d_gh, d_hp, d_len, t, B, H);
    snprintf(what, sizeof what, "gru_cell_backward dgx (%s)", with_dy ? "dy" : "no dy");
    check_dev(what, d_dgx, dgx, g, TOL);
    check_dev("gru_cell_backward dgh", d_dgh, dgh, g, TOL);
    check_dev("gru_cell_backward dh_carry", d_carry, carry, n, TOL);
    /* in place, as decoding runs it: h == h_prev, no lengths */
    memcpy(h, hp, n * sizeof(float));
    gru_cell_forward(h, gh, gx, h, NULL, 0, B, H);
    gru_cell_forward_cuda(d_hp, d_gh, d_gates, d_hp, NULL, 0, B, H);
    check_dev("gru_cell_forward in place", d_hp, h, n, TOL);
    free(len), free(gx), free(gh), free(hp), free(h), free(dy), free(carry), free(dgx), free(dgh);
    void *dev[] = {d_len, d_gates, d_gh, d_hp, d_h, d_dy, d_carry, d_dgx, d_dgh};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) CUDA_CHECK(cudaFree(dev[i]));
}

static void test_lstm_cell(int B, int H, int with_dy)
{
    const int t = 2;
    int *len = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) len[b] = b % 3 == 1 ? 1 : 3 + irand(4);
    const size_t g = (size_t)B * 4 * H, n = (size_t)B * H;
    float *a = randv(g, 1), *hp = randv(n, 1), *cp = randv(n, 1), *h = malloc(n * sizeof(float)),
          *c = malloc(n * sizeof(float));
    int *d_len = dev_up(len, sizeof(int) * B);
    float *d_gates = dup_f(a, g), *d_hp = dup_f(hp, n), *d_cp = dup_f(cp, n), *d_h = dev_nan(n),
          *d_c = dev_nan(n);
    lstm_cell_forward(h, c, a, hp, cp, len, t, B, H);
    lstm_cell_forward_cuda(d_h, d_c, d_gates, d_hp, d_cp, d_len, t, B, H);
    char what[96];
    snprintf(what, sizeof what, "lstm_cell_forward h (B%d H%d)", B, H);
    check_dev(what, d_h, h, n, TOL);
    check_dev("lstm_cell_forward c", d_c, c, n, TOL);
    check_dev("lstm_cell_forward gates", d_gates, a, g, TOL);
    float *dy = with_dy ? randv(n, 1) : NULL, *dh = randv(n, 1), *dc = randv(n, 1);
    float *da = malloc(g * sizeof(float));
    float *d_dy = dy ? dup_f(dy, n) : NULL, *d_dh = dup_f(dh, n), *d_dc = dup_f(dc, n);
    float *d_da = dev_nan(g);
    lstm_cell_backward(da, dh, dc, dy, a, c, cp, len, t, B, H);
    lstm_cell_backward_cuda(d_da, d_dh, d_dc, d_dy, d_gates, d_c, d_cp, d_len, t, B, H);
    snprintf(what, sizeof what, "lstm_cell_backward dgates (%s)", with_dy ? "dy" : "no dy");
    check_dev(what, d_da, da, g, TOL);
    check_dev("lstm_cell_backward dh_carry", d_dh, dh, n, TOL);
    check_dev("lstm_cell_backward dc_carry", d_dc, dc, n, TOL);
    free(len), free(a), free(hp), free(cp), free(h), free(c), free(dy), free(dh), free(dc);
    free(da);
    void *dev[] = {d_len, d_gates, d_hp, d_cp, d_h, d_c, d_dy, d_dh, d_dc, d_da};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) CUDA_CHECK(cudaFree(dev[i]));
}

/* ---- 2. and 3. the whole model ---- */

static void test_model(int arch, int layers, int hidden, int dim, int vocab)
{
    const char *name = enum_name(&MODEL_ARCH_TABLE, arch);
    printf("%s, %d layers x %d hidden, embeddings %d, vocabulary %d\n", name, layers, hidden, dim,
           vocab);
    model_config c = recurrent_config(arch, layers, hidden, dim, dim, vocab, vocab, 40);
    enum { MB = 12 };
    model *cpu = model_create(&c, BACKEND_CPU, MB), *gpu = model_create(&c, BACKEND_CUDA, MB);
    model_init_params(cpu, 5);
    model_init_params(gpu, 5);
    owned_batch big = batch_make_random(MB, 40, 30, vocab, vocab),
                small = batch_make_random(7, 23, 17, vocab, vocab);
    long nt;
    model_forward(gpu, &big.b, &nt); /* the activations hold a larger batch's values */
    const size_t np = model_num_params(cpu);
    float *g0 = randv(np, 1), *gc = malloc(np * sizeof(float)), *gg = malloc(np * sizeof(float));
    model_copy_in(cpu, BUF_GRADS, g0);
    model_copy_in(gpu, BUF_GRADS, g0);
    long ntc, ntg;
    double lc = model_forward(cpu, &small.b, &ntc), lg = model_forward(gpu, &small.b, &ntg);
    CHECK(ntc == ntg);
    CHECK_MSG(fabs(lc - lg) <= TOL * fabs(lc), "%s loss: cpu %.9g, gpu %.9g", name, lc, lg);
    printf("  %-52s rel err %.3g\n", "loss", fabs(lc - lg) / fabs(lc));
    const size_t nl = (size_t)7 * 16 * (size_t)vocab;
    float *lgc = malloc(nl * sizeof(float)), *lgg = malloc(nl * sizeof(float));
    model_copy_logits(cpu, lgc);
    model_copy_logits(gpu, lgg);
    double e = rel_err(lgg, lgc, nl);
    CHECK_MSG(e <= TOL, "%s logits: relative error %.3g", name, e);
    printf("  %-52s rel err %.3g\n", "logits", e);
    model_backward(cpu, &small.b, 1.0f / (float)ntc);
    model_backward(gpu, &small.b, 1.0f / (float)ntg);
    model_copy_out(cpu, BUF_GRADS, gc);
    model_copy_out(gpu, BUF_GRADS, gg);
    for (size_t i = 0; i < np; i++) gc[i] -= g0[i], gg[i] -= g0[i];
    e = rel_err(gg, gc, np);
    CHECK_MSG(e <= 1e-4, "%s gradients: relative error %.3g", name, e);
    printf("  %-52s rel err %.3g\n", "gradient buffer", e);
    /* decoding, the same tokens on both */
    int greedy_len[7], beam_len[7];
    compare_decoding(gpu, cpu, &small, 12, 3, name, greedy_len, beam_len);
    free(g0), free(gc), free(gg), free(lgc), free(lgg);
    batch_free(&big);
    batch_free(&small);
    model_free(cpu);
    model_free(gpu);
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        printf("usage: test_cuda_recurrent\nthe recurrent models' CUDA backend against the CPU; "
               "exits 77 without a GPU\n");
        return 2;
    }
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0 || !model_cuda_available()) {
        cudaGetLastError();
        printf("test_cuda_recurrent: no usable GPU (%s): skipped\n",
               err != cudaSuccess ? cudaGetErrorString(err) : "no device");
        return 77;
    }
    fixture_seed(0x13198a2e03707344ULL);
    model_set_cuda_precision(PRECISION_FP32);
    model_set_threads(2);
    printf("cells\n");
    for (int dy = 0; dy < 2; dy++) {
        test_gru_cell(5, 7, dy);
        test_gru_cell(64, 1024, dy);
        test_lstm_cell(5, 7, dy);
        test_lstm_cell(64, 1024, dy);
    }
    test_model(ARCH_GRU, 2, 24, 16, 29);
    test_model(ARCH_LSTM, 3, 20, 12, 31);
    test_model(ARCH_GRU, 2, 256, 128, 1314);
    return test_report("test_cuda_recurrent");
}
