/* bench_gpu: issue 6's measurements on one GPU, side by side with the PyTorch reference
 * (../shared/bench/pytorch_reference.py) on the same GPU, in one run:
 *
 *   peak      cuBLAS matrix products of 8192^3 in bf16 (fp32 accumulation), tf32 and fp32: the
 *             hardware's own ceiling, measured, for the model FLOP utilisation (MFU);
 *   training  examples/s of lawt at fp32, tf32 and bf16 against PyTorch eager, eager with
 *             --amp bf16, --compile, and --compile --amp bf16, on
 *               (a)  eigenvalues 5x5, P1000, 4/1 layers, 512 dims, 8 heads, batch 64,
 *               (a') the same at a large batch (--large-batch, default 1024),
 *               (c)  eigenvalues 8x8, P1000, 12/1 layers, 768 dims, 12 heads, batch 64 (Table
 *                    18's large model; the decoder at 768 dims too);
 *   decoding  greedy, config (a), 17 tokens: ms per matrix at batch 1 and at a large batch
 *             (--decode-batch, default 1024), lawt
 *             at fp32 and bf16 against PyTorch eager and --amp bf16.
 *
 * Targets (issue 6): lawt >= 3x PyTorch eager on (a); >= 1.5x PyTorch's best on (a'); MFU
 * >= 50% of the bf16 peak on (a'); <= 0.05 ms per matrix decoding at batch 1024.
 *
 * Without a GPU it says so and exits 77, appending nothing. --device cpu runs the same program
 * on the CPU backend and PyTorch on the CPU (no peak), to check the harness on a machine without
 * a GPU. Shapes, FLOPs and the child processes: bench/harness.h. */
#define _DEFAULT_SOURCE /* sysconf(_SC_NPROCESSORS_ONLN) */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness.h"
#include "bench/machine.h"
#include "common/common.h"
#include "encoding/encoding.h"

#ifdef LAWT_BENCH_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#define CUDA_OK(call)                                                                     \
    do {                                                                                  \
        cudaError_t e_ = (call);                                                          \
        if (e_ != cudaSuccess)                                                            \
            lawt_die("bench_gpu: %s:%d: %s: %s", __FILE__, __LINE__, #call,               \
                     cudaGetErrorString(e_));                                             \
    } while (0)
#define CUBLAS_OK(call)                                                                   \
    do {                                                                                  \
        cublasStatus_t s_ = (call);                                                       \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                  \
            lawt_die("bench_gpu: %s:%d: %s: %s", __FILE__, __LINE__, #call,               \
                     cublasGetStatusString(s_));                                          \
    } while (0)
#endif

static const bench_shape SHAPE_A = {"(a)", "eigenvalues 5x5, 4/1 layers, 512 dims, 8 heads",
                                    4, 1, 512, 8, 79, 19, 64};
/* "V8 V8" and 64 coefficients of 3 tokens, framed; "V8 V1" and 8 coefficients, framed. */
static const bench_shape SHAPE_C = {"(c)", "eigenvalues 8x8, 12/1 layers, 768 dims, 12 heads",
                                    12, 1, 768, 12, 196, 28, 64};
#define PRECISION_ROW(id, name, help) id,
static const model_precision PRECISIONS[] = {MODEL_PRECISIONS(PRECISION_ROW)};
#undef PRECISION_ROW
enum { DECODE_MAX_OUT = 17, PEAK_N = 8192, NPREC = sizeof PRECISIONS / sizeof PRECISIONS[0],
       NPY = 4 };
#define PRECISION_NAME(k) enum_name(&MODEL_PRECISION_TABLE, PRECISIONS[k])
static const char *const PY_NAMES[NPY] = {"eager", "eager bf16", "compile", "compile bf16"};

/* ---- jobs that run in a child (CUDA is never touched by the parent, which forks) ---- */

static void job_probe(const void *arg, measure *r)
{
    (void)arg;
    r->params = model_cuda_available();
}

#ifdef LAWT_BENCH_HAVE_CUDA
/* Best TFLOP/s of an n^3 product over 10 timed calls (after 2 untimed ones), with A and B of
 * type ab and compute type ct; C is fp32. */
static double gemm_peak(cublasHandle_t h, cudaDataType_t ab, cublasComputeType_t ct, int n,
                        void *A, void *B, float *C)
{
    const float one = 1.0f, zero = 0.0f;
    cudaEvent_t t0, t1;
    CUDA_OK(cudaEventCreate(&t0));
    CUDA_OK(cudaEventCreate(&t1));
    float best = 1e30f;
    for (int rep = 0; rep < 12; rep++) {
        CUDA_OK(cudaEventRecord(t0, 0));
        CUBLAS_OK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A, ab, n, B, ab, n,
                               &zero, C, CUDA_R_32F, n, ct, CUBLAS_GEMM_DEFAULT));
        CUDA_OK(cudaEventRecord(t1, 0));
        CUDA_OK(cudaEventSynchronize(t1));
        float ms;
        CUDA_OK(cudaEventElapsedTime(&ms, t0, t1));
        if (rep >= 2 && ms < best) best = ms;
    }
    CUDA_OK(cudaEventDestroy(t0));
    CUDA_OK(cudaEventDestroy(t1));
    return 2.0 * n * (double)n * n / (best * 1e-3) / 1e12;
}

/* gemm_gflops[k] holds TFLOP/s here: [0] bf16, [1] tf32, [2] fp32. */
static void job_peak(const void *arg, measure *r)
{
    (void)arg;
    const size_t n = PEAK_N, nn = n * n;
    float *host = lawt_malloc(nn * sizeof(float));
    uint16_t *host16 = lawt_malloc(nn * sizeof(uint16_t));
    /* values in [-1, 1): tensor cores draw less power on zeros, which would flatter the peak */
    for (size_t i = 0; i < nn; i++) {
        host[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
        uint32_t bits;
        memcpy(&bits, &host[i], sizeof bits);
        host16[i] = (uint16_t)(bits >> 16); /* bf16: the top half of an fp32 */
    }
    float *A, *B, *C;
    uint16_t *A16, *B16;
    CUDA_OK(cudaMalloc((void **)&A, nn * sizeof(float)));
    CUDA_OK(cudaMalloc((void **)&B, nn * sizeof(float)));
    CUDA_OK(cudaMalloc((void **)&C, nn * sizeof(float)));
    CUDA_OK(cudaMalloc((void **)&A16, nn * sizeof(uint16_t)));
    CUDA_OK(cudaMalloc((void **)&B16, nn * sizeof(uint16_t)));
    CUDA_OK(cudaMemcpy(A, host, nn * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(B, host, nn * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(A16, host16, nn * sizeof(uint16_t), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(B16, host16, nn * sizeof(uint16_t), cudaMemcpyHostToDevice));
    cublasHandle_t h;
    CUBLAS_OK(cublasCreate(&h));
    r->gemm_gflops[0] = gemm_peak(h, CUDA_R_16BF, CUBLAS_COMPUTE_32F, PEAK_N, A16, B16, C);
    r->gemm_gflops[1] = gemm_peak(h, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, PEAK_N, A, B, C);
    r->gemm_gflops[2] = gemm_peak(h, CUDA_R_32F, CUBLAS_COMPUTE_32F, PEAK_N, A, B, C);
    CUBLAS_OK(cublasDestroy(h));
    CUDA_OK(cudaFree(A));
    CUDA_OK(cudaFree(B));
    CUDA_OK(cudaFree(C));
    CUDA_OK(cudaFree(A16));
    CUDA_OK(cudaFree(B16));
    free(host);
    free(host16);
}
#endif

/* "12" (fmt of v) when ok, else "n/a" */
static const char *cell(char *buf, size_t cap, int ok, double v, const char *fmt)
{
    if (ok) snprintf(buf, cap, fmt, v);
    else snprintf(buf, cap, "n/a");
    return buf;
}

/* ---- one training row: lawt at each precision, PyTorch in each mode ---- */

typedef struct {
    bench_shape shape;
    measure lawt[NPREC];
    py_result py[NPY];
    char why[160];
} train_row;

static void measure_training(train_row *row, int vocab, int warmup, double seconds,
                             model_backend backend, int threads, const py_setup *ps,
                             int use_pytorch, int py_modes)
{
    const bench_shape *sh = &row->shape;
    char why[128];
    for (int k = 0; k < NPREC; k++) {
        /* the CPU backend has one precision */
        if (backend == BACKEND_CPU && k > 0) continue;
        fprintf(stderr, "bench_gpu: lawt %s batch %d, %s, %.0f s\n", sh->name, sh->batch,
                PRECISION_NAME(k), seconds);
        lawt_job j = {sh, vocab, sh->batch, warmup, seconds, backend, PRECISIONS[k], 0};
        row->lawt[k] = run_measured(job_train, &j, threads, why, sizeof why);
        if (!row->lawt[k].ok)
            snprintf(row->why, sizeof row->why, "lawt %s: %s", PRECISION_NAME(k), why);
    }
    /* On the CPU only eager fp32: bf16 autocast there is emulated (minutes a step) and the
     * image's torch has no compile; the other modes are GPU measurements. */
    for (int k = 0; use_pytorch && k < (backend == BACKEND_CPU ? 1 : py_modes); k++) {
        py_setup p = *ps;
        p.amp = k % 2 ? "bf16" : "none";
        p.compile = k >= 2;
        row->py[k] = pytorch_shape(&p, sh, vocab, 0, sh->batch, sh->T, seconds, why, sizeof why);
    }
}

static double rate(const measure *m) { return m->ok ? m->examples / m->seconds : 0; }
static double py_rate(const py_result *p) { return p->ok ? p->examples_per_s : 0; }

static void print_training_row(text *t, const train_row *row, double peak_tflops, int vocab)
{
    const bench_shape *sh = &row->shape;
    char c[64];
    tprintf(t, "| %s %s, batch %d |", sh->name, sh->label, sh->batch);
    double best = 0, py_best = 0;
    for (int k = 0; k < NPREC; k++) {
        double v = rate(&row->lawt[k]);
        best = v > best ? v : best;
        tprintf(t, " %s |", cell(c, sizeof c, v > 0, v, "%.0f"));
    }
    for (int k = 0; k < NPY; k++) {
        double v = py_rate(&row->py[k]);
        py_best = v > py_best ? v : py_best;
        tprintf(t, " %s |", cell(c, sizeof c, v > 0, v, "%.0f"));
    }
    const double eager = py_rate(&row->py[0]);
    tprintf(t, " %s |", cell(c, sizeof c, best > 0 && eager > 0, eager > 0 ? best / eager : 0,
                             "%.2fx"));
    tprintf(t, " %s |", cell(c, sizeof c, best > 0 && py_best > 0,
                             py_best > 0 ? best / py_best : 0, "%.2fx"));
    const double flops = count_flops(sh, vocab).step / sh->batch; /* per example */
    const int mfu = best > 0 && peak_tflops > 0;
    tprintf(t, " %s |\n", cell(c, sizeof c, mfu, mfu ? 100.0 * best * flops / (peak_tflops * 1e12) : 0,
                               "%.0f%%"));
}

/* ---- decoding ---- */

typedef struct {
    int batch;
    measure lawt[2]; /* fp32, bf16 */
    py_result py[2]; /* eager, eager bf16 */
} decode_row;

static void measure_decoding(decode_row *row, int vocab, double seconds, model_backend backend,
                             int threads, const py_setup *ps, int use_pytorch)
{
    char why[128];
    for (int k = 0; k < 2; k++) {
        if (backend == BACKEND_CPU && k > 0) continue;
        fprintf(stderr, "bench_gpu: lawt decoding batch %d, %s\n", row->batch, k ? "bf16" : "fp32");
        lawt_job j = {&SHAPE_A, vocab, row->batch, 0, seconds, backend,
                      k ? PRECISION_BF16 : PRECISION_FP32, DECODE_MAX_OUT};
        row->lawt[k] = run_measured(job_decode, &j, threads, why, sizeof why);
    }
    for (int k = 0; use_pytorch && k < (backend == BACKEND_CPU ? 1 : 2); k++) {
        py_setup p = *ps;
        p.amp = k ? "bf16" : "none";
        /* PyTorch decodes tgt_len - 1 positions: DECODE_MAX_OUT + 1 makes it as many as lawt */
        row->py[k] = pytorch_shape(&p, &SHAPE_A, vocab, 1, row->batch, DECODE_MAX_OUT + 1,
                                   seconds, why, sizeof why);
    }
}

static void print_decoding_row(text *t, const decode_row *row)
{
    char c[64];
    tprintf(t, "| greedy, (a), batch %d, ms per matrix |", row->batch);
    double best = 0, py_best = 0; /* the smallest times, 0 when none */
    for (int k = 0; k < 2; k++) {
        const measure *m = &row->lawt[k];
        double ms = m->ok ? 1e3 * m->seconds / m->examples : 0;
        if (ms > 0 && (best == 0 || ms < best)) best = ms;
        tprintf(t, " %s |", cell(c, sizeof c, ms > 0, ms, "%.4f"));
    }
    for (int k = 0; k < 2; k++) {
        double v = py_rate(&row->py[k]);
        double ms = v > 0 ? 1e3 / v : 0;
        if (ms > 0 && (py_best == 0 || ms < py_best)) py_best = ms;
        tprintf(t, " %s |", cell(c, sizeof c, ms > 0, ms, "%.4f"));
    }
    tprintf(t, " %s |\n", cell(c, sizeof c, best > 0 && py_best > 0,
                               best > 0 ? py_best / best : 0, "%.2fx"));
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_gpu [options]\n"
            "Training and decoding throughput of lawt's CUDA backend next to PyTorch on the\n"
            "same GPU (eager, --amp bf16, --compile), the bf16/tf32/fp32 matrix peak and the\n"
            "model FLOP utilisation; appends the tables to bench/RESULTS.md.\n"
            "  (a)  eigenvalues 5x5 P1000, 4/1 layers, 512 dims, 8 heads, batch 64, 79/19 tokens\n"
            "  (a') the same at --large-batch\n"
            "  (c)  eigenvalues 8x8 P1000, 12/1 layers, 768 dims, 12 heads, batch 64, 196/28\n"
            "  decoding: config (a), greedy, %d tokens, batch 1 and --decode-batch\n"
            "Exits 77 without a GPU (nothing appended).\n"
            "options:\n"
            "  --seconds S        timed window of every measurement (default 20)\n"
            "  --warmup N         untimed training steps before a window (default 5)\n"
            "  --large-batch N    the batch of (a') (default 1024)\n"
            "  --decode-batch N   the large decoding batch (default 1024)\n"
            "  --only LIST        comma-separated subset of peak,a,large,c,decode (default all)\n"
            "  --device cpu       the CPU backend and PyTorch (eager) on the CPU: checks this\n"
            "                     program on a machine without a GPU (use small batches)\n"
            "  --pytorch PATH     the reference script (default: <repo>/../shared/bench/\n"
            "                     pytorch_reference.py, then ../shared/bench/... from the cwd)\n"
            "  --python PATH      interpreter (default /usr/bin/python3)\n"
            "  --no-pytorch       lawt only\n"
            "  --no-compile       PyTorch eager and eager bf16 only (torch.compile takes\n"
            "                     minutes; the GPU kit's short run leaves it out)\n"
            "  --results PATH     where to append the tables (default %s)\n"
            "  --no-results       print only\n"
            "  --help             this text\n",
            DECODE_MAX_OUT, LAWT_BENCH_RESULTS);
}

int main(int argc, char **argv)
{
    double seconds = 20;
    int warmup = 5, large_batch = 1024, decode_batch = 1024, use_pytorch = 1, py_modes = NPY;
    int do_peak = 1, do_a = 1, do_large = 1, do_c = 1, do_decode = 1;
    model_backend backend = BACKEND_CUDA;
    const char *results = LAWT_BENCH_RESULTS, *script = NULL, *python = "/usr/bin/python3";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-pytorch") == 0) {
            use_pytorch = 0;
        } else if (strcmp(a, "--no-compile") == 0) {
            py_modes = 2; /* PY_NAMES: eager, eager bf16 */
        } else if (strcmp(a, "--no-results") == 0) {
            results = NULL;
        } else if (!v) {
            usage(stderr);
            lawt_die("bench_gpu: unknown option or missing value: '%s'", a);
        } else if (strcmp(a, "--seconds") == 0) {
            seconds = positive_arg("bench_gpu", a, v), i++;
        } else if (strcmp(a, "--warmup") == 0) {
            warmup = atoi(v), i++;
            if (warmup < 0) lawt_die("bench_gpu: --warmup must be >= 0");
        } else if (strcmp(a, "--large-batch") == 0) {
            large_batch = (int)positive_arg("bench_gpu", a, v), i++;
        } else if (strcmp(a, "--decode-batch") == 0) {
            decode_batch = (int)positive_arg("bench_gpu", a, v), i++;
        } else if (strcmp(a, "--only") == 0) {
            parse_only_list("bench_gpu", v, (const char *const[]){"peak", "a", "large", "c", "decode"},
                            (int *[]){&do_peak, &do_a, &do_large, &do_c, &do_decode}, 5);
            i++;
        } else if (strcmp(a, "--device") == 0) {
            int b = enum_from_name(&MODEL_BACKEND_TABLE, v);
            char names[64];
            if (b < 0)
                lawt_die("bench_gpu: --device takes %s (got '%s')",
                         enum_names_join(&MODEL_BACKEND_TABLE, " or ", names, sizeof names), v);
            backend = (model_backend)b;
            i++;
        } else if (strcmp(a, "--pytorch") == 0) {
            script = v, i++;
        } else if (strcmp(a, "--python") == 0) {
            python = v, i++;
        } else if (strcmp(a, "--results") == 0) {
            results = v, i++;
        } else {
            usage(stderr);
            lawt_die("bench_gpu: unknown option '%s'", a);
        }
    }
    const int gpu = backend == BACKEND_CUDA;
    /* The GPU needs one host thread; the CPU check uses every core, as bench_train does. */
    const int threads = gpu ? 1 : (int)sysconf(_SC_NPROCESSORS_ONLN);
    char why[160];
    if (gpu) {
        measure probe = run_measured(job_probe, NULL, 1, why, sizeof why);
        if (!probe.ok || !probe.params) {
            fprintf(stderr, "bench_gpu: %s: nothing measured, nothing appended\n",
                    !model_cuda_built() ? "this build has no CUDA backend"
                    : probe.ok          ? "no CUDA device is visible"
                                        : why);
            return 77;
        }
    }

    lawt_encoding enc;
    if (encoding_from_name("P1000", &enc) != 0) lawt_die("bench_gpu: no P1000 encoding");
    lawt_vocab vocab;
    vocab_init(&vocab, &enc);
    const int V = vocab.size;
    vocab_free(&vocab);

    char pynote[512] = "";
    if (use_pytorch) script = find_pytorch_script(script, python, pynote, sizeof pynote);
    else snprintf(pynote, sizeof pynote, "PyTorch skipped (--no-pytorch).");
    if (pynote[0]) {
        use_pytorch = 0;
        fprintf(stderr, "bench_gpu: %s\n", pynote);
    }
    const py_setup ps = {python, script, gpu ? 0 : threads, warmup, gpu ? "cuda" : "cpu", "none",
                         0};

    measure peak = {0};
    if (gpu && do_peak) {
#ifdef LAWT_BENCH_HAVE_CUDA
        fprintf(stderr, "bench_gpu: matrix peak, %d^3\n", PEAK_N);
        peak = run_measured(job_peak, NULL, 1, why, sizeof why);
        if (!peak.ok) fprintf(stderr, "bench_gpu: peak: %s\n", why);
#endif
    }
    train_row rows[3];
    int nrows = 0;
    const bench_shape *bases[3] = {&SHAPE_A, &SHAPE_A, &SHAPE_C};
    const int wanted[3] = {do_a, do_large, do_c};
    for (int k = 0; k < 3; k++) {
        if (!wanted[k]) continue;
        train_row *row = &rows[nrows++];
        memset(row, 0, sizeof *row);
        row->shape = *bases[k];
        if (k == 1) {
            row->shape.batch = large_batch;
            row->shape.name = "(a')";
        }
        measure_training(row, V, warmup, seconds, backend, threads, &ps, use_pytorch, py_modes);
    }
    decode_row drows[2] = {{.batch = 1}, {.batch = decode_batch}};
    if (do_decode)
        for (int k = 0; k < 2; k++)
            measure_decoding(&drows[k], V, seconds, backend, threads, &ps, use_pytorch);

    /* ---- tables ---- */
    const double peak_bf16 = peak.ok ? peak.gemm_gflops[0] : 0;
    text t = {0}, n = {0}, h = {0};
    if (nrows) {
        tprintf(&t, "| training, examples/s | lawt fp32 | lawt tf32 | lawt bf16 | PyTorch eager "
                    "| PyTorch eager bf16 | PyTorch compile | PyTorch compile bf16 | lawt best / "
                    "PyTorch eager | lawt best / PyTorch best | lawt MFU (bf16 peak) |\n"
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int k = 0; k < nrows; k++) print_training_row(&t, &rows[k], peak_bf16, V);
        tprintf(&t, "\n");
    }
    if (do_decode) {
        tprintf(&t, "| decoding | lawt fp32 | lawt bf16 | PyTorch eager | PyTorch eager bf16 | "
                    "PyTorch best / lawt best |\n|---|---:|---:|---:|---:|---:|\n");
        for (int k = 0; k < 2; k++) print_decoding_row(&t, &drows[k]);
    }
    if (peak.ok)
        tprintf(&n, "- Matrix peak (cuBLAS, %d^3, best of 10): bf16 %.1f, tf32 %.1f, fp32 %.1f "
                    "TFLOP/s. MFU = lawt's best training FLOP/s (3 x forward, bench/harness.h) "
                    "over the bf16 peak.\n",
                PEAK_N, peak.gemm_gflops[0], peak.gemm_gflops[1], peak.gemm_gflops[2]);
    tprintf(&n, "- Targets (issue 6): (a) lawt best >= 3x PyTorch eager; (a') >= 1.5x PyTorch's "
                "best and MFU >= 50%%; decoding at batch 1024 <= 0.05 ms per matrix.\n");
    for (int k = 0; k < nrows; k++) {
        const train_row *row = &rows[k];
        for (int p = 0; p < NPREC; p++) {
            const measure *m = &row->lawt[p];
            if (!m->ok) continue;
            tprintf(&n, "- lawt %s batch %d %s: %ld steps in %.1f s; per step forward %.2f ms, "
                        "backward %.2f ms, grad norm + Adam %.2f ms; loss %.3f -> %.3f.\n",
                    row->shape.name, row->shape.batch, PRECISION_NAME(p), m->steps, m->seconds,
                    1e3 * m->fwd_s / m->steps, 1e3 * m->bwd_s / m->steps,
                    1e3 * m->opt_s / m->steps, m->loss_first, m->loss_last);
        }
        for (int p = 0; p < (gpu ? NPY : 1); p++)
            if (!row->py[p].ok && use_pytorch)
                tprintf(&n, "- PyTorch %s batch %d %s: failed.\n", row->shape.name,
                        row->shape.batch, PY_NAMES[p]);
        if (row->why[0]) tprintf(&n, "- %s batch %d: %s.\n", row->shape.name, row->shape.batch,
                                 row->why);
    }
    if (pynote[0]) tprintf(&n, "- %s\n", pynote);
    tprintf(&n, "- Data: random tokens of fixed lengths, fresh each step; vocabulary %d (P1000) "
                "in and out. Decoding: random weights with the EOS output bias at -1e4, so that "
                "every example decodes exactly %d tokens; lawt keeps a KV cache, PyTorch "
                "recomputes the prefix.\n",
            V, DECODE_MAX_OUT);

    run_stamp st;
    run_stamp_now(&st);
    char gpu_name[256];
    if (gpu)
        first_line_of("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader "
                      "2>/dev/null",
                      gpu_name, sizeof gpu_name);
    else
        cpu_model_name(gpu_name, sizeof gpu_name);
    tprintf(&h, "## bench_gpu, %s\n\nmachine `%s`, %s %s; commit %s%s; windows %.0f s after %d "
                "warm-up steps.\n\n",
            st.date, st.host, gpu ? "GPU" : "CPU (--device cpu: a check of the harness, not a GPU "
                                      "measurement)",
            gpu_name, st.commit, st.dirty, seconds, warmup);
    printf("\n%s%s\n%s", h.buf, t.buf ? t.buf : "", n.buf);
    if (results) append_results(results, h.buf, t.buf ? t.buf : "", n.buf);
    free(h.buf);
    free(t.buf);
    free(n.buf);
    return 0;
}
