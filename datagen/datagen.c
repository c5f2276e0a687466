/* datagen.c: random linear-algebra problems (paper section 2, 4.4, 5, Appendix H).
 *
 * Randomness. Philox4x32-10 (Random123). Its key is the 64-bit seed; its 128-bit counter is
 * (index low, index high, stream << 24 | attempt, block). Streams live in the counter rather
 * than in the key because Philox4x32's key only has the 64 bits of the seed: under one key,
 * distinct counters are distinct inputs of a bijection, so the training, test and OOD streams
 * of a seed can never produce the same block. Each block gives two 53-bit uniforms.
 *
 * An example is planned first (task, sizes, per-matrix bound A', eigenvalue law) from a
 * generator at the reserved attempt PLAN_ATTEMPT, then its coefficients are drawn from the
 * generator of attempt 0, 1, 2, ...: a redraw changes the coefficients only, so redraws never
 * bias the mixture of tasks, sizes or laws.
 *
 * Redraw rules (all deterministic, the attempt number moves to the next generator):
 *   - inversion: LU finds an exactly singular matrix, or the reciprocal condition number
 *     (1-norm, LAPACK dgecon estimate) is below INVERSE_MIN_RCOND = 1e-6. The paper's reference
 *     keeps an inverse when max|M M^-1 - Id| <= 1e-10 in double precision, which cuts near
 *     the same place (cond ~ 1e5..1e6); the inverse of a kept matrix is accurate to ~1e-10,
 *     far beyond the 2-4 digits its output keeps. It drops ~1e-5 of uniform 5x5 draws.
 *   - positive and Marchenko-Pastur eigenvalue laws: the rounded input must still be
 *     positive semidefinite (rounding can push an eigenvalue near 0 below it).
 *   - a LAPACK routine that does not converge (never seen).
 *   - datagen_tokens: an input or output value the encoding rejects (exponent out of range).
 *
 * Sign conventions: eigenvectors and singular vectors are defined up to sign; each one is
 * flipped so that its largest-magnitude component is positive (the first such on ties). For
 * the SVD the rule applies to U's column and V's column follows.
 *
 * Numerical results do not depend on the producer: LAPACK workspace sizes are fixed functions
 * of the dimensions (never the capacity of a thread's buffer, which would switch LAPACK
 * between blocked and unblocked code), and all state lives on the stack or in a per-thread
 * workspace that only grows. */
#include "datagen/datagen.h"

#include <Random123/philox.h>
#include <cblas.h>
#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQRT2 1.4142135623730951
#define SQRT3 1.7320508075688772
#define TWO_PI 6.283185307179586
#define INVERSE_MIN_RCOND 1e-6
#define PLAN_ATTEMPT 0xffffffu /* 24 bits: attempts of coefficient draws stay below it */
#define MAX_ATTEMPTS 1000
#define MAX_DIGITS 15 /* in_digits, out_digits */

/* ---------------------------------------------------------------------------------------- */
/* Names                                                                                      */

ENUM_TABLE_DEFINE(COEF_LAW_TABLE, COEF_LAWS);
ENUM_TABLE_DEFINE(EIG_LAW_TABLE, EIG_LAWS);

const char *coef_law_name(coef_law law) { return enum_name(&COEF_LAW_TABLE, law); }
int coef_law_from_name(const char *name) { return enum_from_name(&COEF_LAW_TABLE, name); }
const char *eig_law_name(eig_law law) { return enum_name(&EIG_LAW_TABLE, law); }
int eig_law_from_name(const char *name) { return enum_from_name(&EIG_LAW_TABLE, name); }

/* ---------------------------------------------------------------------------------------- */
/* Random numbers                                                                             */

typedef struct {
    philox4x32_key_t key;
    philox4x32_ctr_t ctr;
    philox4x32_ctr_t block;
    int used;           /* 32-bit words of block already consumed: 0, 2 or 4 */
    int has_gaussian;   /* Box-Muller makes two; the second waits here */
    double gaussian;
} rng;

static void rng_init(rng *r, uint64_t seed, datagen_stream stream, uint64_t index, uint32_t attempt)
{
    r->key.v[0] = (uint32_t)seed;
    r->key.v[1] = (uint32_t)(seed >> 32);
    r->ctr.v[0] = (uint32_t)index;
    r->ctr.v[1] = (uint32_t)(index >> 32);
    r->ctr.v[2] = ((uint32_t)stream << 24) | attempt;
    r->ctr.v[3] = 0;
    r->used = 4;
    r->has_gaussian = 0;
}

static uint64_t rng_u64(rng *r)
{
    if (r->used == 4) {
        r->block = philox4x32(r->ctr, r->key);
        r->ctr.v[3]++;
        r->used = 0;
    }
    uint64_t x = ((uint64_t)r->block.v[r->used] << 32) | r->block.v[r->used + 1];
    r->used += 2;
    return x;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(rng *r) { return (double)(rng_u64(r) >> 11) * 0x1p-53; }

static int rng_int(rng *r, int lo, int hi) { return lo + (int)(rng_uniform(r) * (hi - lo + 1)); }

/* Box-Muller: 1 - u is in (0, 1], so the log is finite. */
static double rng_gaussian(rng *r)
{
    if (r->has_gaussian) {
        r->has_gaussian = 0;
        return r->gaussian;
    }
    double radius = sqrt(-2.0 * log(1.0 - rng_uniform(r)));
    double angle = TWO_PI * rng_uniform(r);
    r->gaussian = radius * sin(angle);
    r->has_gaussian = 1;
    return radius * cos(angle);
}

/* Laplace of scale b (std b*sqrt(2)): an exponential with a random sign, from one draw. */
static double rng_laplace(rng *r, double b)
{
    uint64_t x = rng_u64(r);
    double e = -log1p(-(double)(x >> 11) * 0x1p-53);
    return (x & 1) ? -b * e : b * e;
}

/* One coefficient of `law`; every law has the std of uniform [-A, A], A / sqrt(3). */
static double draw_coef(rng *r, coef_law law, double bound)
{
    switch (law) {
    case COEF_GAUSSIAN: return bound / SQRT3 * rng_gaussian(r);
    case COEF_LAPLACE: return rng_laplace(r, bound / (SQRT3 * SQRT2));
    case COEF_UNIFORM:
    case COEF_UNIFORM_MIXED:
    case COEF_LAW_COUNT: break;
    }
    return bound * (2.0 * rng_uniform(r) - 1.0);
}

/* ---------------------------------------------------------------------------------------- */
/* Per-thread workspace                                                                       */

/* Scratch for LAPACK and for the matrices of datagen_tokens when the caller gives none. It is
 * allocated once per thread, grows when an example needs more, and is freed at thread exit. */
typedef struct {
    double *d;          /* LAPACK and generation scratch */
    size_t dcap;
    lapack_int *i;
    size_t icap;
    double *m;          /* datagen_tokens' own in/out matrices */
    size_t mcap;
} workspace;

static pthread_key_t workspace_key;
static pthread_once_t datagen_once = PTHREAD_ONCE_INIT;

static void workspace_free(void *p)
{
    workspace *w = p;
    free(w->d);
    free(w->i);
    free(w->m);
    free(w);
}

/* Also makes OpenBLAS single-threaded, for the whole process. OpenBLAS 0.3.21 threads its
 * level-2 BLAS (dsymv, dsyr2, used by dsyev) at any size: on these tiny matrices that is 3x
 * slower, and the last bits of the eigen and SVD outputs then depend on the thread count,
 * which would break "example i is bit-identical whoever produces it". */
static void datagen_init(void)
{
    if (pthread_key_create(&workspace_key, workspace_free) != 0)
        lawt_die("datagen: cannot create the per-thread workspace key");
    openblas_set_num_threads(1);
}

static workspace *workspace_of_thread(void)
{
    pthread_once(&datagen_once, datagen_init);
    workspace *w = pthread_getspecific(workspace_key);
    if (!w) {
        w = lawt_calloc(1, sizeof *w);
        pthread_setspecific(workspace_key, w);
    }
    return w;
}

/* Scratch of at least `doubles` and `ints`; leaves the matrices buffer alone. */
static workspace *workspace_get(size_t doubles, size_t ints)
{
    workspace *w = workspace_of_thread();
    if (w->dcap < doubles) {
        free(w->d);
        w->d = lawt_malloc(doubles * sizeof *w->d);
        w->dcap = doubles;
    }
    if (w->icap < ints) {
        free(w->i);
        w->i = lawt_malloc(ints * sizeof *w->i);
        w->icap = ints;
    }
    return w;
}

static double *workspace_matrices(size_t doubles)
{
    workspace *w = workspace_of_thread();
    if (w->mcap < doubles) {
        free(w->m);
        w->m = lawt_malloc(doubles * sizeof *w->m);
        w->mcap = doubles;
    }
    return w->m;
}

/* ---------------------------------------------------------------------------------------- */
/* Example plan: what is fixed by (seed, stream, index) whatever the redraws                  */

typedef struct {
    lawt_task task;
    int rows, cols;    /* the problem's M is rows x cols; square tasks have rows == cols */
    double bound;      /* A, or A' drawn in [1, bound_max] for COEF_UNIFORM_MIXED */
    int eig;           /* special eigenvalue law, or -1 for a plain Wigner matrix */
} example_plan;

static int is_symmetric_task(lawt_task t) { return task_get(t)->symmetric; }
static int is_square_task(lawt_task t) { return task_get(t)->square; }

static int has_eig_law(const datagen_config *cfg)
{
    for (int l = 0; l < EIG_LAW_COUNT; l++)
        if (cfg->eig_weights[l] > 0) return 1;
    return 0;
}

static example_plan plan_example(const datagen_config *cfg, uint64_t seed, datagen_stream stream,
                                 uint64_t index)
{
    rng r;
    rng_init(&r, seed, stream, index, PLAN_ATTEMPT);
    example_plan p;
    p.task = cfg->tasks[cfg->ntasks > 1 ? rng_int(&r, 0, cfg->ntasks - 1) : 0];
    p.rows = rng_int(&r, cfg->rows_min, cfg->rows_max);
    int square = cfg->cols_max == 0 || is_square_task(p.task);
    p.cols = square ? p.rows : rng_int(&r, cfg->cols_min, cfg->cols_max);
    p.bound = cfg->law == COEF_UNIFORM_MIXED ? 1.0 + (cfg->bound_max - 1.0) * rng_uniform(&r)
                                             : cfg->bound;
    p.eig = -1;
    if (is_symmetric_task(p.task) && has_eig_law(cfg)) {
        double total = 0;
        for (int l = 0; l < EIG_LAW_COUNT; l++) total += cfg->eig_weights[l];
        double u = rng_uniform(&r) * total;
        for (int l = 0; l < EIG_LAW_COUNT && p.eig < 0; l++) {
            if (cfg->eig_weights[l] <= 0) continue;
            if (u < cfg->eig_weights[l]) p.eig = l;
            u -= cfg->eig_weights[l];
        }
        if (p.eig < 0) /* u landed on the total through rounding: the last law with weight */
            for (int l = EIG_LAW_COUNT - 1; p.eig < 0; l--)
                if (cfg->eig_weights[l] > 0) p.eig = l;
        if (p.eig == EIG_WIGNER) p.eig = -1; /* the plain Wigner input */
    }
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* LAPACK wrappers. Matrices are column-major here; the lwork values are fixed functions of   */
/* the dimensions (see the top of the file).                                                  */

static size_t syev_lwork(int n) { return (size_t)66 * n; }        /* (block 64 + 2) n */
static size_t syevd_lwork(int n) { return (size_t)2 * n + 1; }    /* jobz N */
static size_t gesvd_lwork(int m, int n) { return (size_t)5 * (m + n) + 64 * (size_t)(m + n); }
static size_t gesdd_lwork(int m, int n)
{
    size_t mn = m < n ? m : n, mx = m < n ? n : m;
    size_t need = 4 * mn * mn + 4 * mn;
    return 3 * mn * mn + (mx > need ? mx : need) + 64 * (mx + mn);
}
static size_t getri_lwork(int n) { return (size_t)64 * n; }

/* Doubles and ints of workspace one example may need (beyond the in/out matrices). */
static size_t scratch_doubles(int m, int n)
{
    size_t d = (size_t)(m > n ? m : n);
    return 4 * d * d + 2 * d + gesdd_lwork(m, n) + syev_lwork((int)d) + getri_lwork((int)d);
}
static size_t scratch_ints(int m, int n) { return 8 * (size_t)(m > n ? m : n) + 8; }

/* Eigenvalues (ascending) of the symmetric a (n x n, overwritten: with the eigenvectors as
 * columns when `vectors`). Returns 0, or -1 when LAPACK fails. */
static int sym_eigen(int n, double *a, double *w, int vectors, double *work, lapack_int *iwork)
{
    lapack_int info;
    if (vectors)
        info = LAPACKE_dsyev_work(LAPACK_COL_MAJOR, 'V', 'U', n, a, n, w, work,
                                  (lapack_int)syev_lwork(n));
    else /* dsyevd: faster than dsyev for eigenvalues alone from n ~ 8 */
        info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'N', 'U', n, a, n, w, work,
                                   (lapack_int)syevd_lwork(n), iwork, 1);
    return info == 0 ? 0 : -1;
}

/* Flips v (len entries, stride apart) when its largest-magnitude entry (the first one on ties)
 * is negative. Returns the sign applied. */
static double make_positive(double *v, int len, int stride)
{
    int best = 0;
    for (int i = 1; i < len; i++)
        if (fabs(v[i * stride]) > fabs(v[best * stride])) best = i;
    if (v[best * stride] >= 0) return 1.0;
    for (int i = 0; i < len; i++) v[i * stride] = -v[i * stride];
    return -1.0;
}

/* ---------------------------------------------------------------------------------------- */
/* Inputs                                                                                     */

static void fill_matrix(rng *r, coef_law law, double bound, double *a, size_t count)
{
    for (size_t k = 0; k < count; k++) a[k] = draw_coef(r, law, bound);
}

/* Wigner: upper triangle drawn row by row, mirrored, so the diagonal has the same law. */
static void fill_symmetric(rng *r, coef_law law, double bound, double *a, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) a[i * n + j] = a[j * n + i] = draw_coef(r, law, bound);
}

/* a = P diag(d) P^T (P column-major n x n), exactly symmetric. */
static void rebuild_symmetric(int n, const double *p, const double *d, double *a)
{
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += p[i + k * n] * d[k] * p[j + k * n];
            a[i * n + j] = a[j * n + i] = s;
        }
}

/* Symmetric n x n input with eigenvalue law `law` (section 2.2). sigma is the target root mean
 * square of the eigenvalues, eig_scale * A * sqrt(n/3): the std of the Wigner eigenvalues
 * (Appendix H), and the std of every centered law. Returns 0, or -1 when LAPACK fails. */
static int fill_eig_law(rng *r, eig_law law, double sigma, int n, double *a, double *work,
                        lapack_int *iwork)
{
    /* A gaussian Wigner matrix with coefficient std sigma / sqrt(n) has E[lambda^2] = sigma^2. */
    double coef_std = sigma / sqrt((double)n);
    if (law == EIG_SEMICIRCLE) { /* P D P^T with D its own eigenvalues is the matrix itself */
        fill_symmetric(r, COEF_GAUSSIAN, coef_std * SQRT3, a, n);
        return 0;
    }
    if (law == EIG_MARCHENKO_PASTUR) {
        /* W^T W, W gaussian n x n of variance v: E[lambda^2] = n (2n + 1) v^2. Its eigenvectors
         * are uniform on the sphere like P's, so no rotation is needed. */
        double *wm = work;
        double v = sigma / sqrt((double)n * (2.0 * n + 1.0));
        fill_matrix(r, COEF_GAUSSIAN, sqrt(v) * SQRT3, wm, (size_t)n * n);
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++) {
                double s = 0;
                for (int k = 0; k < n; k++) s += wm[k * n + i] * wm[k * n + j];
                a[i * n + j] = a[j * n + i] = s;
            }
        return 0;
    }
    double *p = work, *d = work + (size_t)n * n, *lwork = d + n;
    fill_symmetric(r, COEF_GAUSSIAN, coef_std * SQRT3, p, n);
    if (sym_eigen(n, p, d, 1, lwork, iwork) != 0) return -1;
    for (int k = 0; k < n; k++) {
        switch (law) {
        case EIG_POSITIVE: d[k] = fabs(d[k]); break;
        case EIG_UNIFORM: d[k] = sigma * SQRT3 * (2.0 * rng_uniform(r) - 1.0); break;
        case EIG_GAUSSIAN: d[k] = sigma * rng_gaussian(r); break;
        case EIG_LAPLACE: d[k] = rng_laplace(r, sigma / SQRT2); break;
        case EIG_ABS_LAPLACE: d[k] = fabs(rng_laplace(r, sigma / SQRT2)); break;
        case EIG_SEMICIRCLE:
        case EIG_MARCHENKO_PASTUR:
        case EIG_WIGNER: /* planned as -1: never drawn here */
        case EIG_LAW_COUNT: break;
        }
    }
    rebuild_symmetric(n, p, d, a);
    return 0;
}

static void round_all(double *a, size_t count, int digits)
{
    if (digits <= 0) return; /* 0: keep full precision */
    for (size_t k = 0; k < count; k++) a[k] = round_significant(a[k], digits);
}

/* ---------------------------------------------------------------------------------------- */
/* Outputs, in double precision from the rounded input                                        */

/* Returns 0, or -1 for an ill-posed draw (see the redraw rules at the top). */
static int compute_output(const example_plan *p, const lawt_matrix *in, lawt_matrix *out,
                          double *work, lapack_int *iwork)
{
    int m = p->rows, n = p->cols, k = m < n ? m : n;
    const double *a = in->a;
    double *o = out->a;
    task_output_shape(p->task, m, n, &out->rows, &out->cols);
    switch (p->task) {
    case TASK_TRANSPOSE:
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) o[j * m + i] = a[i * n + j];
        return 0;
    case TASK_ADD:
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) o[i * n + j] = a[i * 2 * n + j] + a[i * 2 * n + n + j];
        return 0;
    case TASK_MATVEC: /* [M | v]: M^T v, v the last column */
        cblas_dgemv(CblasRowMajor, CblasTrans, m, n, 1.0, a, n + 1, a + n, n + 1, 0.0, o, 1);
        return 0;
    case TASK_MATMUL: /* [M | N]: M^T N */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, m, 1.0, a, 2 * n, a + n, 2 * n,
                    0.0, o, n);
        return 0;
    case TASK_EIGENVALUES:
    case TASK_EIGENVECTORS: {
        /* Symmetric: row-major and column-major are the same matrix. */
        int vectors = p->task == TASK_EIGENVECTORS;
        double *z = work, *w = z + (size_t)n * n, *lwork = w + n;
        memcpy(z, a, sizeof *z * (size_t)n * n);
        if (sym_eigen(n, z, w, vectors, lwork, iwork) != 0) return -1;
        int positive_law = p->eig == EIG_POSITIVE || p->eig == EIG_MARCHENKO_PASTUR ||
                           p->eig == EIG_ABS_LAPLACE;
        if (positive_law && w[0] < 0) return -1;
        for (int c = 0; c < n; c++) o[c] = w[n - 1 - c]; /* descending */
        if (!vectors) return 0;
        for (int c = 0; c < n; c++) {
            double *v = z + (size_t)(n - 1 - c) * n;
            make_positive(v, n, 1);
            for (int i = 0; i < n; i++) o[(1 + i) * n + c] = v[i];
        }
        return 0;
    }
    case TASK_SINGULARVALUES:
    case TASK_SVD: {
        double *c = work, *s = c + (size_t)m * n, *u = s + k, *vt = u + (size_t)m * k;
        double *lwork = vt + (size_t)k * n;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[i + j * m] = a[i * n + j];
        lapack_int info;
        if (p->task == TASK_SINGULARVALUES) /* dgesvd is the faster of the two without vectors */
            info = LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, 'N', 'N', m, n, c, m, s, u, 1, vt, 1,
                                       lwork, (lapack_int)gesvd_lwork(m, n));
        else
            info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'S', m, n, c, m, s, u, m, vt, k, lwork,
                                       (lapack_int)gesdd_lwork(m, n), iwork);
        if (info != 0) return -1;
        for (int j = 0; j < k; j++) o[j] = s[j]; /* LAPACK's order is descending */
        if (p->task == TASK_SINGULARVALUES) return 0;
        for (int j = 0; j < k; j++) {
            double sign = make_positive(u + (size_t)j * m, m, 1);
            for (int i = 0; i < m; i++) o[(1 + i) * k + j] = u[i + j * m];
            for (int i = 0; i < n; i++) o[(1 + m + i) * k + j] = sign * vt[j + i * k];
        }
        return 0;
    }
    case TASK_INVERSION:
    case LAWT_TASK_COUNT: {
        double *c = work, *lwork = c + (size_t)n * n;
        lapack_int *ipiv = iwork, *iw = iwork + n;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) c[i + j * n] = a[i * n + j];
        double anorm = LAPACKE_dlange_work(LAPACK_COL_MAJOR, '1', n, n, c, n, lwork);
        if (LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, n, n, c, n, ipiv) != 0) return -1;
        double rcond;
        if (LAPACKE_dgecon_work(LAPACK_COL_MAJOR, '1', n, c, n, anorm, &rcond, lwork, iw) != 0)
            return -1;
        if (!(rcond >= INVERSE_MIN_RCOND)) return -1;
        if (LAPACKE_dgetri_work(LAPACK_COL_MAJOR, n, c, n, ipiv, lwork,
                                (lapack_int)getri_lwork(n)) != 0)
            return -1;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) o[i * n + j] = c[i + j * n];
        return 0;
    }
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Examples                                                                                   */

/* The example of `plan` from attempt `attempt` on: returns the attempt that succeeded. */
static uint32_t make_example(const datagen_config *cfg, const example_plan *p, int in_digits,
                             int out_digits, uint64_t seed, datagen_stream stream, uint64_t index,
                             uint32_t attempt, lawt_matrix *in, lawt_matrix *out)
{
    workspace *ws =
        workspace_get(scratch_doubles(p->rows, p->cols), scratch_ints(p->rows, p->cols));
    task_input_shape(p->task, p->rows, p->cols, &in->rows, &in->cols);
    size_t count = (size_t)in->rows * in->cols;
    int symmetric = is_symmetric_task(p->task);
    int n = p->rows;
    /* The nominal std of the input coefficients, the unit of the noise. */
    double coef_std = p->bound / SQRT3 * (p->eig >= 0 ? cfg->eig_scale : 1.0);
    for (;; attempt++) {
        if (attempt >= MAX_ATTEMPTS)
            lawt_die("datagen: example %llu of stream %d (task %s, %dx%d) still ill-posed after %d "
                     "redraws: can the encodings represent this data?",
                     (unsigned long long)index, (int)stream, task_name(p->task), p->rows, p->cols,
                     MAX_ATTEMPTS);
        rng r;
        rng_init(&r, seed, stream, index, attempt);
        if (p->eig >= 0) {
            double sigma = cfg->eig_scale * p->bound * sqrt(n / 3.0);
            if (fill_eig_law(&r, (eig_law)p->eig, sigma, n, in->a, ws->d, ws->i) != 0) continue;
        } else if (symmetric) {
            fill_symmetric(&r, cfg->law, p->bound, in->a, n);
        } else {
            fill_matrix(&r, cfg->law, p->bound, in->a, count);
        }
        round_all(in->a, count, in_digits);
        if (compute_output(p, in, out, ws->d, ws->i) != 0) continue;
        round_all(out->a, (size_t)out->rows * out->cols, out_digits);
        if (cfg->noise > 0) { /* after the output: it is computed from the clean input */
            double s = cfg->noise * coef_std;
            int cols = in->cols;
            for (int i = 0; i < in->rows; i++)
                for (int j = symmetric ? i : 0; j < cols; j++) {
                    double x = in->a[i * cols + j] + s * rng_gaussian(&r);
                    in->a[i * cols + j] = x;
                    if (symmetric) in->a[j * cols + i] = x;
                }
            round_all(in->a, count, in_digits);
        }
        return attempt;
    }
}

int datagen_example(const datagen_config *cfg, uint64_t seed, datagen_stream stream, uint64_t index,
                    lawt_matrix *in, lawt_matrix *out, lawt_task *task)
{
    example_plan p = plan_example(cfg, seed, stream, index);
    if (task) *task = p.task;
    return (int)make_example(cfg, &p, cfg->in_digits, cfg->out_digits, seed, stream, index, 0, in,
                             out);
}

/* The digits an encoded matrix really has: the config's, unless the encoding keeps fewer
 * (the output must be computed from the input the sequence shows). */
static int effective_digits(int cfg_digits, const lawt_encoding *enc)
{
    return (cfg_digits <= 0 || cfg_digits > enc->digits) ? enc->digits : cfg_digits;
}

int datagen_tokens(const datagen_config *cfg, const lawt_vocab *vin, const lawt_vocab *vout,
                   uint64_t seed, datagen_stream stream, uint64_t index, int *src, int *src_len,
                   int *tgt, int *tgt_len, lawt_matrix *in, lawt_matrix *out, lawt_task *task)
{
    example_plan p = plan_example(cfg, seed, stream, index);
    if (task) *task = p.task;
    int in_digits = effective_digits(cfg->in_digits, &vin->enc);
    int out_digits = effective_digits(cfg->out_digits, &vout->enc);
    lawt_matrix own_in, own_out;
    if (!in || !out) { /* matrices in a second per-thread buffer, sized for this example */
        int ir, ic, orows, ocols;
        task_input_shape(p.task, p.rows, p.cols, &ir, &ic);
        task_output_shape(p.task, p.rows, p.cols, &orows, &ocols);
        size_t ni = (size_t)ir * ic, no = (size_t)orows * ocols;
        double *buf = workspace_matrices(ni + no);
        own_in.a = buf;
        own_out.a = buf + ni;
        if (!in) in = &own_in;
        if (!out) out = &own_out;
    }
    int task_tok = cfg->task_token ? 1 : 0;
    for (uint32_t attempt = 0;; attempt++) {
        attempt =
            make_example(cfg, &p, in_digits, out_digits, seed, stream, index, attempt, in, out);
        int ns = 1 + task_tok, nt = 1 + (cfg->task_token == 2);
        src[0] = TOK_EOS;
        if (task_tok) src[1] = vocab_task_token(vin, p.task);
        tgt[0] = TOK_EOS;
        if (cfg->task_token == 2) tgt[1] = vocab_task_token(vout, p.task);
        int a =
            encode_matrix(vin, in, src + ns, encoding_matrix_length(&vin->enc, in->rows, in->cols));
        if (a < 0) continue;
        int b = encode_matrix(vout, out, tgt + nt,
                              encoding_matrix_length(&vout->enc, out->rows, out->cols));
        if (b < 0) continue;
        ns += a;
        nt += b;
        src[ns++] = TOK_EOS;
        tgt[nt++] = TOK_EOS;
        *src_len = ns;
        *tgt_len = nt;
        return 0;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Configuration                                                                              */

void datagen_default(datagen_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->tasks[0] = TASK_TRANSPOSE;
    cfg->ntasks = 1;
    cfg->rows_min = cfg->rows_max = 5;
    cfg->law = COEF_UNIFORM;
    cfg->bound = 10.0;
    cfg->bound_max = 100.0;
    cfg->eig_scale = 1.0;
    cfg->in_digits = cfg->out_digits = 3;
}

static int fail(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errcap, const char *fmt, ...)
{
    if (err && errcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int parse_double(const char *s, double *x)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v)) return -1;
    *x = v;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *x)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *x = (int)v;
    return 0;
}

/* Splits s (modified) at commas, trimming spaces; returns the number of items. */
static int split_list(char *s, char **items, int cap)
{
    int n = 0;
    for (char *tok = s; tok;) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = '\0';
        while (*tok == ' ') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ') *--end = '\0';
        if (n == cap) return cap + 1;
        items[n++] = tok;
        tok = comma ? comma + 1 : NULL;
    }
    return n;
}

static const char EIG_LAW_HELP[] =
    "none; one of" EIG_LAWS(ENUM_NAME_LISTED) "; or a weighted mixture like "
    "gaussian:1,uniform:1,laplace:1";

typedef struct datagen_key datagen_key;

/* One [data] key: datagen_set finds it by name and hands the value to its parser, which sets
 * the field at `field` (of type and meaning fixed by the parser) or fails naming the key. */
struct datagen_key {
    const char *name;
    int (*set)(datagen_config *cfg, const datagen_key *key, const char *value, char *err,
               size_t errcap);
    size_t field;         /* offset in datagen_config */
    double min;           /* numbers: the least value allowed, excluded when open_min */
    int open_min;
    int empty_ok;         /* an empty value is allowed (its meaning: help) */
    const char *allowed;  /* in words, for --help-config */
    const char *help;
};

static int set_tasks(datagen_config *cfg, const datagen_key *key, const char *value, char *err,
                     size_t errcap)
{
    (void)key;
    char buf[256], *items[LAWT_TASK_COUNT + 1];
    if (strlen(value) >= sizeof buf)
        return fail(err, errcap, "task: value too long (allowed: %s, or several comma-separated)",
                    task_names_list());
    strcpy(buf, value);
    int n = split_list(buf, items, LAWT_TASK_COUNT);
    if (n > LAWT_TASK_COUNT)
        return fail(err, errcap, "task: '%s' names more than the %d tasks (allowed: %s)", value,
                    LAWT_TASK_COUNT, task_names_list());
    lawt_task tasks[LAWT_TASK_COUNT];
    for (int i = 0; i < n; i++) {
        int t = task_from_name(items[i]);
        if (t < 0)
            return fail(err, errcap,
                        "task: unknown task '%s' in '%s' (allowed: %s; several comma-separated "
                        "for joint training)",
                        items[i], value, task_names_list());
        for (int j = 0; j < i; j++)
            if (tasks[j] == (lawt_task)t)
                return fail(err, errcap, "task: '%s' is listed twice in '%s'", items[i], value);
        tasks[i] = (lawt_task)t;
    }
    memcpy(cfg->tasks, tasks, sizeof tasks[0] * (size_t)n);
    cfg->ntasks = n;
    if (n > 1) cfg->task_token = 1; /* joint training needs it (Appendix F.2) */
    return 0;
}

static int set_eig_law(datagen_config *cfg, const datagen_key *key, const char *value,
                       char *err, size_t errcap)
{
    (void)key;
    double weights[EIG_LAW_COUNT] = {0};
    if (strcmp(value, "none") != 0 && value[0] != '\0') {
        char buf[256], *items[EIG_LAW_COUNT + 1];
        if (strlen(value) >= sizeof buf)
            return fail(err, errcap, "eig_law: value too long (allowed: %s)", EIG_LAW_HELP);
        strcpy(buf, value);
        int n = split_list(buf, items, EIG_LAW_COUNT);
        if (n > EIG_LAW_COUNT)
            return fail(err, errcap, "eig_law: '%s' has more than %d laws (allowed: %s)", value,
                        EIG_LAW_COUNT, EIG_LAW_HELP);
        for (int i = 0; i < n; i++) {
            double w = 1.0;
            char *colon = strchr(items[i], ':');
            if (colon) {
                *colon = '\0';
                if (parse_double(colon + 1, &w) != 0 || w < 0)
                    return fail(err, errcap, "eig_law: bad weight '%s' for '%s' in '%s' "
                                "(allowed: a number >= 0)", colon + 1, items[i], value);
            }
            int l = eig_law_from_name(items[i]);
            if (l < 0)
                return fail(err, errcap, "eig_law: unknown law '%s' in '%s' (allowed: %s)",
                            items[i], value, EIG_LAW_HELP);
            if (weights[l] > 0)
                return fail(err, errcap, "eig_law: '%s' is listed twice in '%s'", items[i], value);
            weights[l] = w;
        }
        double total = 0;
        for (int l = 0; l < EIG_LAW_COUNT; l++) total += weights[l];
        if (!(total > 0))
            return fail(err, errcap, "eig_law: the weights of '%s' sum to 0 (allowed: %s)", value,
                        EIG_LAW_HELP);
    }
    memcpy(cfg->eig_weights, weights, sizeof weights);
    return 0;
}

#define FIELD(type) ((type *)((char *)cfg + key->field))

/* task_token: 0, 1, 2, or empty: 1 when task lists several tasks, as set_tasks does. */
static int set_task_token(datagen_config *cfg, const datagen_key *key, const char *value,
                          char *err, size_t errcap)
{
    if (value[0] == '\0') {
        cfg->task_token = cfg->ntasks > 1;
        return 0;
    }
    if (parse_int(value, 0, 2, FIELD(int)) != 0)
        return fail(err, errcap, "%s: bad value '%s' (allowed: 0, 1, 2, or empty)", key->name,
                    value);
    return 0;
}

/* A range of sizes into a (min, max) pair of ints; dim2 empty: square (0, 0). */
static int set_dim_range(datagen_config *cfg, const datagen_key *key, const char *value,
                         char *err, size_t errcap)
{
    int lo = 0, hi = 0;
    if (!(key->empty_ok && value[0] == '\0') && parse_dim_range(value, &lo, &hi) != 0)
        return fail(err, errcap,
                    "%s: bad value '%s' (allowed: a size N or a range N-M, 1 <= N <= M <= %d%s)",
                    key->name, value, LAWT_MAX_DIM, key->empty_ok ? ", or empty" : "");
    FIELD(int)[0] = lo;
    FIELD(int)[1] = hi;
    return 0;
}

static int set_coef_law(datagen_config *cfg, const datagen_key *key, const char *value,
                        char *err, size_t errcap)
{
    int l = coef_law_from_name(value);
    if (l < 0)
        return fail(err, errcap, "%s: unknown law '%s' (allowed: %s)", key->name, value,
                    key->allowed);
    *FIELD(coef_law) = (coef_law)l;
    return 0;
}

static int set_number(datagen_config *cfg, const datagen_key *key, const char *value, char *err,
                      size_t errcap)
{
    double x;
    if (parse_double(value, &x) != 0 || x < key->min || (key->open_min && x == key->min))
        return fail(err, errcap, "%s: bad value '%s' (allowed: a number %s %g)", key->name,
                    value, key->open_min ? ">" : ">=", key->min);
    *FIELD(double) = x;
    return 0;
}

static int set_digits(datagen_config *cfg, const datagen_key *key, const char *value, char *err,
                      size_t errcap)
{
    if (parse_int(value, 0, MAX_DIGITS, FIELD(int)) != 0)
        return fail(err, errcap, "%s: bad value '%s' (allowed: 1 to %d significant digits, or "
                    "0 for no rounding)", key->name, value, MAX_DIGITS);
    return 0;
}

#undef FIELD
#define AT(field) offsetof(datagen_config, field)

static const datagen_key DATAGEN_KEYS[] = {
    {"task", set_tasks, AT(tasks), 0, 0, 0,
     &(LAWT_TASKS(LAWT_TASK_LISTED) ", or a comma-separated list")[2],
     "The problem; several tasks train jointly (Appendix F.2)."},
    {"task_token", set_task_token, AT(task_token), 0, 0, 1, "0, 1, 2, or empty",
     "1: the source starts with the task's token (joint training); 2: the source and the "
     "target do, as Appendix F.2 says (the model predicts the token first); empty: 1 when task "
     "lists several tasks, else 0."},
    {"dim", set_dim_range, AT(rows_min), 0, 0, 0, "N or N-M, 1 <= N <= M <= 100",
     "Rows of the input matrix: \"5\", or \"5-15\" (each example draws its size)."},
    {"dim2", set_dim_range, AT(cols_min), 0, 0, 1, "N or N-M, or empty",
     "Columns of the input matrix (rectangular problems), same syntax; empty: square."},
    {"law", set_coef_law, AT(law), 0, 0, 0, &COEF_LAWS(ENUM_NAME_LISTED)[2],
     "Law of the coefficients: uniform, gaussian, laplace, uniform_mixed (A drawn in "
     "[1, bound_max])."},
    {"bound", set_number, AT(bound), 0, 1, 0, "number > 0",
     "A: coefficients in [-A, A] (other laws: the same standard deviation A/sqrt(3))."},
    {"bound_max", set_number, AT(bound_max), 1, 0, 0, "number >= 1",
     "uniform_mixed: each matrix draws A uniformly in [1, bound_max] (Table 20: 100, 1000)."},
    {"eig_law", set_eig_law, AT(eig_weights), 0, 0, 1,
     "empty" EIG_LAWS(ENUM_NAME_LISTED) ", or law:weight,...",
     "Eigenvalue law of symmetric inputs (section 2.2): semicircle, positive, uniform, "
     "gaussian, laplace, marchenko_pastur, abs_laplace, or a weighted mixture (wigner: plain "
     "Wigner matrices as one of its laws); empty: plain Wigner."},
    {"eig_scale", set_number, AT(eig_scale), 0, 1, 0, "number > 0",
     "Std of the special eigenvalue law, as a ratio of the Wigner sigma A*sqrt(n/3)."},
    {"noise", set_number, AT(noise), 0, 0, 0, "number >= 0",
     "Gaussian noise on the input, fraction of the coefficient std (Table 11: 0.01, 0.02, 0.05)."},
    {"in_digits", set_digits, AT(in_digits), 0, 0, 0, "0 to 15",
     "Significant digits of the input (0: unrounded); the trainer takes them from the encoding."},
    {"out_digits", set_digits, AT(out_digits), 0, 0, 0, "0 to 15",
     "Significant digits of the output (0: unrounded); the trainer takes them from the encoding."},
};

#undef AT
#define NDATAGEN_KEYS ((int)(sizeof DATAGEN_KEYS / sizeof DATAGEN_KEYS[0]))

static const datagen_key *find_datagen_key(const char *name)
{
    for (int k = 0; k < NDATAGEN_KEYS; k++)
        if (strcmp(DATAGEN_KEYS[k].name, name) == 0) return &DATAGEN_KEYS[k];
    return NULL;
}

const char *datagen_key_allowed(const char *key)
{
    const datagen_key *k = find_datagen_key(key);
    return k ? k->allowed : NULL;
}

const char *datagen_key_help(const char *key)
{
    const datagen_key *k = find_datagen_key(key);
    return k ? k->help : NULL;
}

int datagen_set(datagen_config *cfg, const char *key, const char *value, char *err, size_t errcap)
{
    const datagen_key *k = find_datagen_key(key);
    if (k) return k->set(cfg, k, value, err, errcap);
    char names[256];
    size_t n = 0;
    for (int i = 0; i < NDATAGEN_KEYS; i++)
        n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                              DATAGEN_KEYS[i].name);
    return fail(err, errcap, "unknown key '%s' (allowed: %s)", key, names);
}

/* The largest plan of `task` under cfg: shapes grow with both sizes. */
static example_plan largest_plan(const datagen_config *cfg, lawt_task task)
{
    example_plan p = {task, cfg->rows_max, cfg->rows_max, cfg->bound, -1};
    if (cfg->cols_max > 0 && !is_square_task(task)) p.cols = cfg->cols_max;
    return p;
}

int datagen_validate(const datagen_config *cfg, char *err, size_t errcap)
{
    if (cfg->ntasks < 1 || cfg->ntasks > LAWT_TASK_COUNT)
        return fail(err, errcap, "task: %d tasks given (allowed: 1 to %d)", cfg->ntasks,
                    LAWT_TASK_COUNT);
    for (int i = 0; i < cfg->ntasks; i++)
        if (cfg->tasks[i] < 0 || cfg->tasks[i] >= LAWT_TASK_COUNT)
            return fail(err, errcap, "task: invalid task id %d (allowed: %s)", (int)cfg->tasks[i],
                        task_names_list());
    if (cfg->ntasks > 1 && !cfg->task_token)
        return fail(err, errcap, "task_token: several tasks (joint training) need task_token=1, "
                    "or the model cannot tell add from matmul");
    if (cfg->rows_min < 1 || cfg->rows_min > cfg->rows_max || cfg->rows_max > LAWT_MAX_DIM)
        return fail(err, errcap, "dim: range %d-%d is invalid (allowed: 1 <= N <= M <= %d)",
                    cfg->rows_min, cfg->rows_max, LAWT_MAX_DIM);
    int rectangular = cfg->cols_max != 0;
    if (rectangular &&
        (cfg->cols_min < 1 || cfg->cols_min > cfg->cols_max || cfg->cols_max > LAWT_MAX_DIM))
        return fail(err, errcap, "dim2: range %d-%d is invalid (allowed: 1 <= N <= M <= %d)",
                    cfg->cols_min, cfg->cols_max, LAWT_MAX_DIM);
    if (cfg->law < 0 || cfg->law >= COEF_LAW_COUNT)
        return fail(err, errcap, "law: invalid law id %d", (int)cfg->law);
    if (!(cfg->bound > 0) || !isfinite(cfg->bound))
        return fail(err, errcap, "bound: %g is invalid (allowed: a number > 0)", cfg->bound);
    if (!(cfg->bound_max >= 1) || !isfinite(cfg->bound_max))
        return fail(err, errcap, "bound_max: %g is invalid (allowed: a number >= 1)",
                    cfg->bound_max);
    if (!(cfg->eig_scale > 0) || !isfinite(cfg->eig_scale))
        return fail(err, errcap, "eig_scale: %g is invalid (allowed: a number > 0)",
                    cfg->eig_scale);
    if (!(cfg->noise >= 0) || !isfinite(cfg->noise))
        return fail(err, errcap, "noise: %g is invalid (allowed: a number >= 0)", cfg->noise);
    if (cfg->in_digits < 0 || cfg->in_digits > MAX_DIGITS || cfg->out_digits < 0 ||
        cfg->out_digits > MAX_DIGITS)
        return fail(err, errcap, "in_digits/out_digits: %d/%d is invalid (allowed: 0 to %d)",
                    cfg->in_digits, cfg->out_digits, MAX_DIGITS);
    for (int l = 0; l < EIG_LAW_COUNT; l++)
        if (!(cfg->eig_weights[l] >= 0) || !isfinite(cfg->eig_weights[l]))
            return fail(err, errcap, "eig_law: weight %g of %s is invalid (allowed: >= 0)",
                        cfg->eig_weights[l], eig_law_name((eig_law)l));
    for (int i = 0; i < cfg->ntasks; i++) {
        lawt_task t = cfg->tasks[i];
        if (has_eig_law(cfg) && !is_symmetric_task(t))
            return fail(err, errcap, "eig_law: applies to eigenvalues and eigenvectors only, not "
                        "to task %s", task_name(t));
        if (rectangular && is_square_task(t))
            return fail(err, errcap, "dim2: task %s has square matrices (rectangular sizes "
                        "apply to transpose, add, matvec, matmul, singularvalues, svd)",
                        task_name(t));
        example_plan p = largest_plan(cfg, t);
        int shapes[2][2];
        task_input_shape(t, p.rows, p.cols, &shapes[0][0], &shapes[0][1]);
        task_output_shape(t, p.rows, p.cols, &shapes[1][0], &shapes[1][1]);
        for (int s = 0; s < 2; s++)
            if (shapes[s][0] > LAWT_MAX_DIM || shapes[s][1] > LAWT_MAX_DIM)
                return fail(err, errcap, "dim: task %s at %dx%d has a %dx%d %s; dimension tokens "
                            "stop at V%d", task_name(t), p.rows, p.cols, shapes[s][0],
                            shapes[s][1], s ? "output" : "input", LAWT_MAX_DIM);
    }
    return 0;
}

static size_t max_coeffs(const datagen_config *cfg, int output)
{
    size_t best = 0;
    for (int i = 0; i < cfg->ntasks; i++) {
        example_plan p = largest_plan(cfg, cfg->tasks[i]);
        int r, c;
        if (output)
            task_output_shape(p.task, p.rows, p.cols, &r, &c);
        else
            task_input_shape(p.task, p.rows, p.cols, &r, &c);
        if ((size_t)r * c > best) best = (size_t)r * c;
    }
    return best;
}

size_t datagen_max_input_coeffs(const datagen_config *cfg) { return max_coeffs(cfg, 0); }
size_t datagen_max_output_coeffs(const datagen_config *cfg) { return max_coeffs(cfg, 1); }

/* Framing: EOS [task] Vm Vn coefficients EOS, the task token in the target too with
 * task_token 2. */
int datagen_max_src_len(const datagen_config *cfg, const lawt_encoding *in_enc)
{
    return 2 + (cfg->task_token ? 1 : 0) +
           encoding_matrix_length(in_enc, 1, (int)datagen_max_input_coeffs(cfg));
}

int datagen_max_tgt_len(const datagen_config *cfg, const lawt_encoding *out_enc)
{
    return 2 + (cfg->task_token == 2) +
           encoding_matrix_length(out_enc, 1, (int)datagen_max_output_coeffs(cfg));
}

decode_status datagen_decode_output(const datagen_config *cfg, const lawt_vocab *vout,
                                    lawt_task task, const int *ids, int n, lawt_matrix *m,
                                    int cap)
{
    if (cfg->task_token == 2) {
        if (n < 1 || ids[0] != vocab_task_token(vout, task)) return DECODE_MALFORMED;
        ids++;
        n--;
    }
    return decode_matrix(vout, ids, n, m, cap);
}

/* ---------------------------------------------------------------------------------------- */
/* A user's problem (lawt_solve)                                                              */

int datagen_problem_size(lawt_task task, int rows, int cols, int *m, int *n)
{
    *m = rows;
    switch (task) {
    case TASK_ADD:
    case TASK_MATMUL: *n = cols / 2; return cols % 2 || cols < 2 ? -1 : 0;
    case TASK_MATVEC: *n = cols - 1; return cols < 2 ? -1 : 0;
    default: *n = cols; break;
    }
    if (rows < 1 || cols < 1) return -1;
    return is_square_task(task) && rows != cols ? -1 : 0;
}

int datagen_solve(lawt_task task, const lawt_matrix *in, lawt_matrix *out)
{
    int m, n;
    if (task >= LAWT_TASK_COUNT || datagen_problem_size(task, in->rows, in->cols, &m, &n)) return -1;
    example_plan p = {task, m, n, 0.0, -1};
    workspace *ws = workspace_get(scratch_doubles(m, n), scratch_ints(m, n));
    return compute_output(&p, in, out, ws->d, ws->i);
}
