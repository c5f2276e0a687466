/* lawt_inspect: a checkpoint on one screen, its parts on demand, two checkpoints compared.
 * Everything comes from checkpoint_inspect (checkpoint.h), which reads a damaged file as far
 * as it can: what is intact is shown, what is damaged is named, and the exit status says so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "curves/curves.h"

enum { EXIT_OK = 0, EXIT_DAMAGED = 1, EXIT_USAGE = 2 };
/* --diff: 0 the tensors are identical, 1 some differ, 2 trouble (usage, a damaged file). */
enum { DIFF_SAME = 0, DIFF_DIFFERENT = 1, DIFF_TROUBLE = 2 };

static const char USAGE[] =
    "usage: lawt_inspect CHECKPOINT.h5                 one screen: integrity, model, data,\n"
    "                                                  counters, evaluations, tensor statistics\n"
    "       lawt_inspect --config CHECKPOINT.h5        the stored configuration (an INI file\n"
    "                                                  for lawt_dist --config)\n"
    "       lawt_inspect --metrics CHECKPOINT.h5       the stored metrics history (JSON lines)\n"
    "       lawt_inspect --tensor NAME CHECKPOINT.h5   a tensor's values, one row a line; NAME is\n"
    "                                                  a parameter (enc.layer0.attn.qkv.weight) or\n"
    "                                                  adam/m/NAME, adam/v/NAME for the moments\n"
    "       lawt_inspect --json CHECKPOINT.h5          everything above but the values, as JSON\n"
    "       lawt_inspect --diff A.h5 B.h5              configuration, counter and per-tensor\n"
    "                                                  differences (e.g. a resumed run against a\n"
    "                                                  straight one, a GPU run against the CPU)\n"
    "\n"
    "Works on checkpoints of every format version since 1, and on damaged files as far as they\n"
    "can be read: every part (parameters, both Adam moments, configuration, metrics) is checked\n"
    "against its CRC-32 and named when damaged.\n"
    "Exit status: 0 intact, 1 damaged or unreadable, 2 bad command line. With --diff: 0 all\n"
    "tensors bit-identical, 1 some differ, 2 bad command line or a damaged file.\n";

/* ---- small helpers ---- */

/* The value of key in [section] of an INI text into buf ("" when absent). */
static void ini_get(const char *text, const char *section, const char *key, char *buf, size_t cap)
{
    buf[0] = '\0';
    char current[64] = "";
    for (const char *line = text ? text : ""; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        while (line < end && (*line == ' ' || *line == '\t')) line++;
        if (*line == '[') {
            const char *close = memchr(line, ']', (size_t)(end - line));
            size_t n = close ? (size_t)(close - line - 1) : 0;
            if (n < sizeof current) {
                memcpy(current, line + 1, n);
                current[n] = '\0';
            }
        } else if (*line != ';' && *line != '#' && strcmp(current, section) == 0) {
            const char *eq = memchr(line, '=', (size_t)(end - line));
            if (eq) {
                const char *ke = eq;
                while (ke > line && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
                if ((size_t)(ke - line) == strlen(key) && strncmp(line, key, (size_t)(ke - line)) == 0) {
                    const char *v = eq + 1, *ve = end;
                    while (v < ve && (*v == ' ' || *v == '\t')) v++;
                    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r')) ve--;
                    snprintf(buf, cap, "%.*s", (int)(ve - v), v);
                }
            }
        }
        line = *end ? end + 1 : end;
    }
}

typedef struct {
    double norm, mean, std, max_abs;
    size_t nonfinite;
} tensor_stats;

static tensor_stats stats_of(const checkpoint_tensor_data *t)
{
    tensor_stats s = {0};
    if (!t->values) return s;
    double sum = 0, sq = 0;
    size_t finite = 0;
    for (size_t i = 0; i < t->count; i++) {
        double x = t->values[i];
        if (!isfinite(x)) {
            s.nonfinite++;
            continue;
        }
        finite++;
        sum += x;
        sq += x * x;
        if (fabs(x) > s.max_abs) s.max_abs = fabs(x);
    }
    s.norm = sqrt(sq);
    if (finite) {
        s.mean = sum / (double)finite;
        double var = sq / (double)finite - s.mean * s.mean;
        s.std = var > 0 ? sqrt(var) : 0;
    }
    return s;
}

static void shape_text(const checkpoint_tensor_data *t, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < t->ndim && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, k ? "x%lld" : "%lld", t->shape[k]);
}

static void attr_text(const checkpoint_attr *a, char *buf, size_t cap)
{
    switch (a->kind) {
    case CHECKPOINT_ATTR_INT: snprintf(buf, cap, "%lld", a->i); break;
    case CHECKPOINT_ATTR_UINT:
        if (strstr(a->name, "crc32")) snprintf(buf, cap, "0x%08llx", a->u);
        else snprintf(buf, cap, "%llu", a->u);
        break;
    case CHECKPOINT_ATTR_FLOAT: snprintf(buf, cap, "%.17g", a->f); break;
    case CHECKPOINT_ATTR_STRING: snprintf(buf, cap, "%s", a->s); break;
    case CHECKPOINT_ATTR_UNREADABLE: snprintf(buf, cap, "(unreadable: %s)", a->s); break;
    }
}

static double attr_number(const checkpoint_contents *c, const char *name, double missing)
{
    const checkpoint_attr *a = checkpoint_contents_attr(c, name);
    if (!a) return missing;
    switch (a->kind) {
    case CHECKPOINT_ATTR_INT: return (double)a->i;
    case CHECKPOINT_ATTR_UINT: return (double)a->u;
    case CHECKPOINT_ATTR_FLOAT: return a->f;
    default: return missing;
    }
}

/* The attributes the summary shows in its own lines; any other one is listed as is. */
static int known_attr(const char *name)
{
    static const char *const KNOWN[] = {
        "lawt_version", "format_version", "step", "examples_seen", "epoch", "seed", "test_index",
        "lr", "best_accuracy", "wall_seconds", "num_params", "enc_layers", "dec_layers", "enc_dim",
        "dec_dim", "enc_heads", "dec_heads", "vocab_in", "vocab_out", "max_len", "arch", "rnn_layers",
        "rnn_hidden", "rnn_reverse_source", "enc_loops", "dec_loops", "loop_mode", "act_threshold",
        "ponder_cost"};
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++)
        if (strcmp(KNOWN[i], name) == 0) return 1;
    return 0;
}

static int is_part_crc(const checkpoint_contents *c, const char *name)
{
    for (int p = 0; p < CHECKPOINT_PARTS; p++)
        if (strcmp(c->parts[p].crc_attr, name) == 0) return 1;
    return 0;
}

static void print_problems(FILE *f, const char *path, const checkpoint_contents *c)
{
    if (c->problem[0]) fprintf(f, "lawt_inspect: %s: damaged: %s\n", path, c->problem);
    for (int i = 0; i < c->nattrs; i++)
        if (c->attrs[i].kind == CHECKPOINT_ATTR_UNREADABLE)
            fprintf(f, "lawt_inspect: %s: damaged: attribute %s: %s\n", path, c->attrs[i].name, c->attrs[i].s);
    for (int p = 0; p < CHECKPOINT_PARTS; p++)
        if (c->parts[p].status != CHECKPOINT_PART_OK && !c->problem[0])
            fprintf(f, "lawt_inspect: %s: damaged: /%s is %s: %s\n", path, c->parts[p].name,
                    checkpoint_part_status_name(c->parts[p].status), c->parts[p].problem);
}

/* ---- the one-screen summary ---- */

static void print_summary(const char *path, const checkpoint_contents *c)
{
    char v[300];
    printf("checkpoint %s: %s\n", path, c->damaged ? "DAMAGED (details at the end)" : "intact, every CRC-32 verified");
    const checkpoint_attr *lv = checkpoint_contents_attr(c, "lawt_version");
    printf("format     version %d%s | written by lawt %s\n", c->format_version,
           c->format_version > CHECKPOINT_FORMAT_VERSION ? " (newer than this lawt's: shown as far as understood)" : "",
           lv && lv->kind == CHECKPOINT_ATTR_STRING ? lv->s : "?");
    printf("parts     ");
    for (int p = 0; p < CHECKPOINT_PARTS; p++)
        printf("%s %s %s", p ? " |" : "", c->parts[p].name, checkpoint_part_status_name(c->parts[p].status));
    printf("\n");
    const double arch = attr_number(c, "arch", ARCH_TRANSFORMER); /* absent before format 3 */
    if (model_arch_recurrent((int)arch))
        printf("model      %s encoder-decoder: %.0f layers x %.0f hidden units a side, embeddings %.0f -> %.0f"
               "%s | vocab %.0f -> %.0f | max_len %.0f | %.0f parameters\n",
               enum_name(&MODEL_ARCH_TABLE, (int)arch), attr_number(c, "rnn_layers", NAN),
               attr_number(c, "rnn_hidden", NAN), attr_number(c, "enc_dim", NAN), attr_number(c, "dec_dim", NAN),
               attr_number(c, "rnn_reverse_source", 0) == 1 ? ", sources read backwards" : "",
               attr_number(c, "vocab_in", NAN), attr_number(c, "vocab_out", NAN), attr_number(c, "max_len", NAN),
               attr_number(c, "num_params", NAN));
    else
        printf("model      encoder %.0f layers x %.0f dims x %.0f heads, decoder %.0f x %.0f x %.0f | vocab %.0f -> %.0f"
               " | max_len %.0f | %.0f parameters\n",
               attr_number(c, "enc_layers", NAN), attr_number(c, "enc_dim", NAN), attr_number(c, "enc_heads", NAN),
               attr_number(c, "dec_layers", NAN), attr_number(c, "dec_dim", NAN), attr_number(c, "dec_heads", NAN),
               attr_number(c, "vocab_in", NAN), attr_number(c, "vocab_out", NAN), attr_number(c, "max_len", NAN),
               attr_number(c, "num_params", NAN));
    /* format_version 4 on */
    if (arch == ARCH_UNIVERSAL) {
        const double mode = attr_number(c, "loop_mode", -1);
        printf("arch       %s | encoder loops %.0f, decoder loops %.0f | loop_mode %s | "
               "act_threshold %g, ponder_cost %g\n",
               enum_name(&MODEL_ARCH_TABLE, (int)arch), attr_number(c, "enc_loops", NAN),
               attr_number(c, "dec_loops", NAN), enum_name(&MODEL_LOOP_MODE_TABLE, (int)mode),
               attr_number(c, "act_threshold", NAN), attr_number(c, "ponder_cost", NAN));
    }
    const char *cfg = c->parts[CHECKPOINT_PART_CONFIG].text;
    char task[128], dim[64], dim2[64], enc[64], out_enc[64], tolerances[128];
    ini_get(cfg, "data", "task", task, sizeof task);
    ini_get(cfg, "data", "dim", dim, sizeof dim);
    ini_get(cfg, "data", "dim2", dim2, sizeof dim2);
    ini_get(cfg, "data", "encoding", enc, sizeof enc);
    ini_get(cfg, "data", "out_encoding", out_enc, sizeof out_enc);
    ini_get(cfg, "eval", "tolerances", tolerances, sizeof tolerances);
    printf("data       task %s | dim %s%s%s | encoding %s -> %s\n", task[0] ? task : "?", dim[0] ? dim : "?",
           dim2[0] ? " x " : "", dim2, enc[0] ? enc : "?", out_enc[0] ? out_enc : enc[0] ? enc : "?");
    printf("training   step %.0f | %.0f examples seen | epoch %.0f | lr %.3g | wall %.1f s | seed %.0f | "
           "test_index %.0f\n",
           attr_number(c, "step", NAN), attr_number(c, "examples_seen", NAN), attr_number(c, "epoch", NAN),
           attr_number(c, "lr", NAN), attr_number(c, "wall_seconds", NAN), attr_number(c, "seed", NAN),
           attr_number(c, "test_index", NAN));
    double best = attr_number(c, "best_accuracy", NAN);
    if (best < 0) printf("accuracy   best: no evaluation yet\n");
    else printf("accuracy   best %.2f%% (L1, first tolerance%s%s)\n", best, tolerances[0] ? " of " : "", tolerances);
    for (int i = 0; i < c->nattrs; i++) {
        const checkpoint_attr *a = &c->attrs[i];
        if (known_attr(a->name) || is_part_crc(c, a->name)) continue;
        attr_text(a, v, sizeof v);
        printf("attribute  %s = %s\n", a->name, v);
    }

    run_curves rc;
    char err[256];
    const char *metrics = c->parts[CHECKPOINT_PART_METRICS].text;
    if (metrics && curves_parse(metrics, &rc, err, sizeof err) == 0) {
        printf("evaluations (L1 accuracy %%): %d\n", rc.neval);
        if (rc.neval) {
            printf("  %12s %9s", "examples", "step");
            for (int t = 0; t < rc.ntol; t++) {
                char tol[24];
                snprintf(tol, sizeof tol, "%s%%", rc.tol[t]);
                printf(" %8s", tol);
            }
            printf(" %11s\n", "well-formed");
            for (int e = 0; e < rc.neval; e++) {
                printf("  %12ld %9ld", rc.eval[e].examples, rc.eval[e].step);
                for (int t = 0; t < rc.ntol; t++) printf(" %8.2f", rc.eval[e].acc[NORM_L1][t]);
                printf(" %11.2f\n", rc.eval[e].well_formed);
            }
        }
        curves_free(&rc);
    } else if (metrics) {
        printf("evaluations: the metrics history does not parse: %s\n", err);
    }

    const checkpoint_part *p = &c->parts[CHECKPOINT_PART_PARAMS], *m = &c->parts[CHECKPOINT_PART_ADAM_M],
                          *s = &c->parts[CHECKPOINT_PART_ADAM_V];
    printf("tensors    %d | parameters: L2 norm, mean, std, max |x|, NaN/Inf count; Adam moments m "
           "and v: L2 norm, max |x|, NaN/Inf\n", p->ntensors);
    printf("  %-34s %-10s %9s %10s %9s %9s %3s | %9s %9s %3s | %9s %9s %3s\n", "name", "shape", "norm", "mean",
           "std", "max|x|", "bad", "m norm", "m max", "bad", "v norm", "v max", "bad");
    for (int i = 0; i < p->ntensors; i++) {
        const checkpoint_tensor_data *t = &p->tensors[i];
        char shape[48];
        shape_text(t, shape, sizeof shape);
        if (!t->values) {
            printf("  %-34s %-10s unreadable: %s\n", t->name, shape, t->problem);
            continue;
        }
        tensor_stats st = stats_of(t);
        printf("  %-34s %-10s %9.3g %10.3g %9.3g %9.3g %3zu", t->name, shape, st.norm, st.mean, st.std,
               st.max_abs, st.nonfinite);
        const checkpoint_part *moments[2] = {m, s};
        for (int k = 0; k < 2; k++) {
            const checkpoint_tensor_data *mt = NULL;
            for (int j = 0; j < moments[k]->ntensors && !mt; j++)
                if (strcmp(moments[k]->tensors[j].name, t->name) == 0) mt = &moments[k]->tensors[j];
            if (!mt || !mt->values) {
                printf(" | %23s", "(missing)");
                continue;
            }
            tensor_stats ms = stats_of(mt);
            printf(" | %9.3g %9.3g %3zu", ms.norm, ms.max_abs, ms.nonfinite);
        }
        printf("\n");
    }
}

/* ---- JSON ---- */

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*p < 0x20) printf("\\u%04x", *p);
            else putchar(*p);
        }
    }
    putchar('"');
}

/* A number JSON can hold: NaN and infinities become null. */
static void json_number(double x)
{
    if (isfinite(x)) printf("%.17g", x);
    else fputs("null", stdout);
}

static void print_json(const char *path, const checkpoint_contents *c)
{
    printf("{\"file\":");
    json_string(path);
    printf(",\"intact\":%s,\"problem\":", c->damaged ? "false" : "true");
    json_string(c->problem);
    printf(",\"format_version\":%d,\"attributes\":{", c->format_version);
    for (int i = 0; i < c->nattrs; i++) {
        const checkpoint_attr *a = &c->attrs[i];
        printf("%s", i ? "," : "");
        json_string(a->name);
        putchar(':');
        switch (a->kind) {
        case CHECKPOINT_ATTR_INT: printf("%lld", a->i); break;
        case CHECKPOINT_ATTR_UINT: printf("%llu", a->u); break;
        case CHECKPOINT_ATTR_FLOAT: json_number(a->f); break;
        case CHECKPOINT_ATTR_STRING: json_string(a->s); break;
        case CHECKPOINT_ATTR_UNREADABLE: fputs("null", stdout); break;
        }
    }
    printf("},\"parts\":{");
    for (int p = 0; p < CHECKPOINT_PARTS; p++) {
        const checkpoint_part *pt = &c->parts[p];
        printf("%s", p ? "," : "");
        json_string(pt->name);
        printf(":{\"status\":");
        json_string(checkpoint_part_status_name(pt->status));
        printf(",\"problem\":");
        json_string(pt->problem);
        printf(",\"stored_crc32\":%u,\"computed_crc32\":%u", pt->stored_crc, pt->computed_crc);
        if (pt->is_tensors) {
            printf(",\"tensors\":[");
            for (int i = 0; i < pt->ntensors; i++) {
                const checkpoint_tensor_data *t = &pt->tensors[i];
                tensor_stats st = stats_of(t);
                printf("%s{\"name\":", i ? "," : "");
                json_string(t->name);
                printf(",\"shape\":[");
                for (int k = 0; k < t->ndim; k++) printf("%s%lld", k ? "," : "", t->shape[k]);
                printf("],\"readable\":%s,\"norm\":", t->values ? "true" : "false");
                json_number(st.norm);
                printf(",\"mean\":");
                json_number(st.mean);
                printf(",\"std\":");
                json_number(st.std);
                printf(",\"max_abs\":");
                json_number(st.max_abs);
                printf(",\"nonfinite\":%zu}", st.nonfinite);
            }
            printf("]");
        } else {
            printf(",\"text\":");
            if (pt->text) json_string(pt->text);
            else fputs("null", stdout);
        }
        printf("}");
    }
    printf("}}\n");
}

/* ---- one tensor's values ---- */

static int print_tensor(const char *path, const checkpoint_contents *c, const char *name)
{
    int part = CHECKPOINT_PART_PARAMS;
    const char *bare = name;
    for (int p = 0; p < CHECKPOINT_PARTS; p++) {
        size_t n = strlen(c->parts[p].name);
        if (c->parts[p].is_tensors && strncmp(name, c->parts[p].name, n) == 0 && name[n] == '/') {
            part = p;
            bare = name + n + 1;
        }
    }
    const checkpoint_part *pt = &c->parts[part];
    for (int i = 0; i < pt->ntensors; i++) {
        const checkpoint_tensor_data *t = &pt->tensors[i];
        if (strcmp(t->name, bare) != 0) continue;
        char shape[48];
        shape_text(t, shape, sizeof shape);
        if (!t->values) {
            fprintf(stderr, "lawt_inspect: %s: /%s/%s is unreadable: %s\n", path, pt->name, t->name, t->problem);
            return EXIT_DAMAGED;
        }
        printf("# /%s/%s %s\n", pt->name, t->name, shape);
        size_t row = (size_t)t->shape[t->ndim - 1];
        for (size_t k = 0; k < t->count; k++)
            printf("%.9g%c", t->values[k], (k + 1) % row == 0 ? '\n' : ' ');
        return c->damaged ? EXIT_DAMAGED : EXIT_OK;
    }
    fprintf(stderr, "lawt_inspect: %s: no tensor %s in /%s (%d tensors there: lawt_inspect %s lists them; "
            "moments are adam/m/NAME and adam/v/NAME)\n", path, bare, pt->name, pt->ntensors, path);
    return EXIT_USAGE;
}

/* ---- --diff ---- */

/* Every "section.key" of a's INI text whose value differs in b (keys of either). */
static int diff_config(const char *a, const char *b)
{
    int differ = 0;
    const char *texts[2] = {a, b};
    for (int side = 0; side < 2; side++) {
        char section[64] = "";
        for (const char *line = texts[side] ? texts[side] : ""; *line;) {
            const char *end = strchr(line, '\n');
            if (!end) end = line + strlen(line);
            while (line < end && (*line == ' ' || *line == '\t')) line++;
            const char *eq = memchr(line, '=', (size_t)(end - line));
            if (*line == '[') {
                const char *close = memchr(line, ']', (size_t)(end - line));
                size_t n = close ? (size_t)(close - line - 1) : 0;
                if (n < sizeof section) snprintf(section, sizeof section, "%.*s", (int)n, line + 1);
            } else if (eq && *line != ';' && *line != '#') {
                const char *ke = eq;
                while (ke > line && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
                char key[128], va[512], vb[512];
                snprintf(key, sizeof key, "%.*s", (int)(ke - line), line);
                ini_get(a, section, key, va, sizeof va);
                ini_get(b, section, key, vb, sizeof vb);
                /* Keys of b only are reported from b's side; common keys from a's. */
                int report = strcmp(va, vb) != 0 && (side == 0 || va[0] == '\0');
                if (report) {
                    printf("config     %s.%s: %s | %s\n", section, key, va[0] ? va : "(absent)",
                           vb[0] ? vb : "(absent)");
                    differ++;
                }
            }
            line = *end ? end + 1 : end;
        }
    }
    return differ;
}

static int diff_attrs(const checkpoint_contents *a, const checkpoint_contents *b)
{
    int differ = 0;
    const checkpoint_contents *side[2] = {a, b};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < side[s]->nattrs; i++) {
            const checkpoint_attr *x = &side[s]->attrs[i];
            const checkpoint_attr *y = checkpoint_contents_attr(side[1 - s], x->name);
            if (s == 1 && y) continue; /* common attributes: reported once, from a's side */
            char vx[300], vy[300] = "(absent)";
            attr_text(x, vx, sizeof vx);
            if (y) attr_text(y, vy, sizeof vy);
            if (strcmp(vx, vy) != 0) {
                printf("attribute  %s: %s | %s\n", x->name, s ? vy : vx, s ? vx : vy);
                differ++;
            }
        }
    return differ;
}

/* Per part: identical tensors counted, differing ones listed with max |a - b| and
 * |a - b|_2 / |a|_2. Returns the number of tensors that differ or exist on one side only. */
static int diff_tensors(const checkpoint_part *pa, const checkpoint_part *pb)
{
    int same = 0, differ = 0;
    for (int i = 0; i < pa->ntensors; i++) {
        const checkpoint_tensor_data *x = &pa->tensors[i], *y = NULL;
        for (int j = 0; j < pb->ntensors && !y; j++)
            if (strcmp(pb->tensors[j].name, x->name) == 0) y = &pb->tensors[j];
        char sx[48], sy[48];
        shape_text(x, sx, sizeof sx);
        if (!y || !x->values || !y->values) {
            printf("tensor     /%s/%s: %s\n", pa->name, x->name, !y ? "only in A" : "unreadable");
            differ++;
            continue;
        }
        shape_text(y, sy, sizeof sy);
        if (strcmp(sx, sy) != 0) {
            printf("tensor     /%s/%s: shape %s | %s\n", pa->name, x->name, sx, sy);
            differ++;
            continue;
        }
        if (memcmp(x->values, y->values, x->count * sizeof *x->values) == 0) {
            same++;
            continue;
        }
        double d2 = 0, a2 = 0, dmax = 0;
        for (size_t k = 0; k < x->count; k++) {
            double d = (double)x->values[k] - (double)y->values[k];
            d2 += d * d;
            a2 += (double)x->values[k] * x->values[k];
            if (fabs(d) > dmax || isnan(d)) dmax = fabs(d);
        }
        printf("tensor     /%s/%s: max |a-b| %.3g, |a-b|/|a| %.3g\n", pa->name, x->name, dmax,
               a2 > 0 ? sqrt(d2 / a2) : sqrt(d2));
        differ++;
    }
    for (int j = 0; j < pb->ntensors; j++) {
        int found = 0;
        for (int i = 0; i < pa->ntensors && !found; i++) found = strcmp(pa->tensors[i].name, pb->tensors[j].name) == 0;
        if (!found) {
            printf("tensor     /%s/%s: only in B\n", pb->name, pb->tensors[j].name);
            differ++;
        }
    }
    printf("tensors    /%s: %d of %d identical (bit for bit)\n", pa->name, same, same + differ);
    return differ;
}

static int diff_files(const char *pa, const char *pb)
{
    checkpoint_contents a, b;
    int damaged_a = checkpoint_inspect(pa, &a) != 0, damaged_b = checkpoint_inspect(pb, &b) != 0;
    printf("A %s\nB %s\n", pa, pb);
    int status = DIFF_SAME;
    if (damaged_a) print_problems(stdout, pa, &a);
    if (damaged_b) print_problems(stdout, pb, &b);
    if (!a.problem[0] && !b.problem[0]) {
        int nc = diff_config(a.parts[CHECKPOINT_PART_CONFIG].text, b.parts[CHECKPOINT_PART_CONFIG].text);
        int na = diff_attrs(&a, &b);
        if (nc + na == 0) printf("config and attributes: identical\n");
        int nt = 0;
        for (int p = 0; p < CHECKPOINT_PARTS; p++)
            if (a.parts[p].is_tensors) nt += diff_tensors(&a.parts[p], &b.parts[p]);
        printf("%s\n", nt ? "tensors differ" : "all tensors identical");
        if (nt) status = DIFF_DIFFERENT;
    }
    if (damaged_a || damaged_b) status = DIFF_TROUBLE;
    checkpoint_contents_free(&a);
    checkpoint_contents_free(&b);
    return status;
}

int main(int argc, char **argv)
{
    const char *mode = NULL, *tensor = NULL, *files[2] = {NULL, NULL};
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return EXIT_OK;
        }
        if (strcmp(a, "--config") == 0 || strcmp(a, "--metrics") == 0 || strcmp(a, "--json") == 0 ||
            strcmp(a, "--diff") == 0 || strcmp(a, "--tensor") == 0) {
            if (mode) {
                fprintf(stderr, "lawt_inspect: %s and %s: one at a time (see --help)\n", mode, a);
                return EXIT_USAGE;
            }
            mode = a;
            if (strcmp(a, "--tensor") == 0) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "lawt_inspect: --tensor needs a NAME (see --help)\n");
                    return EXIT_USAGE;
                }
                tensor = argv[++i];
            }
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "lawt_inspect: unknown option %s (see --help)\n", a);
            return EXIT_USAGE;
        } else if (nfiles < 2) {
            files[nfiles++] = a;
        } else {
            fprintf(stderr, "lawt_inspect: too many files: %s (see --help)\n", a);
            return EXIT_USAGE;
        }
    }
    int diff = mode && strcmp(mode, "--diff") == 0;
    if (nfiles != (diff ? 2 : 1)) {
        fprintf(stderr, "lawt_inspect: %s (see --help)\n",
                diff ? "--diff needs two checkpoints" : "one checkpoint, please");
        return EXIT_USAGE;
    }
    if (diff) return diff_files(files[0], files[1]);

    checkpoint_contents c;
    checkpoint_inspect(files[0], &c);
    int status = c.damaged ? EXIT_DAMAGED : EXIT_OK;
    if (mode && strcmp(mode, "--json") == 0) {
        print_json(files[0], &c);
    } else if (c.problem[0] && c.nattrs == 0) {
        print_problems(stderr, files[0], &c);
    } else if (!mode) {
        print_summary(files[0], &c);
        if (c.damaged) print_problems(stdout, files[0], &c);
    } else if (strcmp(mode, "--tensor") == 0) {
        status = print_tensor(files[0], &c, tensor);
    } else {
        const checkpoint_part *p = &c.parts[strcmp(mode, "--config") == 0 ? CHECKPOINT_PART_CONFIG : CHECKPOINT_PART_METRICS];
        if (p->text) fputs(p->text, stdout);
    }
    if (c.damaged && mode && strcmp(mode, "--tensor") != 0) print_problems(stderr, files[0], &c);
    checkpoint_contents_free(&c);
    return status;
}
