/* model_timing.c: a quick throughput probe of the CPU model for the two benchmark
 * shapes (bench/ holds the real benchmark). Not built by default:
 *   cmake --build BUILD --target model_timing && BUILD/model/model_timing a 20 2
 * Arguments: shape (a: eigenvalues 5x5, 4/1 layers, 512 dims, 8 heads, 79/19 tokens;
 * b: transposition 3x3, 1/1 layers, 64 dims, 4 heads, 31/31 tokens), seconds, threads, and
 * "decode" to time greedy decoding instead of training steps. Batch 64, vocabulary 1106 on both
 * sides (as the PyTorch reference's default). A training step is what the trainer does:
 * zero_grad, forward, backward, grad_norm, adam_step. Prints examples/s of wall time and of
 * process CPU time (the latter is robust to a busy machine). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "encoding/encoding.h"
#include "model/model.h"
#include "model/parallel.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *shape = argc > 1 ? argv[1] : "b";
    double secs = argc > 2 ? atof(argv[2]) : 10.0;
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    int decode = argc > 4 && !strcmp(argv[4], "decode");
    openblas_set_num_threads(threads); /* the model's pool sizes itself from this */
    model_config c;
    int S, T;
    const int B = 64;
    if (!strcmp(shape, "a")) {
        c = (model_config){4, 1, 512, 512, 8, 8, 1106, 1106, 79, 0, 0, 0};
        S = 79;
        T = 19;
    } else {
        c = (model_config){1, 1, 64, 64, 4, 4, 1106, 1106, 31, 0, 0, 0};
        S = 31;
        T = 31;
    }
    model *m = model_create(&c, BACKEND_CPU, B);
    model_init_params(m, 1);
    int *src = malloc(sizeof(int) * B * S), *tgt = malloc(sizeof(int) * B * T);
    int *sl = malloc(sizeof(int) * B), *tl = malloc(sizeof(int) * B);
    srand(1);
    for (int i = 0; i < B * S; i++) src[i] = 2 + rand() % (c.vocab_in - 2);
    for (int i = 0; i < B * T; i++) tgt[i] = 2 + rand() % (c.vocab_out - 2);
    for (int b = 0; b < B; b++) {
        sl[b] = S;
        tl[b] = T;
        src[b * S] = src[b * S + S - 1] = tgt[b * T] = tgt[b * T + T - 1] = TOK_EOS;
    }
    printf("shape %s: %zu parameters, %d pool threads\n", shape, model_num_params(m),
           par_threads());
    if (decode) {
        /* never EOS, so that every output has full length */
        int nt = model_tensors(&c, NULL, 0);
        model_tensor *t = malloc(sizeof *t * (size_t)nt);
        model_tensors(&c, t, nt);
        float *p = malloc(sizeof(float) * model_num_params(m));
        model_copy_out(m, BUF_PARAMS, p);
        for (int i = 0; i < nt; i++)
            if (!strcmp(t[i].name, "dec.out_bias")) p[t[i].offset + TOK_EOS] = -1e4f;
        model_copy_in(m, BUF_PARAMS, p);
        int max_out = T - 2, *out = malloc(sizeof(int) * B * max_out), *ol = malloc(sizeof(int) * B);
        model_greedy_decode(m, src, sl, B, S, max_out, out, ol); /* warm-up */
        double w0 = lawt_now(), c0 = cpu_now();
        int n = 0;
        do {
            model_greedy_decode(m, src, sl, B, S, max_out, out, ol);
            n++;
        } while (lawt_now() - w0 < secs);
        double dw = lawt_now() - w0, dc = cpu_now() - c0;
        printf("greedy decode, %d tokens: %.1f matrices/s (wall), %.1f per CPU-second\n", ol[0],
               n * B / dw, n * B / dc);
        free(t), free(p), free(out), free(ol);
    } else {
        model_batch bt = {B, S, T, src, sl, tgt, tl};
        adam_hparams h = {1e-4f, 0.9f, 0.999f, 1e-8f};
        double w0 = 0, c0 = 0, tf = 0, tb = 0;
        int steps = 0;
        for (int it = 0;; it++) {
            if (it == 2) { /* two warm-up steps */
                w0 = lawt_now();
                c0 = cpu_now();
                tf = tb = 0;
                steps = 0;
            }
            double t0 = lawt_now();
            model_zero_grad(m);
            long ntok;
            double loss = model_forward(m, &bt, &ntok);
            double t1 = lawt_now();
            model_backward(m, &bt, 1.0f / (float)ntok);
            double t2 = lawt_now();
            double norm = model_grad_norm(m);
            model_adam_step(m, &h, it + 1, norm > 5.0 ? (float)(5.0 / norm) : 1.0f);
            tf += t1 - t0;
            tb += t2 - t1;
            steps++;
            if (it == 0) printf("first loss per token %.4f\n", loss / (double)ntok);
            if (it >= 2 && lawt_now() - w0 > secs) break;
        }
        double dw = lawt_now() - w0, dc = cpu_now() - c0;
        printf("training: %d steps in %.2f s: %.1f examples/s (wall), %.1f per CPU-second; "
               "forward %.1f ms, backward %.1f ms per step\n",
               steps, dw, steps * B / dw, steps * B / dc, tf / steps * 1e3, tb / steps * 1e3);
    }
    free(src), free(tgt), free(sl), free(tl);
    model_free(m);
    return 0;
}
