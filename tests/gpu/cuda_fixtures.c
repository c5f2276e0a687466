/* cuda_fixtures.c: the CUDA parity tests' shared helpers (cuda_fixtures.h). */
#include "tests/gpu/cuda_fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "model/cuda/cuda_check.h"
#include "tests/test.h"

void *dev_up(const void *h, size_t bytes)
{
    void *d = NULL;
    CUDA_CHECK(cudaMalloc(&d, bytes ? bytes : 4));
    if (h && bytes) CUDA_CHECK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

float *dup_f(const float *h, size_t n) { return dev_up(h, n * sizeof(float)); }

float *dev_nan(size_t n)
{
    float *d = dup_f(NULL, n);
    CUDA_CHECK(cudaMemset(d, NAN_BYTE, n * sizeof(float)));
    return d;
}

float *down_f(const float *d, size_t n)
{
    float *h = malloc(n * sizeof(float));
    CUDA_CHECK(cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

void check_dev(const char *what, const float *d, const float *ref, size_t n, double tol)
{
    float *h = down_f(d, n);
    double e = rel_err(h, ref, n);
    CHECK_MSG(e <= tol, "%s: relative error %.3g > %.1g", what, e, tol);
    printf("  %-52s rel err %.3g\n", what, e);
    free(h);
}

/* row `row` of a and of b (rows of max_out tokens) starts with the same len tokens */
static int same_tokens(const int *a, const int *b, int row, int max_out, int len)
{
    return !memcmp(a + row * max_out, b + row * max_out, sizeof(int) * (size_t)len);
}

void compare_decoding(model *gpu, model *cpu, const owned_batch *ob, int max_out, int beam,
                      const char *name, int *greedy_len, int *beam_len)
{
    const int B = ob->b.B, S = ob->b.S;
    int *oc = malloc(sizeof(int) * B * max_out), *og = malloc(sizeof(int) * B * max_out),
        *on = malloc(sizeof(int) * B * max_out);
    int *lgg = malloc(sizeof(int) * B), *ln = malloc(sizeof(int) * B);
    model_greedy_decode(cpu, ob->src, ob->src_len, B, S, max_out, oc, greedy_len);
    model_greedy_decode(gpu, ob->src, ob->src_len, B, S, max_out, og, lgg);
    model_greedy_decode_nocache(gpu, ob->src, ob->src_len, B, S, max_out, on, ln);
    int same_cpu = 1, same_nc = 1, total = 0;
    for (int b = 0; b < B; b++) {
        total += lgg[b];
        same_cpu &= greedy_len[b] == lgg[b] && same_tokens(oc, og, b, max_out, lgg[b]);
        same_nc &= ln[b] == lgg[b] && same_tokens(on, og, b, max_out, lgg[b]);
    }
    CHECK_MSG(same_cpu, "%s: greedy decoding: GPU differs from CPU", name);
    CHECK_MSG(same_nc, "%s: greedy decoding: GPU KV cache differs from GPU no-cache", name);
    printf("  %s: greedy %d tokens, GPU == CPU %d, cache == no-cache %d\n", name, total,
           same_cpu, same_nc);
    model_beam_decode(cpu, ob->src, ob->src_len, B, S, beam, max_out, oc, beam_len);
    model_beam_decode(gpu, ob->src, ob->src_len, B, S, beam, max_out, og, lgg);
    int same_beam = 1;
    for (int b = 0; b < B; b++)
        same_beam &= beam_len[b] == lgg[b] && same_tokens(oc, og, b, max_out, beam_len[b]);
    CHECK_MSG(same_beam, "%s: beam decoding (width %d): GPU differs from CPU", name, beam);
    model_beam_decode(gpu, ob->src, ob->src_len, B, S, 1, max_out, on, ln);
    model_greedy_decode(gpu, ob->src, ob->src_len, B, S, max_out, og, lgg);
    int beam1 = 1;
    for (int b = 0; b < B; b++)
        beam1 &= ln[b] == lgg[b] && same_tokens(on, og, b, max_out, lgg[b]);
    CHECK_MSG(beam1, "%s: beam width 1 differs from greedy on the GPU", name);
    free(oc), free(og), free(on), free(lgg), free(ln);
}
