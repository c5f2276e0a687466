/* datagen.h: random linear-algebra problems (paper section 2, Appendix H).
 *
 * Example number i of a stream is a pure function of (seed, stream, i): it is drawn from a
 * Philox4x32 counter-based generator (Random123) keyed by (seed, stream) with i in the
 * counter, so any number of producers, in any order, make bit-identical examples.
 * Training and test streams use different keys and never overlap. */
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
typedef enum {
    COEF_UNIFORM,
    COEF_GAUSSIAN,
    COEF_LAPLACE,
    COEF_UNIFORM_MIXED, /* uniform in [-A', A'] with A' drawn uniformly in [1, 100] per matrix (Table 12) */
    COEF_LAW_COUNT
} coef_law;

/* Eigenvalue laws of section 2.2: M = P D P^T, P the eigenvectors of a gaussian Wigner matrix. */
typedef enum {
    EIG_SEMICIRCLE,        /* Wigner: D of a gaussian symmetric matrix */
    EIG_POSITIVE,          /* absolute value of the semicircle */
    EIG_UNIFORM,
    EIG_GAUSSIAN,
    EIG_LAPLACE,
    EIG_MARCHENKO_PASTUR,  /* eigenvalues of W W^T, W gaussian n x n (positive) */
    EIG_LAW_COUNT
} eig_law;

const char *coef_law_name(coef_law law);
int coef_law_from_name(const char *name);  /* -1 when unknown */
const char *eig_law_name(eig_law law);
int eig_law_from_name(const char *name);   /* -1 when unknown */

typedef struct {
    lawt_task tasks[LAWT_TASK_COUNT]; /* one task, or several for joint training */
    int ntasks;
    int task_token;       /* 1: prefix the source with the task's token (Appendix F.2) */
    int rows_min, rows_max; /* "5" or "5-15": each example draws its dimensions */
    int cols_min, cols_max; /* 0, 0: square (cols = rows) */
    coef_law law;
    double bound;         /* A (10) */
    /* Special eigenvalue laws (symmetric tasks): weights of a mixture; all zero means the
     * input is a plain Wigner matrix of coef law `law`. */
    double eig_weights[EIG_LAW_COUNT];
    double eig_scale;     /* std of the eigenvalues as a ratio of the Wigner sigma A*sqrt(n/3) (1) */
    double noise;         /* gaussian noise added to the input, fraction of the coefficient std (0) */
    int in_digits;        /* significant digits of the input (from its encoding, 3) */
    int out_digits;       /* significant digits of the output (3) */
} datagen_config;

/* Defaults: transpose, 5x5, uniform, A = 10, no special law, no noise, 3 digits. */
void datagen_default(datagen_config *cfg);
/* Fills the fields from a key/value pair ("task", "dim", "dim2", "law", "bound", "eig_law",
 * "eig_scale", "noise", ...). Returns 0, or -1 with a message naming the allowed values in err. */
int datagen_set(datagen_config *cfg, const char *key, const char *value, char *err, size_t errcap);
/* Checks consistency (e.g. eig_law with a non-symmetric task); -1 with a message in err. */
int datagen_validate(const datagen_config *cfg, char *err, size_t errcap);

/* Largest input / output matrices (coefficient counts, and rows/cols) the config can make. */
size_t datagen_max_input_coeffs(const datagen_config *cfg);
size_t datagen_max_output_coeffs(const datagen_config *cfg);

/* Example `index` of `stream`: in (the rounded, possibly noisy input) and out (the rounded
 * output computed in double precision from the clean rounded input). The caller provides
 * in->a and out->a with the capacities above; rows/cols are set. *task receives the task of
 * the example (joint training). Ill-posed draws are redrawn deterministically. Returns the
 * number of redraws (>= 0). */
int datagen_example(const datagen_config *cfg, uint64_t seed, datagen_stream stream, uint64_t index,
                    lawt_matrix *in, lawt_matrix *out, lawt_task *task);

/* Longest framed source / target sequences (with the two EOS and the task token). */
int datagen_max_src_len(const datagen_config *cfg, const lawt_encoding *in_enc);
int datagen_max_tgt_len(const datagen_config *cfg, const lawt_encoding *out_enc);

/* Example `index` as framed token sequences: src = EOS [task] Vm Vn coeffs EOS,
 * tgt = EOS Vm Vn coeffs EOS. An example whose numbers the encodings cannot represent is
 * redrawn (deterministically). in/out/task may be NULL; when given they receive the matrices
 * (capacities as above). Returns 0. */
int datagen_tokens(const datagen_config *cfg, const lawt_vocab *vin, const lawt_vocab *vout,
                   uint64_t seed, datagen_stream stream, uint64_t index,
                   int *src, int *src_len, int *tgt, int *tgt_len,
                   lawt_matrix *in, lawt_matrix *out, lawt_task *task);

#endif
