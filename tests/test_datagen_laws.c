/* test_datagen_laws: the coefficient laws (std A/sqrt(3), shape), the Wigner eigenvalue
 * standard deviations of Appendix H, and the special eigenvalue laws of section 2.2 (mean,
 * rms, sign pattern, shape, mixtures, eig_scale). */
#include "datagen/datagen.h"
#include "tests/test.h"

#include <string.h>

typedef struct {
    double n, sum, sum2, sum4, min, max;
} moments;

static void add(moments *m, double x)
{
    if (m->n == 0) m->min = m->max = x;
    m->n++;
    m->sum += x;
    m->sum2 += x * x;
    m->sum4 += x * x * x * x;
    m->min = fmin(m->min, x);
    m->max = fmax(m->max, x);
}

static double mean(const moments *m) { return m->sum / m->n; }
static double rms(const moments *m) { return sqrt(m->sum2 / m->n); }
static double std_dev(const moments *m) { return sqrt(m->sum2 / m->n - mean(m) * mean(m)); }
/* Of a centered law: E[x^4] / E[x^2]^2 (uniform 1.8, gaussian 3, Laplace 6). */
static double kurtosis(const moments *m) { return (m->sum4 / m->n) / pow(m->sum2 / m->n, 2); }

static datagen_config config(const char *task, const char *dim, const char *law,
                             const char *eig_law)
{
    datagen_config cfg;
    char err[256];
    datagen_default(&cfg);
    if (datagen_set(&cfg, "task", task, err, sizeof err) != 0 ||
        datagen_set(&cfg, "dim", dim, err, sizeof err) != 0 ||
        datagen_set(&cfg, "law", law, err, sizeof err) != 0 ||
        (eig_law && datagen_set(&cfg, "eig_law", eig_law, err, sizeof err) != 0) ||
        datagen_validate(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "bad test config: %s\n", err);
        exit(1);
    }
    return cfg;
}

static double in_buf[100 * 100], out_buf[101 * 100];

/* Moments of the eigenvalues (eigenvalues task) or of the input coefficients of `count`
 * examples; *all_nonneg counts the matrices whose eigenvalues are all >= 0. */
static moments sample(const datagen_config *cfg, int count, int inputs, int *all_nonneg,
                      int *redraws)
{
    moments m = {0};
    lawt_matrix in = {0, 0, in_buf}, out = {0, 0, out_buf};
    if (all_nonneg) *all_nonneg = 0;
    if (redraws) *redraws = 0;
    for (int i = 0; i < count; i++) {
        int r = datagen_example(cfg, 11, STREAM_TRAIN, (uint64_t)i, &in, &out, NULL);
        if (redraws) *redraws += r;
        const lawt_matrix *x = inputs ? &in : &out;
        int nonneg = 1;
        for (int k = 0; k < x->rows * x->cols; k++) {
            add(&m, x->a[k]);
            nonneg &= x->a[k] >= 0;
        }
        if (all_nonneg) *all_nonneg += nonneg;
    }
    return m;
}

static void test_coefficient_laws(void)
{
    static const struct {
        const char *law;
        double kurtosis;
    } LAWS[] = {{"uniform", 1.8}, {"gaussian", 3.0}, {"laplace", 6.0}};
    for (int l = 0; l < 3; l++) {
        datagen_config cfg = config("transpose", "10", LAWS[l].law, NULL);
        cfg.in_digits = cfg.out_digits = 0;
        moments m = sample(&cfg, 5000, 1, NULL, NULL); /* 500,000 coefficients */
        double want = 10 / sqrt(3.0);
        CHECK_MSG(fabs(std_dev(&m) / want - 1) < 0.01, "%s coefficients: std %g, want %g",
                  LAWS[l].law, std_dev(&m), want);
        CHECK_MSG(fabs(mean(&m)) < 0.02, "%s coefficients: mean %g", LAWS[l].law, mean(&m));
        CHECK_MSG(fabs(kurtosis(&m) / LAWS[l].kurtosis - 1) < 0.05, "%s coefficients: kurtosis %g",
                  LAWS[l].law, kurtosis(&m));
        if (l == 0) CHECK(m.min >= -10 && m.max <= 10 && m.min < -9.99 && m.max > 9.99);
    }
    /* A' uniform in [1, 100] per matrix: E[x^2] = E[A'^2] / 3, E[A'^2] = (100^3 - 1) / (3 * 99). */
    datagen_config cfg = config("transpose", "5", "uniform_mixed", NULL);
    moments m = sample(&cfg, 40000, 1, NULL, NULL);
    double want = sqrt((1e6 - 1) / (3 * 99.0) / 3);
    CHECK_MSG(fabs(rms(&m) / want - 1) < 0.02, "uniform_mixed: rms %g, want %g", rms(&m), want);
    CHECK(m.max <= 100 && m.min >= -100 && m.max > 90);

    /* Table 20's [1, 1000]: bound_max 1000, E[A'^2] = (1000^3 - 1) / (3 * 999). */
    char err[256];
    CHECK(datagen_set(&cfg, "bound_max", "0.5", err, sizeof err) == -1 && strstr(err, "bound_max"));
    CHECK(datagen_set(&cfg, "bound_max", "1000", err, sizeof err) == 0 && cfg.bound_max == 1000);
    CHECK(datagen_validate(&cfg, err, sizeof err) == 0);
    m = sample(&cfg, 40000, 1, NULL, NULL);
    want = sqrt((1e9 - 1) / (3 * 999.0) / 3);
    CHECK_MSG(fabs(rms(&m) / want - 1) < 0.02, "uniform_mixed [1, 1000]: rms %g, want %g", rms(&m),
              want);
    CHECK(m.max <= 1000 && m.min >= -1000 && m.max > 900);
    printf("uniform_mixed A' in [1, 1000]: rms %.2f (want %.2f), max %.1f\n", rms(&m), want, m.max);
}

/* Appendix H: the eigenvalue std of a Wigner matrix is A sqrt(n/3) (12.91, 18.26, 22.36, 25.81
 * for n = 5, 10, 15, 20), whatever the law of its coefficients. */
static void test_appendix_h(void)
{
    static const char *const LAWS[] = {"uniform", "gaussian", "laplace"};
    static const struct {
        const char *dim;
        int n, count;
        double expected;
    } SIZES[] = {{"5", 5, 100000, 12.91},
                 {"10", 10, 100000, 18.26},
                 {"15", 15, 6000, 22.36},
                 {"20", 20, 4000, 25.81}};
    for (int s = 0; s < 4; s++)
        for (int l = 0; l < 3; l++) {
            datagen_config cfg = config("eigenvalues", SIZES[s].dim, LAWS[l], NULL);
            moments m = sample(&cfg, SIZES[s].count, 0, NULL, NULL);
            CHECK_MSG(fabs(std_dev(&m) / SIZES[s].expected - 1) < 0.01,
                      "Appendix H, n = %d, %s: std %.3f, expected %.2f", SIZES[s].n, LAWS[l],
                      std_dev(&m), SIZES[s].expected);
            printf("Appendix H: n = %2d, %-8s %6d matrices: eigenvalue std %.3f (expected %.2f)\n",
                   SIZES[s].n, LAWS[l], SIZES[s].count, std_dev(&m), SIZES[s].expected);
        }
}

static void test_eig_laws(void)
{
    const int n = 5, count = 20000;
    const double sigma = 10 * sqrt(n / 3.0);
    /* Marchenko-Pastur, W^T W with W n x n: mean sigma sqrt(n / (2n + 1)). */
    const double mp_mean = sigma * sqrt(n / (2.0 * n + 1));
    static const struct {
        const char *law;
        int positive;
        double kurtosis; /* 0: not checked */
    } LAWS[] = {{"semicircle", 0, 0}, {"positive", 1, 0},  {"uniform", 0, 1.8},
                {"gaussian", 0, 3.0}, {"laplace", 0, 6.0}, {"marchenko_pastur", 1, 0},
                {"abs_laplace", 1, 0}};
    for (int l = 0; l < 7; l++) {
        datagen_config cfg = config("eigenvalues", "5", "uniform", LAWS[l].law);
        int nonneg, redraws;
        moments m = sample(&cfg, count, 0, &nonneg, &redraws);
        printf("eig_law %-16s mean %7.3f rms %7.3f min %8.3f max %7.3f kurtosis %5.2f redraws "
               "%.2f%%\n",
               LAWS[l].law, mean(&m), rms(&m), m.min, m.max, kurtosis(&m), 100.0 * redraws / count);
        CHECK_MSG(fabs(rms(&m) / sigma - 1) < 0.02, "%s: rms %g, want %g", LAWS[l].law, rms(&m),
                  sigma);
        if (LAWS[l].positive) {
            CHECK_MSG(m.min >= 0 && nonneg == count, "%s: negative eigenvalue %g", LAWS[l].law,
                      m.min);
            CHECK_MSG(redraws < count / 10, "%s: %d redraws for %d matrices", LAWS[l].law, redraws,
                      count);
        } else {
            CHECK_MSG(fabs(mean(&m)) < 0.02 * sigma, "%s: mean %g", LAWS[l].law, mean(&m));
            CHECK_MSG(m.min < 0 && nonneg < count / 10, "%s: sign pattern", LAWS[l].law);
        }
        if (LAWS[l].kurtosis > 0)
            CHECK_MSG(fabs(kurtosis(&m) / LAWS[l].kurtosis - 1) < 0.08, "%s: kurtosis %g, want %g",
                      LAWS[l].law, kurtosis(&m), LAWS[l].kurtosis);
        /* uniform: in [-sigma sqrt(3), sigma sqrt(3)], up to the output rounding */
        if (strcmp(LAWS[l].law, "uniform") == 0)
            CHECK(m.max <= sigma * sqrt(3.0) * 1.005 && m.min >= -sigma * sqrt(3.0) * 1.005 &&
                  m.max > sigma * sqrt(3.0) * 0.99);
        if (strcmp(LAWS[l].law, "positive") == 0) /* |semicircle|: mean about 0.85 sigma */
            CHECK_MSG(mean(&m) > 0.7 * sigma && mean(&m) < 0.95 * sigma, "positive: mean %g",
                      mean(&m));
        /* |Laplace| of scale b = sigma / sqrt(2) is exponential: mean and std both b. */
        if (strcmp(LAWS[l].law, "abs_laplace") == 0)
            CHECK_MSG(fabs(mean(&m) / (sigma / sqrt(2.0)) - 1) < 0.02 &&
                          fabs(std_dev(&m) / (sigma / sqrt(2.0)) - 1) < 0.03,
                      "abs_laplace: mean %g, std %g, want both %g", mean(&m), std_dev(&m),
                      sigma / sqrt(2.0));
        if (strcmp(LAWS[l].law, "marchenko_pastur") == 0)
            CHECK_MSG(fabs(mean(&m) / mp_mean - 1) < 0.02, "marchenko_pastur: mean %g, want %g",
                      mean(&m), mp_mean);
    }

    /* eig_scale is the ratio of the rms to the Wigner sigma; bound scales it too. */
    datagen_config cfg = config("eigenvalues", "5", "uniform", "laplace");
    cfg.eig_scale = 0.6;
    moments m = sample(&cfg, count, 0, NULL, NULL);
    CHECK_MSG(fabs(rms(&m) / (0.6 * sigma) - 1) < 0.02, "eig_scale 0.6: rms %g", rms(&m));
    cfg.eig_scale = 1;
    cfg.bound = 3;
    m = sample(&cfg, count, 0, NULL, NULL);
    CHECK_MSG(fabs(rms(&m) / (0.3 * sigma) - 1) < 0.02, "bound 3: rms %g", rms(&m));

    /* A mixture picks one law per matrix: positive with probability 1/4, Laplace otherwise
     * (whose 5 eigenvalues are all >= 0 with probability 1/32). */
    cfg = config("eigenvalues", "5", "uniform", "positive:1,laplace:3");
    int nonneg;
    sample(&cfg, count, 0, &nonneg, NULL);
    double frac = (double)nonneg / count, want = 0.25 + 0.75 / 32;
    CHECK_MSG(fabs(frac - want) < 0.015, "mixture: %g of the matrices positive, want %g", frac,
              want);

    /* wigner alone is the plain Wigner input, example for example. */
    datagen_config plain = config("eigenvalues", "5", "uniform", NULL);
    cfg = config("eigenvalues", "5", "uniform", "wigner");
    static double plain_buf[100 * 100];
    for (int i = 0; i < 200; i++) {
        lawt_matrix a = {0, 0, in_buf}, b = {0, 0, plain_buf}, o = {0, 0, out_buf};
        datagen_example(&cfg, 5, STREAM_TRAIN, (uint64_t)i, &a, &o, NULL);
        datagen_example(&plain, 5, STREAM_TRAIN, (uint64_t)i, &b, &o, NULL);
        CHECK_MSG(memcmp(a.a, b.a, sizeof(double) * 25) == 0, "wigner: example %d differs", i);
    }
    /* In a mixture, wigner keeps the Wigner rms sigma (eig_scale does not apply to it) while
     * abs_laplace has eig_scale sigma: with weights 1:1 and eig_scale 0.5, rms^2 = 0.625
     * sigma^2; half the matrices are abs_laplace (all >= 0), Wigner ones almost never are. */
    cfg = config("eigenvalues", "5", "uniform", "wigner:1,abs_laplace:1");
    cfg.eig_scale = 0.5;
    m = sample(&cfg, count, 0, &nonneg, NULL);
    CHECK_MSG(fabs(rms(&m) / (sqrt(0.625) * sigma) - 1) < 0.02, "wigner:1,abs_laplace:1: rms %g, want %g",
              rms(&m), sqrt(0.625) * sigma);
    frac = (double)nonneg / count;
    CHECK_MSG(fabs(frac - 0.5) < 0.015, "wigner:1,abs_laplace:1: %g of the matrices positive", frac);
    printf("mixture wigner:1,abs_laplace:1 (eig_scale 0.5): rms %.3f (want %.3f), %.3f positive\n",
           rms(&m), sqrt(0.625) * sigma, frac);

    /* Eigenvectors of special-law inputs still rebuild them. */
    cfg =
        config("eigenvectors", "6", "uniform", "gaussian:1,uniform:1,laplace:1,marchenko_pastur:1");
    cfg.out_digits = 0;
    lawt_matrix in = {0, 0, in_buf}, out = {0, 0, out_buf};
    double worst = 0;
    for (int i = 0; i < 500; i++) {
        datagen_example(&cfg, 2, STREAM_OOD, (uint64_t)i, &in, &out, NULL);
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 6; c++) {
                double s = 0;
                for (int k = 0; k < 6; k++)
                    s += MAT(&out, 1 + r, k) * out.a[k] * MAT(&out, 1 + c, k);
                worst = fmax(worst, fabs(s - MAT(&in, r, c)) / sigma);
            }
    }
    CHECK_MSG(worst < 1e-12, "special laws: Q D Q^T misses the input by %g sigma", worst);
}

int main(void)
{
    test_coefficient_laws();
    test_appendix_h();
    test_eig_laws();
    return test_report("test_datagen_laws");
}
