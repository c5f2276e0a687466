/* bench_datagen: examples/s and tokens/s of datagen_tokens on one core, for every task at 5x5
 * and 10x10 with P1000 in and out (target: >= 50,000 examples/s for every 5x5 task). Rates
 * are per CPU second of the generating thread (datagen keeps OpenBLAS single-threaded), so
 * they are one core's rate even when other processes share the machine. Prints a
 * table and appends it to bench/RESULTS.md with the date, machine and commit.
 *
 * usage: bench_datagen [--seconds S] [--results PATH | --no-results] */
#include "bench/machine.h"
#include "datagen/datagen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *label;
    const char *task;
    const char *eig_law; /* NULL: plain Wigner / default law */
    int dim;
} bench_case;

typedef struct {
    double examples_per_s, tokens_per_s; /* per CPU second of this thread */
    double wall_over_cpu;                /* > 1 when other processes share the core */
} bench_result;

/* CPU time of the calling thread: a per-core rate that holds on a busy machine too. */
static double thread_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bench_result run_case(const bench_case *bc, const lawt_vocab *v, double seconds)
{
    datagen_config cfg;
    datagen_default(&cfg);
    char dim[16], err[256];
    snprintf(dim, sizeof dim, "%d", bc->dim);
    if (datagen_set(&cfg, "task", bc->task, err, sizeof err) != 0 ||
        datagen_set(&cfg, "dim", dim, err, sizeof err) != 0 ||
        (bc->eig_law && datagen_set(&cfg, "eig_law", bc->eig_law, err, sizeof err) != 0) ||
        datagen_validate(&cfg, err, sizeof err) != 0)
        lawt_die("bench_datagen: %s", err);
    int *src = lawt_malloc(sizeof(int) * (size_t)datagen_max_src_len(&cfg, &v->enc));
    int *tgt = lawt_malloc(sizeof(int) * (size_t)datagen_max_tgt_len(&cfg, &v->enc));
    lawt_matrix in = {0, 0, lawt_malloc(sizeof(double) * datagen_max_input_coeffs(&cfg))};
    lawt_matrix out = {0, 0, lawt_malloc(sizeof(double) * datagen_max_output_coeffs(&cfg))};
    uint64_t index = 0, tokens = 0;
    int src_len, tgt_len;
    for (; index < 1000; index++) /* warm-up: workspace, caches */
        datagen_tokens(&cfg, v, v, 1, STREAM_TRAIN, index, src, &src_len, tgt, &tgt_len, &in, &out,
                       NULL);
    uint64_t first = index;
    double wall0 = lawt_now(), cpu0 = thread_cpu_seconds(), cpu;
    do {
        for (int k = 0; k < 1000; k++, index++) {
            datagen_tokens(&cfg, v, v, 1, STREAM_TRAIN, index, src, &src_len, tgt, &tgt_len, &in,
                           &out, NULL);
            tokens += (uint64_t)(src_len + tgt_len);
        }
        cpu = thread_cpu_seconds() - cpu0;
    } while (cpu < seconds);
    double wall = lawt_now() - wall0;
    free(src);
    free(tgt);
    free(in.a);
    free(out.a);
    return (bench_result){(double)(index - first) / cpu, (double)tokens / cpu, wall / cpu};
}

int main(int argc, char **argv)
{
    double seconds = 0.5;
    const char *results = LAWT_BENCH_RESULTS;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--results") == 0 && i + 1 < argc)
            results = argv[++i];
        else if (strcmp(argv[i], "--no-results") == 0)
            results = NULL;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: bench_datagen [--seconds S] [--results PATH | --no-results]\n"
                   "Examples/s of every task's generator on one core (5x5 and 10x10, P1000);\n"
                   "--seconds: CPU seconds per row (default 0.5); appends the table to %s.\n",
                   LAWT_BENCH_RESULTS);
            return 0;
        } else
            lawt_die("bench_datagen: unknown argument '%s' (usage: bench_datagen [--seconds S] "
                     "[--results PATH | --no-results])",
                     argv[i]);
    }
    if (!(seconds > 0)) lawt_die("bench_datagen: --seconds must be > 0");

    static const bench_case CASES[] = {
        {"transpose", "transpose", NULL, 0},
        {"add", "add", NULL, 0},
        {"matvec", "matvec", NULL, 0},
        {"matmul", "matmul", NULL, 0},
        {"eigenvalues", "eigenvalues", NULL, 0},
        {"eigenvalues, eig_law laplace", "eigenvalues", "laplace", 0},
        {"eigenvectors", "eigenvectors", NULL, 0},
        {"singularvalues", "singularvalues", NULL, 0},
        {"svd", "svd", NULL, 0},
        {"inversion", "inversion", NULL, 0},
    };
    enum { NCASES = sizeof CASES / sizeof CASES[0] };
    static const int DIMS[2] = {5, 10};
    lawt_encoding enc;
    encoding_from_name("P1000", &enc);
    lawt_vocab v;
    vocab_init(&v, &enc);

    char table[8192];
    size_t len = 0;
    len += (size_t)snprintf(
        table + len, sizeof table - len,
        "| task | size | examples/s | tokens/s | us/example | wall/cpu |\n"
        "|---|---|---:|---:|---:|---:|\n");
    double worst5 = 1e300;
    for (int c = 0; c < NCASES; c++)
        for (int d = 0; d < 2; d++) {
            bench_case bc = CASES[c];
            bc.dim = DIMS[d];
            bench_result r = run_case(&bc, &v, seconds);
            if (bc.dim == 5 && r.examples_per_s < worst5) worst5 = r.examples_per_s;
            len += (size_t)snprintf(table + len, sizeof table - len,
                                    "| %s | %dx%d | %.0f | %.0f | %.2f | %.2f |\n", bc.label,
                                    bc.dim, bc.dim, r.examples_per_s, r.tokens_per_s,
                                    1e6 / r.examples_per_s, r.wall_over_cpu);
        }
    vocab_free(&v);

    run_stamp st;
    run_stamp_now(&st);
    char cpu[256];
    cpu_model_name(cpu, sizeof cpu);
    char header[1024];
    snprintf(header, sizeof header,
             "## bench_datagen, %s\n\nmachine `%s`, CPU %s, commit %s%s; one thread, P1000 in and "
             "out, %.1f CPU s per row; rates per CPU second of the generating thread (wall/cpu > 1: "
             "the core was shared). Slowest 5x5 task: %.0f examples/s (target 50,000).\n\n",
             st.date, st.host, cpu, st.commit, st.dirty, seconds, worst5);
    fputs(header, stdout);
    fputs(table, stdout);
    if (results) {
        FILE *f = fopen(results, "a");
        if (!f) lawt_die("bench_datagen: cannot append to %s", results);
        fprintf(f, "\n%s%s", header, table);
        fclose(f);
        printf("\nappended to %s\n", results);
    }
    return 0;
}
