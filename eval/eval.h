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

/* |P - O| / |O| in the three norms, P and O of the same shape (-1 otherwise, err +Inf): the
 * direct check of every task but the decompositions and inversion, and for inversion the
 * distance to M^-1 that section 4.6 reports beside the paper's |PM - Id| check. */
int eval_direct_error(const lawt_matrix *target, const lawt_matrix *pred,
                      double err[LAWT_NORM_COUNT]);

/* The eigenvalues of an eigenvectors prediction P = [D ; Q] against the true ones (the first
 * row of target): predicted, |D - d| / |d|; implied, the same for the Rayleigh quotients
 * q_j^T I q_j / q_j^T q_j of Q's columns, the eigenvalues Q stands for (sections 4.5: failures
 * keep the eigenvalues right). Returns 0, or -1 (errors +Inf) when P is not (n+1) x n. */
int eval_eigenvalue_errors(const lawt_matrix *input, const lawt_matrix *target,
                           const lawt_matrix *pred, double predicted[LAWT_NORM_COUNT],
                           double implied[LAWT_NORM_COUNT]);

/* 1 when err passes tolerance tau for the task. */
int eval_passes(lawt_task task, double err, double tau);

/* 2-norm condition number sigma_max / sigma_min (LAPACKE_dgesvd); +Inf when singular. */
double eval_condition_number(const lawt_matrix *m);

/* Condition number of the predicted eigenvector matrix Q of an eigenvectors prediction
 * [D ; Q] ((n+1) x n), the failure predictor of section 4.5; +Inf if malformed. */
double eval_eigenvectors_q_condition(const lawt_matrix *pred);

/* One example for failure studies (lawt_dist --evaluate --dump), as the members of a JSON
 * object (no braces) appended to out: "task", "input", "target", "prediction" (null when it did
 * not decode), "well_formed", "error" (the paper's relative error per norm; null when not
 * well-formed; non-finite numbers are null), "pass" (per norm and tolerance, tolerances in
 * percent), "cond" (condition number of a square input), "q_cond" (eigenvectors: of the
 * predicted Q) and "inverse_error" (inversion: |P - M^-1| / |M^-1| per norm). out needs
 * eval_example_json_size bytes at most. */
void eval_example_json(lawt_text *out, lawt_task task, const lawt_matrix *input,
                       const lawt_matrix *target, const lawt_matrix *pred, const double *tol,
                       int ntol);
size_t eval_example_json_size(const lawt_matrix *input, const lawt_matrix *target);

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
/* Adds one prediction by its errors (from any check); err == NULL: not well-formed. */
void eval_tally_add_error(eval_tally *t, lawt_task task, const double err[LAWT_NORM_COUNT]);
/* Adds b's counts into a (shards of an evaluation). */
void eval_tally_merge(eval_tally *a, const eval_tally *b);
double eval_tally_accuracy(const eval_tally *t, lawt_norm norm, int tol_index); /* percent */

#endif
