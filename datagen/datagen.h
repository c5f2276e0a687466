/* datagen.h: random linear-algebra problems (paper section 2, Appendix H).
 *
 * Example number i of a stream is a pure function of (seed, stream, i): it is drawn from a
 * Philox4x32 counter-based generator (Random123) keyed by the 64-bit seed, with (i, stream,
 * redraw attempt, block) in the 128-bit counter, so any number of producers, in any order,
 * make bit-identical examples, and training, test and OOD streams never overlap (distinct
 * counters under one key). Redraw rules, sign conventions and the inversion cut: datagen.c.
 *
 * Datagen sets OpenBLAS to one thread for the whole process on first use: its threaded
 * level-2 BLAS makes the small LAPACK calls slower and their last bits depend on the thread
 * count. Keep it at one thread (OPENBLAS_NUM_THREADS=1) for bit-identical examples. */
#ifndef LAWT_DATAGEN_H
#define LAWT_DATAGEN_H

#include "common/common.h"
#include "encoding/encoding.h"

typedef enum {
    STREAM_TRAIN = 0,
    STREAM_TEST = 1, /* the periodic evaluation set */
    STREAM_OOD = 2,  /* out-of-distribution test sets */
} datagen_stream;

/* Law of the input coefficients. All laws have the standard deviation of uniform [-A, A],
 * A / sqrt(3), so that eigenvalue spreads match (Appendix H). */
#define COEF_LAWS(X)                                                                        \
    X(COEF_UNIFORM, "uniform", "uniform in [-A, A]")                                        \
    X(COEF_GAUSSIAN, "gaussian", "gaussian")                                                \
    X(COEF_LAPLACE, "laplace", "laplace")                                                   \
    X(COEF_UNIFORM_MIXED, "uniform_mixed",                                                  \
      "uniform in [-A', A'] with A' drawn uniformly in [1, bound_max] per matrix (Tables 12, 20)")
typedef enum { COEF_LAWS(ENUM_VALUE) COEF_LAW_COUNT } coef_law;
extern const enum_table COEF_LAW_TABLE;

/* Eigenvalue laws of section 2.2: M = P D P^T, P the eigenvectors of a gaussian Wigner matrix.
 * Each is scaled so that the root mean square of the eigenvalues is eig_scale * A * sqrt(n/3),
 * the Wigner sigma (for the centered laws, their std). Positive laws redraw a matrix whose
 * rounded input has an eigenvalue < 0 (Marchenko-Pastur: 5% of 5x5 draws, 12% at 10x10, 27% at
 * 20x20, all with an eigenvalue within rounding noise of 0; positive: 0.04% at 5x5).
 * wigner is the input of an empty eig_law (law and bound, no eig_scale), so that a mixture can
 * hold plain Wigner matrices beside the special laws. */
#define EIG_LAWS(X)                                                                         \
    X(EIG_SEMICIRCLE, "semicircle", "Wigner: D of a gaussian symmetric matrix")             \
    X(EIG_POSITIVE, "positive", "absolute value of the semicircle")                         \
    X(EIG_UNIFORM, "uniform", "uniform")                                                    \
    X(EIG_GAUSSIAN, "gaussian", "gaussian")                                                 \
    X(EIG_LAPLACE, "laplace", "laplace")                                                    \
    X(EIG_MARCHENKO_PASTUR, "marchenko_pastur", "eigenvalues of W W^T, W gaussian n x n (positive)") \
    X(EIG_ABS_LAPLACE, "abs_laplace", "absolute value of the laplace law (positive; the talk's seventh)") \
    X(EIG_WIGNER, "wigner", "a plain Wigner matrix of coefficient law `law` (a mixture's component)")
typedef enum { EIG_LAWS(ENUM_VALUE) EIG_LAW_COUNT } eig_law;
extern const enum_table EIG_LAW_TABLE;

const char *coef_law_name(coef_law law);
int coef_law_from_name(const char *name);  /* -1 when unknown */
const char *eig_law_name(eig_law law);
int eig_law_from_name(const char *name);   /* -1 when unknown */

typedef struct {
    lawt_task tasks[LAWT_TASK_COUNT]; /* one task, or several for joint training */
    int ntasks;
    int task_token;       /* 1: prefix the source with the task's token; 2: the source and
                           * the target, as Appendix F.2 does (0: none) */
    int rows_min, rows_max; /* "5" or "5-15": each example draws its dimensions */
    int cols_min, cols_max; /* 0, 0: square (cols = rows) */
    coef_law law;
    double bound;         /* A (10) */
    double bound_max;     /* uniform_mixed: A' drawn uniformly in [1, bound_max] (100) */
    /* Special eigenvalue laws (symmetric tasks): weights of a mixture; all zero means the
     * input is a plain Wigner matrix of coef law `law`. */
    double eig_weights[EIG_LAW_COUNT];
    double eig_scale;     /* rms of the eigenvalues as a ratio of the Wigner sigma A*sqrt(n/3) (1) */
    double noise;         /* gaussian noise added to the input, fraction of the coefficient std
                           * (A/sqrt(3), times eig_scale under an eigenvalue law) (0) */
    int in_digits;        /* significant digits of the input (from its encoding, 3); 0: unrounded */
    int out_digits;       /* significant digits of the output (3); 0: unrounded */
} datagen_config;

/* Defaults: transpose, 5x5, uniform, A = 10, no special law, no noise, 3 digits. */
void datagen_default(datagen_config *cfg);
/* Fills the fields from a key/value pair: task ("add", or "add,matmul" for joint training,
 * which also sets task_token), task_token, dim and dim2 ("5" or "5-15": rows and columns of M),
 * law, bound, bound_max, eig_law ("none", "laplace", or "gaussian:1,uniform:1,laplace:1"), eig_scale,
 * noise, in_digits, out_digits. Empty values: dim2 square, eig_law none, task_token 1 when
 * cfg has several tasks. Returns 0, or -1 with a message naming the key, the bad value
 * and the allowed values in err; cfg is unchanged on error. */
int datagen_set(datagen_config *cfg, const char *key, const char *value, char *err, size_t errcap);
/* The allowed values of a datagen_set key in words, and its meaning (one table in datagen.c:
 * the trainer's [data] keys show them); NULL for an unknown key. */
const char *datagen_key_allowed(const char *key);
const char *datagen_key_help(const char *key);
/* Checks consistency: eig_law only with eigen tasks, dim2 only with tasks that take rectangular
 * matrices, task_token with several tasks, every matrix within V100; -1 with a message in err. */
int datagen_validate(const datagen_config *cfg, char *err, size_t errcap);

/* Largest input / output matrices (coefficient counts, and rows/cols) the config can make. */
size_t datagen_max_input_coeffs(const datagen_config *cfg);
size_t datagen_max_output_coeffs(const datagen_config *cfg);

/* Example `index` of `stream`: in (the rounded, possibly noisy input) and out (the rounded
 * output computed in double precision from the clean rounded input). The caller provides
 * in->a and out->a with the capacities above; rows/cols are set. *task (may be NULL) receives
 * the task of the example (joint training). Ill-posed draws are redrawn deterministically.
 * Thread-safe; no allocation after a thread's first, largest example. Returns the number of
 * redraws (>= 0). */
int datagen_example(const datagen_config *cfg, uint64_t seed, datagen_stream stream, uint64_t index,
                    lawt_matrix *in, lawt_matrix *out, lawt_task *task);

/* Longest framed source / target sequences (with the two EOS and the task token). */
int datagen_max_src_len(const datagen_config *cfg, const lawt_encoding *in_enc);
int datagen_max_tgt_len(const datagen_config *cfg, const lawt_encoding *out_enc);

/* Example `index` as framed token sequences: src = EOS [task] Vm Vn coeffs EOS,
 * tgt = EOS [task] Vm Vn coeffs EOS, the task token in the target with task_token 2 (capacities datagen_max_src_len / datagen_max_tgt_len). An example
 * whose numbers the encodings cannot represent is redrawn (deterministically). The digits are
 * cfg's, or the encoding's where it keeps fewer, so the output is computed from the input the
 * sequence shows. in/out/task may be NULL; when given they receive the matrices (capacities
 * as above). Returns 0. */
int datagen_tokens(const datagen_config *cfg, const lawt_vocab *vin, const lawt_vocab *vout,
                   uint64_t seed, datagen_stream stream, uint64_t index,
                   int *src, int *src_len, int *tgt, int *tgt_len,
                   lawt_matrix *in, lawt_matrix *out, lawt_task *task);

/* The matrix of a predicted target of task (the tokens between the two EOS, as decoding
 * gives them): with task_token 2 the first must be the task's token, else the prediction is
 * malformed; the rest is decode_matrix's. */
decode_status datagen_decode_output(const datagen_config *cfg, const lawt_vocab *vout,
                                    lawt_task task, const int *ids, int n, lawt_matrix *m,
                                    int cap);

/* A user's problem solved as datagen solves its examples (lawt_solve's reference answer).
 * datagen_problem_size: the dimensions of M (m x n) of an input of rows x cols for task, in the
 * layout of the examples ([M | N] for add and matmul, [M | v] for matvec; eigen tasks and
 * inversion square); returns 0, or -1 when no input of the task has that shape.
 * datagen_solve: task(in) by the same LAPACK calls and sign conventions as the examples'
 * targets, unrounded; out->a holds (1 + m + n) * max(m, n) doubles. Returns 0, or -1 when the
 * shape does not fit or the problem is ill-posed (inversion: reciprocal condition number below
 * 1e-6, as for the examples; LAPACK failing to converge). Symmetric tasks read only the lower
 * triangle of in, as LAPACK does. */
int datagen_problem_size(lawt_task task, int rows, int cols, int *m, int *n);
int datagen_solve(lawt_task task, const lawt_matrix *in, lawt_matrix *out);

#endif
