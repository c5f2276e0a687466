/* model_fixtures.c: the model tests' shared helpers (model_fixtures.h). */
#include "tests/model_fixtures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "encoding/encoding.h"
#include "tests/test.h"

/* ---- random numbers ---- */

static uint64_t rng_state;

void fixture_seed(uint64_t seed) { rng_state = seed; }

double urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

int irand(int n) { return (int)(urand() * n); }

float nrand(void)
{
    double u1 = urand() + 1e-12, u2 = urand();
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

float *randv(size_t n, float scale)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = scale * nrand();
    return x;
}

double dot_d(const float *a, const float *b, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

/* ---- a layer's backward against central differences ---- */

/* Past this many elements, every stride-th from a varying offset, so that every chunk a pool
 * splits the work into is hit. */
#define FD_MAX_CHECKED 512

void check_grad(const char *what, loss_fn loss, void *ctx, float *x, const float *g, long n,
                float eps, double tol)
{
    double err2 = 0, ref2 = 0, gmax = 0, worst = 0, worst_fd = 0;
    long worst_i = -1, stride = n > FD_MAX_CHECKED ? n / FD_MAX_CHECKED : 1, checked = 0;
    for (long j = 0; j < n && checked < FD_MAX_CHECKED; j += stride, checked++) {
        long i = stride > 1 ? j + (checked * 7919) % stride : j;
        float save = x[i];
        x[i] = save + eps;
        double lp = loss(ctx);
        x[i] = save - eps;
        double lm = loss(ctx);
        x[i] = save;
        double fd = (lp - lm) / (2.0 * eps), e = fabs(fd - g[i]);
        err2 += e * e;
        ref2 += (double)g[i] * g[i];
        if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
        if (e > worst) {
            worst = e;
            worst_i = i;
            worst_fd = fd;
        }
    }
    double rel = sqrt(err2) / (sqrt(ref2) + 1e-30);
    CHECK_MSG(ref2 > 0, "%s: zero gradient (nothing tested)", what);
    CHECK_MSG(rel <= tol, "%s: normwise relative error %.3g > %.3g", what, rel, tol);
    CHECK_MSG(worst <= 1e-4 + 10 * tol * gmax,
              "%s: element %ld: finite difference %.6g, backward %.6g", what, worst_i, worst_fd,
              worst_i >= 0 ? g[worst_i] : 0.0);
    printf("  %-34s n=%-6ld checked %-4ld rel err %.2e\n", what, n, checked, rel);
}

/* ---- batches ---- */

/* EOS, content drawn from the vocabulary past PAD and EOS, EOS at len - 1, then padding. */
static void frame_row(int *row, int L, int len, int vocab)
{
    for (int t = 0; t < L; t++)
        row[t] = t == 0 || t == len - 1 ? TOK_EOS : t < len ? 2 + irand(vocab - 2) : TOK_PAD;
}

static owned_batch batch_alloc(int B, int S, int T)
{
    owned_batch o;
    o.src = malloc(sizeof(int) * B * S);
    o.tgt = malloc(sizeof(int) * B * T);
    o.src_len = malloc(sizeof(int) * B);
    o.tgt_len = malloc(sizeof(int) * B);
    o.b = (model_batch){B, S, T, o.src, o.src_len, o.tgt, o.tgt_len};
    return o;
}

owned_batch batch_make(int B, int S, int T, const int *src_len, const int *tgt_len,
                       int vocab_in, int vocab_out)
{
    owned_batch o = batch_alloc(B, S, T);
    for (int b = 0; b < B; b++) {
        o.src_len[b] = src_len[b];
        o.tgt_len[b] = tgt_len[b];
        frame_row(o.src + b * S, S, src_len[b], vocab_in);
        frame_row(o.tgt + b * T, T, tgt_len[b], vocab_out);
    }
    return o;
}

owned_batch batch_make_random(int B, int S, int T, int vocab_in, int vocab_out)
{
    owned_batch o = batch_alloc(B, S, T);
    for (int b = 0; b < B; b++) {
        o.src_len[b] = b == 0 ? S : 2 + irand(S - 1);
        o.tgt_len[b] = b == 1 ? T : 2 + irand(T - 1);
        frame_row(o.src + b * S, S, o.src_len[b], vocab_in);
        frame_row(o.tgt + b * T, T, o.tgt_len[b], vocab_out);
    }
    return o;
}

void batch_free(owned_batch *o)
{
    free(o->src);
    free(o->tgt);
    free(o->src_len);
    free(o->tgt_len);
}

/* ---- configurations ---- */

model_config transformer_config(int enc_layers, int dec_layers, int enc_dim, int dec_dim,
                                int enc_heads, int dec_heads, int vocab_in, int vocab_out,
                                int max_len)
{
    return (model_config){.enc_layers = enc_layers, .dec_layers = dec_layers,
                          .enc_dim = enc_dim, .dec_dim = dec_dim, .enc_heads = enc_heads,
                          .dec_heads = dec_heads, .vocab_in = vocab_in, .vocab_out = vocab_out,
                          .max_len = max_len};
}

/* The heads are not used by a recurrent model: 1, which divides every width. */
model_config recurrent_config(int arch, int layers, int hidden, int enc_dim, int dec_dim,
                              int vocab_in, int vocab_out, int max_len)
{
    model_config c = transformer_config(1, 1, enc_dim, dec_dim, 1, 1, vocab_in, vocab_out,
                                        max_len);
    c.arch = arch;
    c.rnn_layers = layers;
    c.rnn_hidden = hidden;
    return c;
}

model_config universal_config(model_config shape, int enc_loops, int dec_loops, int loop_mode,
                              double ponder_cost)
{
    model_config c = shape;
    c.arch = ARCH_UNIVERSAL;
    c.enc_layers = c.dec_layers = 1;
    c.enc_loops = enc_loops;
    c.dec_loops = dec_loops;
    c.loop_mode = loop_mode;
    c.act_threshold = 0.99;
    c.ponder_cost = ponder_cost;
    return c;
}

/* ---- parameters and the whole model's gradient ---- */

size_t tensor_size(const model_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

int find_tensor(const model_tensor *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return i;
    return -1;
}

model_tensor *tensors_of(const model_config *c, int *n)
{
    *n = model_tensors(c, NULL, 0);
    model_tensor *t = malloc(sizeof *t * (size_t)*n);
    model_tensors(c, t, *n);
    return t;
}

void perturb_params(model *m, float sigma)
{
    size_t n = model_num_params(m);
    float *p = malloc(n * sizeof(float));
    model_copy_out(m, BUF_PARAMS, p);
    for (size_t i = 0; i < n; i++) p[i] += sigma * nrand();
    model_copy_in(m, BUF_PARAMS, p);
    free(p);
}

void relu_away_from_kinks(float *p, const model_tensor *t, int nt)
{
    for (int i = 0; i < nt; i++)
        if (strstr(t[i].name, "ffn.fc1.bias"))
            for (int j = 0; j < t[i].shape[0]; j++) p[t[i].offset + j] = j % 2 ? -4.0f : 4.0f;
}

double loss_of(model *m, const model_batch *b)
{
    long nt;
    return model_forward(m, b, &nt);
}

gradient_case gradient_case_make(const model_config *c)
{
    gradient_case gc = {.m = model_create(c, BACKEND_CPU, 4)};
    model_init_params(gc.m, 7);
    perturb_params(gc.m, 0.3f);
    gc.np = model_num_params(gc.m);
    gc.p = malloc(gc.np * sizeof(float));
    gc.g = malloc(gc.np * sizeof(float));
    model_copy_out(gc.m, BUF_PARAMS, gc.p);
    gc.t = tensors_of(c, &gc.nt);
    return gc;
}

void gradient_case_backward(gradient_case *gc)
{
    const model_config *c = model_get_config(gc->m);
    const int src_len[3] = {7, 4, 3}, tgt_len[3] = {6, 3, 4};
    model_copy_in(gc->m, BUF_PARAMS, gc->p);
    gc->ob = batch_make(3, 7, 6, src_len, tgt_len, c->vocab_in, c->vocab_out);
    model_zero_grad(gc->m);
    long nt = 0;
    double l0 = model_forward(gc->m, &gc->ob.b, &nt);
    CHECK(nt == (6 - 1) + (3 - 1) + (4 - 1));
    CHECK(isfinite(l0) && l0 > 0);
    model_backward(gc->m, &gc->ob.b, 1.0f);
    model_copy_out(gc->m, BUF_GRADS, gc->g);
}

void gradient_case_free(gradient_case *gc)
{
    free(gc->p);
    free(gc->g);
    free(gc->t);
    batch_free(&gc->ob);
    model_free(gc->m);
}

gradient_errors check_model_gradient(gradient_case *gc, int coordinates, const char *what)
{
    model *m = gc->m;
    const model_batch *b = &gc->ob.b;
    float *p = gc->p;
    const float *g = gc->g;
    const model_tensor *t = gc->t;
    const int nt = gc->nt;
    const double eps = 1e-2;
    gradient_errors worst = {0, 0};
    float *u = malloc(gc->np * sizeof(float));
    for (int i = 0; i < nt; i++) {
        size_t n = tensor_size(&t[i]), off = t[i].offset;
        /* a random unit direction inside the tensor */
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
        double lp = loss_of(m, b);
        for (size_t j = 0; j < n; j++) p[off + j] -= (float)(2 * eps * u[j]);
        model_copy_in(m, BUF_PARAMS, p);
        double lm = loss_of(m, b);
        for (size_t j = 0; j < n; j++) p[off + j] += (float)(eps * u[j]);
        double fd = (lp - lm) / (2 * eps);
        double err = fabs(fd - an) / (fabs(an) + 1e-2);
        if (err > worst.directional) worst.directional = err;
        CHECK_MSG(err < 2e-2, "%s: %s: directional derivative: finite difference %.6g, "
                  "backward %.6g", what, t[i].name, fd, an);
        CHECK_MSG(an != 0.0, "%s: %s: zero gradient", what, t[i].name);
        for (int k = 0; k < coordinates; k++) {
            const size_t j = off + (size_t)irand((int)n);
            const float save = p[j];
            p[j] = save + (float)eps;
            model_copy_in(m, BUF_PARAMS, p);
            lp = loss_of(m, b);
            p[j] = save - (float)eps;
            model_copy_in(m, BUF_PARAMS, p);
            lm = loss_of(m, b);
            p[j] = save;
            fd = (lp - lm) / (2 * eps);
            err = fabs(fd - g[j]) / (fabs(g[j]) + 1e-2);
            if (err > worst.coordinate) worst.coordinate = err;
            CHECK_MSG(err < 2e-2, "%s: %s[%zu]: finite difference %.6g, backward %.6g", what,
                      t[i].name, j - off, fd, g[j]);
        }
    }
    model_copy_in(m, BUF_PARAMS, p);
    free(u);
    return worst;
}

/* ---- a copy task ---- */

double train_copy(model *m, const copy_task *task, int steps, double *first_loss)
{
    const model_config *c = model_get_config(m);
    enum { B = 16 };
    const int S = task->len, T = task->len;
    int *src = malloc(sizeof(int) * B * S), *tgt = malloc(sizeof(int) * B * T), sl[B], tl[B];
    adam_hparams h = {task->lr, 0.9f, 0.98f, 1e-8f};
    double last = 0;
    for (int step = 1; step <= steps; step++) {
        for (int b = 0; b < B; b++) {
            int n = 1 + irand(task->max_content);
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
        if (step == 1 && first_loss) *first_loss = last;
        model_backward(m, &bt, 1.0f / (float)nt);
        double norm = model_grad_norm(m);
        model_adam_step(m, &h, step, norm > 5.0 ? (float)(5.0 / norm) : 1.0f);
    }
    free(src);
    free(tgt);
    return last;
}

/* ---- decoding ---- */

double answer_score(model *m, const owned_batch *ob, int b, const int *seq, int n, int max_out)
{
    const int S = ob->b.S, closed = n < max_out;
    int *tgt = malloc(sizeof(int) * (size_t)(n + 2));
    tgt[0] = TOK_EOS;
    for (int i = 0; i < n; i++) tgt[1 + i] = seq[i];
    int T = n + 1;
    if (closed) tgt[T++] = TOK_EOS;
    model_batch one = {1, S, T, ob->src + b * S, ob->src_len + b, tgt, &T};
    long nt;
    double score = -model_forward(m, &one, &nt) / (n + closed);
    free(tgt);
    return score;
}

decode_counts check_greedy_decoders_agree(model *m, const owned_batch *ob, int max_out,
                                          const char *what)
{
    const int B = ob->b.B, S = ob->b.S;
    int *o1 = malloc(sizeof(int) * B * max_out), *o2 = malloc(sizeof(int) * B * max_out);
    int *o3 = malloc(sizeof(int) * B * max_out);
    int *l1 = malloc(sizeof(int) * B), *l2 = malloc(sizeof(int) * B), *l3 = malloc(sizeof(int) * B);
    model_greedy_decode(m, ob->src, ob->src_len, B, S, max_out, o1, l1);
    model_greedy_decode_nocache(m, ob->src, ob->src_len, B, S, max_out, o2, l2);
    model_beam_decode(m, ob->src, ob->src_len, B, S, 1, max_out, o3, l3);
    int same2 = 1, same3 = 1;
    decode_counts counts = {0, 0, 0};
    for (int b = 0; b < B; b++) {
        same2 &= l1[b] == l2[b];
        same3 &= l1[b] == l3[b];
        for (int i = 0; i < l1[b]; i++) {
            if (i < l2[b]) same2 &= o1[b * max_out + i] == o2[b * max_out + i];
            if (i < l3[b]) same3 &= o1[b * max_out + i] == o3[b * max_out + i];
        }
        counts.early += l1[b] < max_out;
        counts.full += l1[b] == max_out;
        counts.tokens += l1[b];
    }
    CHECK_MSG(same2, "%s, max_out %d: greedy decoding with the cache differs from the no-cache "
              "(whole-prefix) oracle", what, max_out);
    CHECK_MSG(same3, "%s, max_out %d: beam search of width 1 differs from greedy decoding", what,
              max_out);
    free(o1), free(o2), free(o3), free(l1), free(l2), free(l3);
    return counts;
}

void check_greedy_is_argmax(model *m, const owned_batch *ob, const int *out, const int *len,
                            int max_out, const char *what)
{
    const int S = ob->b.S, V = model_get_config(m)->vocab_out;
    int *tgt = malloc(sizeof(int) * (size_t)(max_out + 1));
    float *lg = malloc(sizeof(float) * (size_t)max_out * V);
    int agree = 1;
    for (int b = 0; b < ob->b.B; b++) {
        int T = len[b] + 1;
        tgt[0] = TOK_EOS;
        for (int i = 0; i < len[b]; i++) tgt[1 + i] = out[b * max_out + i];
        if (T < 2) continue;
        model_batch one = {1, S, T, ob->src + b * S, ob->src_len + b, tgt, &T};
        long n1;
        model_forward(m, &one, &n1);
        model_copy_logits(m, lg);
        for (int i = 0; i + 1 < T; i++) {
            int best = 0;
            for (int v = 1; v < V; v++)
                if (lg[i * V + v] > lg[i * V + best]) best = v;
            agree &= best == tgt[i + 1];
        }
    }
    CHECK_MSG(agree, "%s: greedy tokens must be the argmax of the teacher-forced forward", what);
    free(tgt);
    free(lg);
}

void check_beam_not_worse(model *m, const owned_batch *ob, const int *out, const int *len,
                          int width, int max_out, const char *what)
{
    const int B = ob->b.B;
    int *beam_out = malloc(sizeof(int) * B * max_out), *beam_len = malloc(sizeof(int) * B);
    model_beam_decode(m, ob->src, ob->src_len, B, ob->b.S, width, max_out, beam_out, beam_len);
    int better = 1;
    for (int b = 0; b < B; b++) {
        CHECK(beam_len[b] >= 0 && beam_len[b] <= max_out);
        double greedy = answer_score(m, ob, b, out + b * max_out, len[b], max_out);
        double beam = answer_score(m, ob, b, beam_out + b * max_out, beam_len[b], max_out);
        better &= beam >= greedy - 1e-5;
    }
    CHECK_MSG(better, "%s: beam %d found a worse answer than greedy", what, width);
    free(beam_out);
    free(beam_len);
}

/* ---- the CUDA backend where it cannot run ---- */

int cuda_refused(const model_config *c, char *msg, size_t cap)
{
    int fds[2];
    msg[0] = '\0';
    if (pipe(fds)) return 0;
    fflush(stdout); /* else the child's exit would print the parent's buffered lines again */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        model_create(c, BACKEND_CUDA, 1);
        _exit(0); /* not reached when it refuses */
    }
    close(fds[1]);
    ssize_t got, total = 0;
    while ((got = read(fds[0], msg + total, cap - 1 - (size_t)total)) > 0) total += got;
    msg[total] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) != 0;
}
