/* model_fixtures.h: what the model tests share (test_model*.c, test_universal.c and the CUDA
 * parity tests in tests/gpu): the random numbers, batches that own their arrays, the model
 * configurations, finite-difference gradient checks, the copy task that gives decoders an
 * answer to find, and the checks that decoders agree. Checks count in the test program's tally
 * (tests/test.h). Each test program seeds the generator with its own seed (fixture_seed first
 * thing in main), so that it draws what it drew when it had its own copy of the generator:
 * its numbers stay comparable with earlier runs. */
#ifndef LAWT_TESTS_MODEL_FIXTURES_H
#define LAWT_TESTS_MODEL_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* ---- random numbers: one linear congruential generator per program ---- */

void fixture_seed(uint64_t seed);
double urand(void);                     /* uniform on [0, 1) */
int irand(int n);                       /* uniform on {0, ..., n - 1} */
float nrand(void);                      /* N(0, 1), Box-Muller */
float *randv(size_t n, float scale);    /* n draws of scale * N(0, 1), malloc'ed */

double dot_d(const float *a, const float *b, long n); /* in double */

/* ||a - b||_2 / ||b||_2 (||a||_2 when b is zero); NaN anywhere gives NaN, which fails every
 * comparison */
double rel_err(const float *a, const float *b, size_t n);

/* ---- a layer's backward against central differences ---- */

/* The loss of the layer under test, recomputing its forward. */
typedef double (*loss_fn)(void *ctx);

/* Compares the analytic gradient g (n) of x (n) with central differences of loss(ctx): every
 * element up to 512 of them, else a spread of 512 elements. Normwise |g_fd - g| <= tol |g|,
 * and every element within 1e-4 + 10 tol max|g|. */
void check_grad(const char *what, loss_fn loss, void *ctx, float *x, const float *g, long n,
                float eps, double tol);

/* ---- batches ---- */

/* A batch that owns its arrays: rows framed EOS, content, EOS, then padding; content tokens
 * avoid PAD and EOS. */
typedef struct {
    model_batch b;
    int *src, *src_len, *tgt, *tgt_len;
} owned_batch;

/* Rows of the given lengths. */
owned_batch batch_make(int B, int S, int T, const int *src_len, const int *tgt_len,
                       int vocab_in, int vocab_out);
/* Rows of random lengths, but row 0's source fills S and row 1's target fills T. */
owned_batch batch_make_random(int B, int S, int T, int vocab_in, int vocab_out);
void batch_free(owned_batch *o);

/* ---- configurations ---- */

model_config transformer_config(int enc_layers, int dec_layers, int enc_dim, int dec_dim,
                                int enc_heads, int dec_heads, int vocab_in, int vocab_out,
                                int max_len);
/* An LSTM or GRU encoder-decoder: layers x hidden units a side, embeddings enc_dim, dec_dim. */
model_config recurrent_config(int arch, int layers, int hidden, int enc_dim, int dec_dim,
                              int vocab_in, int vocab_out, int max_len);
/* shape's widths, heads and vocabularies as a universal transformer: one shared layer a side,
 * looped enc_loops and dec_loops times (0: a plain side), halting threshold 0.99. */
model_config universal_config(model_config shape, int enc_loops, int dec_loops, int loop_mode,
                              double ponder_cost);

/* ---- parameters and the whole model's gradient ---- */

size_t tensor_size(const model_tensor *t);
int find_tensor(const model_tensor *t, int n, const char *name); /* -1 when absent */
model_tensor *tensors_of(const model_config *c, int *n);         /* malloc'ed, n tensors */

/* Moves the parameters to a generic point: init + N(0, sigma^2) everywhere (layer norms and
 * biases included), so that no gradient is trivially zero and outputs vary. */
void perturb_params(model *m, float sigma);

/* Every ReLU unit of p away from its kink (a finite difference across a kink measures
 * nothing): half of the hidden units always on (bias +4), half always off (bias -4), so that
 * both branches of relu_backward are exercised and the loss is smooth around p. */
void relu_away_from_kinks(float *p, const model_tensor *t, int nt);

double loss_of(model *m, const model_batch *b); /* the summed loss of one forward */

/* The whole-model gradient tests' case: c's model (batches of up to 4) initialised with seed
 * 7 and moved by perturb_params(0.3), its parameters p, gradient g and layout t (nt tensors),
 * and a batch of 3 rows (sources of 7, 4, 3 tokens, targets of 6, 3, 4), made by
 * gradient_case_backward after the test has placed p, so that a test's draws keep their order. */
typedef struct {
    model *m;
    size_t np;
    float *p, *g;
    model_tensor *t;
    int nt;
    owned_batch ob;
} gradient_case;

gradient_case gradient_case_make(const model_config *c);
/* Loads p into the model, makes the batch, and the gradient of the summed loss into g: 10
 * counted tokens, a finite positive loss. */
void gradient_case_backward(gradient_case *gc);
void gradient_case_free(gradient_case *gc);

typedef struct {
    double directional, coordinate; /* the worst relative errors */
} gradient_errors;

/* The gradient g against central differences (eps 1e-2) of the loss at p (loaded back into the
 * model on return), tensor by tensor: along a random unit direction inside the tensor, where
 * the gradient must not be zero, then at `coordinates` random single coordinates; each within
 * 2e-2 relative. */
gradient_errors check_model_gradient(gradient_case *gc, int coordinates, const char *what);

/* ---- a copy task, to give the decoders an answer that depends on the source ---- */

/* Batches of 16 rows of len positions, content of 1 to max_content tokens copied as
 * y_i = 2 + x_i mod (vocab_out - 2), Adam at lr, gradients clipped to norm 5. */
typedef struct {
    int len, max_content;
    float lr;
} copy_task;

/* Trains m for steps steps; returns the last per-token loss, and the first in first_loss
 * (unless NULL). */
double train_copy(model *m, const copy_task *task, int steps, double *first_loss);

/* ---- decoding ---- */

/* The mean per-token log-likelihood of the answer seq (n tokens) to ob's source b, ended by
 * EOS when it is shorter than max_out (what beam search ranks). */
double answer_score(model *m, const owned_batch *ob, int b, const int *seq, int n, int max_out);

typedef struct {
    int early, full, tokens; /* rows ended by EOS, rows of max_out tokens, tokens in all */
} decode_counts;

/* Greedy decoding with the cache, without it (the whole-prefix oracle) and a beam of 1 on
 * ob's sources must give the same tokens. Counts the greedy outputs. */
decode_counts check_greedy_decoders_agree(model *m, const owned_batch *ob, int max_out,
                                          const char *what);

/* Each greedy token (out, len: greedy decoding of ob's sources, rows of max_out) is the argmax
 * of the teacher-forced forward. */
void check_greedy_is_argmax(model *m, const owned_batch *ob, const int *out, const int *len,
                            int max_out, const char *what);

/* A beam of width on ob's sources: valid lengths, and its answers score at least as well as
 * greedy's (out, len, rows of max_out). */
void check_beam_not_worse(model *m, const owned_batch *ob, const int *out, const int *len,
                          int width, int max_out, const char *what);

/* ---- the CUDA backend where it cannot run ---- */

/* model_create(c, BACKEND_CUDA) in a child process: 1 when the child exited non-zero (refused),
 * 0 when it did not or could not be started; what it wrote to stderr in msg (cap bytes). */
int cuda_refused(const model_config *c, char *msg, size_t cap);

#endif
