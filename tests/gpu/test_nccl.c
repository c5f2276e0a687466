/* test_nccl.c: gradient all-reduce of device buffers through NCCL.
 *
 * test_nccl            the all-reduce of comm_nccl.h at any number of ranks, one GPU each:
 *                      rank r contributes r + 1 + (i mod 8) / 4 to element i; every element must
 *                      equal the exact sum over ranks.
 * test_nccl --devices  one process drives every visible GPU (at least 2; no MPI needed):
 *                      1. ncclCommInitAll and the same exact-sum check on every device;
 *                      2. data-parallel training as the trainer does it, with the devices as
 *                         ranks: each device's model takes its share of the batch, backward
 *                         scales by the global token count, NCCL sums the gradient buffers,
 *                         Adam steps on every device; against one model on device 0 taking the
 *                         whole batch: the summed gradients of the first step within 1e-5, the
 *                         loss curves within 1e-4 over 10 steps, the devices' parameters
 *                         bit-identical.
 * Exits 77 (skipped) when this machine has no CUDA device, or, with --devices, fewer than 2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "comm/comm.h"
#include "comm/comm_nccl.h"
#include "encoding/encoding.h"
#include "model/model.h"

#define CHECK_CUDA(call)                                                                    \
    do {                                                                                    \
        cudaError_t e_ = (call);                                                            \
        if (e_ != cudaSuccess) {                                                            \
            fprintf(stderr, "test_nccl: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,        \
                    cudaGetErrorString(e_));                                                \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

#define CHECK_NCCL(call)                                                                    \
    do {                                                                                    \
        ncclResult_t r_ = (call);                                                           \
        if (r_ != ncclSuccess) {                                                            \
            fprintf(stderr, "test_nccl: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,        \
                    ncclGetErrorString(r_));                                                \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

#define MAX_DEV 16

/* element i of rank r's contribution, and the exact sum over `ranks` ranks (small multiples
 * of 1/4: every partial sum is exact in float) */
static float contribution(int r, size_t i) { return (float)(r + 1) + (float)(i % 8) * 0.25f; }
static float exact_sum(int ranks, size_t i)
{
    return (float)ranks * (float)(ranks + 1) / 2.0f + (float)ranks * (float)(i % 8) * 0.25f;
}

static int ranks_test(int argc, char **argv)
{
    comm *c = comm_init(&argc, &argv);
    comm_nccl *nc = comm_nccl_init(c);
    const size_t n = 1000003;
    const int rank = comm_rank(c), size = comm_size(c);
    float *h = malloc(n * sizeof(float)), *d = NULL;
    for (size_t i = 0; i < n; i++) h[i] = contribution(rank, i);
    if (cudaMalloc((void **)&d, n * sizeof(float)) != cudaSuccess ||
        cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess)
        comm_abort(c, 1, "test_nccl: cudaMalloc/cudaMemcpy failed");
    comm_allreduce_sum_float_device(nc, d, n);
    if (cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess)
        comm_abort(c, 1, "test_nccl: cudaMemcpy failed");
    long bad = 0;
    for (size_t i = 0; i < n; i++)
        if (h[i] != exact_sum(size, i)) bad++;
    long all_bad = bad;
    comm_allreduce_sum_long(c, &all_bad, 1);
    if (rank == 0)
        printf("test_nccl: %d ranks, device %d on rank 0, %ld wrong elements, %.3f ms\n", size,
               comm_nccl_device(nc), all_bad, 1e3 * comm_nccl_seconds(nc));
    cudaFree(d);
    free(h);
    comm_nccl_free(nc);
    comm_finalize(c);
    return all_bad == 0 ? 0 : 1;
}

/* ---- --devices: one process, every device a rank ---- */

/* In-place sum of buf[d] (n floats on device d) over the devices, as one NCCL group. */
static void allreduce_devices(ncclComm_t *comms, float **buf, int ndev, size_t n)
{
    CHECK_NCCL(ncclGroupStart());
    for (int d = 0; d < ndev; d++)
        CHECK_NCCL(ncclAllReduce(buf[d], buf[d], n, ncclFloat, ncclSum, comms[d], 0));
    CHECK_NCCL(ncclGroupEnd());
    for (int d = 0; d < ndev; d++) {
        CHECK_CUDA(cudaSetDevice(d));
        CHECK_CUDA(cudaStreamSynchronize(0));
    }
}

static long devices_allreduce(ncclComm_t *comms, int ndev)
{
    const size_t n = 1000003;
    float *h = malloc(n * sizeof(float)), *buf[MAX_DEV];
    for (int d = 0; d < ndev; d++) {
        for (size_t i = 0; i < n; i++) h[i] = contribution(d, i);
        CHECK_CUDA(cudaSetDevice(d));
        CHECK_CUDA(cudaMalloc((void **)&buf[d], n * sizeof(float)));
        CHECK_CUDA(cudaMemcpy(buf[d], h, n * sizeof(float), cudaMemcpyHostToDevice));
    }
    allreduce_devices(comms, buf, ndev, n);
    long bad = 0;
    for (int d = 0; d < ndev; d++) {
        CHECK_CUDA(cudaSetDevice(d));
        CHECK_CUDA(cudaMemcpy(h, buf[d], n * sizeof(float), cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; i++) bad += h[i] != exact_sum(ndev, i);
        CHECK_CUDA(cudaFree(buf[d]));
    }
    printf("test_nccl --devices: all-reduce over %d devices (ncclCommInitAll): %ld wrong "
           "elements\n",
           ndev, bad);
    free(h);
    return bad;
}

/* A batch of B framed examples with random lengths and tokens (a fixed generator). */
typedef struct {
    int B, S, T;
    int *src, *src_len, *tgt, *tgt_len;
} batch;

static unsigned long long rng = 0x452821e638d01377ULL;
static int irand(int n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((rng >> 33) % (unsigned long long)n);
}

static batch batch_make(int B, int S, int T, int vocab_in, int vocab_out)
{
    batch o = {B, S, T, calloc((size_t)B * S, sizeof(int)), malloc(sizeof(int) * B),
               calloc((size_t)B * T, sizeof(int)), malloc(sizeof(int) * B)};
    for (int b = 0; b < B; b++) {
        o.src_len[b] = 2 + irand(S - 1);
        o.tgt_len[b] = 2 + irand(T - 1);
        for (int s = 0; s < o.src_len[b]; s++)
            o.src[b * S + s] = s == 0 || s == o.src_len[b] - 1 ? TOK_EOS : 2 + irand(vocab_in - 2);
        for (int t = 0; t < o.tgt_len[b]; t++)
            o.tgt[b * T + t] = t == 0 || t == o.tgt_len[b] - 1 ? TOK_EOS : 2 + irand(vocab_out - 2);
    }
    return o;
}

/* rows [b0, b0 + n) of o as a model batch */
static model_batch batch_rows(const batch *o, int b0, int n)
{
    return (model_batch){n, o->S, o->T, o->src + (size_t)b0 * o->S, o->src_len + b0,
                         o->tgt + (size_t)b0 * o->T, o->tgt_len + b0};
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

static int devices_training(ncclComm_t *comms, int ndev)
{
    const model_config cfg = {.enc_layers = 2, .dec_layers = 2, .enc_dim = 64, .dec_dim = 64,
                              .enc_heads = 4, .dec_heads = 4, .vocab_in = 29, .vocab_out = 31,
                              .max_len = 16};
    const int per = 5, B = per * ndev, S = 16, T = 14, steps = 10, nb = 3;
    const adam_hparams hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-9f};
    model *one, *rank[MAX_DEV];
    model_set_cuda_device_for_rank(0);
    one = model_create(&cfg, BACKEND_CUDA, B);
    model_init_params(one, 11);
    for (int d = 0; d < ndev; d++) {
        model_set_cuda_device_for_rank(d);
        rank[d] = model_create(&cfg, BACKEND_CUDA, per);
        model_init_params(rank[d], 11);
    }
    batch data[3];
    for (int i = 0; i < nb; i++) data[i] = batch_make(B, S, T, cfg.vocab_in, cfg.vocab_out);
    const size_t np = model_num_params(one);
    float *g1 = malloc(np * sizeof(float)), *gr = malloc(np * sizeof(float)),
          *p0 = malloc(np * sizeof(float)), *pd = malloc(np * sizeof(float));
    float *grads[MAX_DEV];
    int fails = 0;
    double worst = 0.0;
    for (int s = 1; s <= steps; s++) {
        const batch *b = &data[s % nb];
        /* one device, the whole batch */
        CHECK_CUDA(cudaSetDevice(0));
        model_batch whole = batch_rows(b, 0, B);
        long n1 = 0;
        double l1 = model_forward(one, &whole, &n1);
        model_zero_grad(one);
        model_backward(one, &whole, 1.0f / (float)n1);
        /* every device its rows; the loss scale is the global token count, as in the trainer */
        double lr = 0.0;
        long nr = 0;
        for (int d = 0; d < ndev; d++) {
            CHECK_CUDA(cudaSetDevice(d));
            model_batch mine = batch_rows(b, d * per, per);
            long nd = 0;
            lr += model_forward(rank[d], &mine, &nd);
            nr += nd;
        }
        for (int d = 0; d < ndev; d++) {
            CHECK_CUDA(cudaSetDevice(d));
            model_batch mine = batch_rows(b, d * per, per);
            model_zero_grad(rank[d]);
            model_backward(rank[d], &mine, 1.0f / (float)nr);
            grads[d] = model_gradient_buffer(rank[d]);
        }
        allreduce_devices(comms, grads, ndev, np);
        if (nr != n1) {
            printf("  step %d: token counts %ld (devices) vs %ld (one)\n", s, nr, n1);
            fails++;
        }
        if (s == 1) {
            CHECK_CUDA(cudaSetDevice(0));
            model_copy_out(one, BUF_GRADS, g1);
            model_copy_out(rank[0], BUF_GRADS, gr);
            double e = rel_err(gr, g1, np);
            printf("  step 1: summed gradients vs one device: rel err %.3g\n", e);
            fails += !(e <= 1e-5);
        }
        CHECK_CUDA(cudaSetDevice(0));
        model_adam_step(one, &hp, s, 1.0f);
        for (int d = 0; d < ndev; d++) {
            CHECK_CUDA(cudaSetDevice(d));
            model_adam_step(rank[d], &hp, s, 1.0f);
        }
        double e = fabs(lr - l1) / fabs(l1);
        if (!(e <= worst)) worst = e;
        printf("  step %2d: loss/token %d devices %.8f, one device %.8f\n", s, ndev, lr / nr,
               l1 / n1);
    }
    fails += !(worst <= 1e-4);
    CHECK_CUDA(cudaSetDevice(0));
    model_copy_out(rank[0], BUF_PARAMS, p0);
    int same = 1;
    for (int d = 1; d < ndev; d++) {
        CHECK_CUDA(cudaSetDevice(d));
        model_copy_out(rank[d], BUF_PARAMS, pd);
        same &= memcmp(p0, pd, np * sizeof(float)) == 0;
    }
    fails += !same;
    CHECK_CUDA(cudaSetDevice(0));
    model_copy_out(one, BUF_PARAMS, pd);
    printf("test_nccl --devices: training on %d devices vs one: worst loss difference %.3g "
           "(<= 1e-4), parameters %s across devices, %.3g from the one-device run\n",
           ndev, worst, same ? "bit-identical" : "DIFFERENT", rel_err(p0, pd, np));
    for (int i = 0; i < nb; i++)
        free(data[i].src), free(data[i].src_len), free(data[i].tgt), free(data[i].tgt_len);
    for (int d = 0; d < ndev; d++) {
        CHECK_CUDA(cudaSetDevice(d));
        model_free(rank[d]);
    }
    CHECK_CUDA(cudaSetDevice(0));
    model_free(one);
    free(g1), free(gr), free(p0), free(pd);
    return fails;
}

static int devices_test(int ndev)
{
    if (ndev < 2) {
        printf("test_nccl --devices: skipped: %d CUDA device (needs 2 or more)\n", ndev);
        return 77;
    }
    if (getenv("LAWT_CUDA_DEVICE")) {
        fprintf(stderr, "test_nccl --devices: unset LAWT_CUDA_DEVICE: every device is used\n");
        return 2;
    }
    if (ndev > MAX_DEV) ndev = MAX_DEV;
    int devs[MAX_DEV];
    ncclComm_t comms[MAX_DEV];
    for (int d = 0; d < ndev; d++) devs[d] = d;
    CHECK_NCCL(ncclCommInitAll(comms, ndev, devs));
    long bad = devices_allreduce(comms, ndev);
    int fails = devices_training(comms, ndev);
    for (int d = 0; d < ndev; d++) CHECK_NCCL(ncclCommDestroy(comms[d]));
    printf("test_nccl --devices: %s\n", bad == 0 && fails == 0 ? "passed" : "FAILED");
    return bad == 0 && fails == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int devices = argc > 1 && !strcmp(argv[1], "--devices");
    if (argc > 1 && !strcmp(argv[1], "--help")) {
        printf("usage: %s [--devices]\n  (no option) the NCCL all-reduce of comm_nccl.h at "
               "every rank (run under mpiexec for several)\n  --devices   every GPU in one "
               "process: all-reduce, and training against one GPU (needs 2 GPUs)\n",
               argv[0]);
        return 0;
    }
    if (argc > 1 && (!devices || argc > 2)) {
        fprintf(stderr, "usage: %s [--devices]\n", argv[0]);
        return 2;
    }
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("test_nccl: skipped: no CUDA device\n");
        return 77;
    }
    return devices ? devices_test(ndev) : ranks_test(argc, argv);
}
