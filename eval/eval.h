/* eval.h: the paper's correctness checks (section 3, Appendix B) and failure analysis
 * (sections 4.5, 4.6).
 *
 * For task t, input I, correct output O and decoded prediction P, the relative error is
 *   transpose, add, matvec, matmul, eigenvalues, singular values:  |P - O| / |O|
 *   eigenvectors (P = [D ; Q]):   |Q^T I Q - diag(D)| / |diag(D)|
 *   SVD (P = [S ; U ; V]):        |U^T I V - diag(S)| / |diag(S)|
 *   inversion:                    |P I - Id| / |Id|
 * in the L1 (sum of |a_ij|), L2 (sum of a_ij^2) and Linf (max |a_ij|) norms. A prediction passes
 * at tolerance tau when err < tau (transpose: only when err == 0, the paper's exact check).
 * L2 is the paper's (Appendix B): the sum of squares with no square root, so its check is
 * sum (P-O)^2 < tau sum O^2, looser than the Frobenius check |P-O|_F < tau |O|_F (which is
 * the paper's at tau^2). Keeping Frobenius as a fourth norm would widen every eval record. */
#ifndef LAWT_EVAL_H
#define LAWT_EVAL_H

#include "common/common.h"

#define LAWT_NORMS(X)                                                                       \
    X(NORM_L1, "L1", "sum of |a_ij|")                                                       \
    X(NORM_L2, "L2", "sum of a_ij^2, no square root (the paper's, Appendix B)")             \
    X(NORM_LINF, "Linf", "max |a_ij|")
typedef enum { LAWT_NORMS(ENUM_VALUE) LAWT_NORM_COUNT } lawt_norm;
extern const enum_table NORM_TABLE;

const char *norm_name(lawt_norm norm); /* "L1", "L2", "Linf" */

/* Relative errors in the three norms. Returns 0, or -1 when P has the wrong shape for the
 * task (err is then set to +Inf, which fails every tolerance). */
int eval_relative_error(lawt_task task, const lawt_matrix *input, const lawt_matrix *target,
                        const lawt_matrix *pred, double err[LAWT_NORM_COUNT]);

/* 1 when err passes tolerance tau for the task. */
int eval_passes(lawt_task task, double err, double tau);

/* 2-norm condition number sigma_max / sigma_min (LAPACKE_dgesvd); +Inf when singular. */
double eval_condition_number(const lawt_matrix *m);

/* Condition number of the predicted eigenvector matrix Q of an eigenvectors prediction
 * [D ; Q] ((n+1) x n), the failure predictor of section 4.5; +Inf if malformed. */
double eval_eigenvectors_q_condition(const lawt_matrix *pred);

/* Accuracy accumulator over many predictions at several tolerances in one pass. */
#define EVAL_MAX_TOLERANCES 8
typedef struct {
    int ntol;
    double tol[EVAL_MAX_TOLERANCES];
    long count;                                          /* predictions seen */
    long well_formed;                                    /* decoded, with the task's shape */
    long pass[LAWT_NORM_COUNT][EVAL_MAX_TOLERANCES];     /* passes per norm and tolerance */
    double err_sum[LAWT_NORM_COUNT];                     /* sum of finite errors, for means */
} eval_tally;

void eval_tally_init(eval_tally *t, const double *tol, int ntol);
/* Adds one prediction; pred == NULL means "not well-formed" (a failure at every tolerance),
 * and so does a prediction of the wrong shape. */
void eval_tally_add(eval_tally *t, lawt_task task, const lawt_matrix *input,
                    const lawt_matrix *target, const lawt_matrix *pred);
/* Adds b's counts into a (shards of an evaluation). */
void eval_tally_merge(eval_tally *a, const eval_tally *b);
double eval_tally_accuracy(const eval_tally *t, lawt_norm norm, int tol_index); /* percent */

#endif
