/* config.c: the experiment configuration. One table holds every key: its section, type,
 * default, allowed values and meaning; parsing, checking, --help-config and jobs/README.md all
 * come from it. INI files are read with inih. */
#include "trainer/trainer.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "encoding/encoding.h"
#include "model/model.h"

typedef enum {
    KEY_INT,        /* int field in [min, max] */
    KEY_LONG,       /* long field in [min, max]; max >= BIG: no maximum */
    KEY_SEED,       /* uint64_t field */
    KEY_REAL,       /* double field in [min, max], ends excluded as `open` says; max >= BIG:
                       no maximum */
    KEY_CHOICE,     /* int field: the index of the value in choices "a|b|c" */
    KEY_TEXT,       /* char[CONFIG_TEXT_MAX] field, any text */
    KEY_ENCODING,   /* char[CONFIG_TEXT_MAX] field, an encoding name (or empty when allowed) */
    KEY_TOLERANCES, /* char[CONFIG_TEXT_MAX] field, a list of percents: also fills tol/ntol */
    KEY_DATA,       /* set by datagen_set, whose table has its allowed values and meaning */
    KEY_ALIAS,      /* no field and no value of its own: sets each key named in choices */
} key_type;

typedef struct {
    const char *section, *name;
    key_type type;
    const char *default_value;
    size_t offset; /* of the field in trainer_config */
    double min, max;
    int open; /* KEY_REAL: OPEN_MIN and/or OPEN_MAX, the ends the interval excludes */
    /* KEY_CHOICE: "a|b|c", made from the enumeration's table (ENUM_NAME_PIPED), so that
     * the index of a name is its value; KEY_ALIAS: "key1,key2"; KEY_ENCODING: non-NULL when
     * empty is allowed. */
    const char *choices;
    const char *doc;
} config_key;

ENUM_TABLE_DEFINE(LR_SCHEDULE_TABLE, LR_SCHEDULES);
enum { OPEN_MIN = 1, OPEN_MAX = 2 };

#define F(field) offsetof(trainer_config, field)
#define BIG 1e18

static const config_key KEYS[] = {
    {"data", "task", KEY_DATA, "transpose", 0, 0, 0, 0, NULL, NULL},
    {"data", "dim", KEY_DATA, "5", 0, 0, 0, 0, NULL, NULL},
    {"data", "dim2", KEY_DATA, "", 0, 0, 0, 0, NULL, NULL},
    {"data", "law", KEY_DATA, "uniform", 0, 0, 0, 0, NULL, NULL},
    {"data", "bound", KEY_DATA, "10", 0, 0, 0, 0, NULL, NULL},
    {"data", "bound_max", KEY_DATA, "100", 0, 0, 0, 0, NULL, NULL},
    {"data", "eig_law", KEY_DATA, "", 0, 0, 0, 0, NULL, NULL},
    {"data", "eig_scale", KEY_DATA, "1", 0, 0, 0, 0, NULL, NULL},
    {"data", "noise", KEY_DATA, "0", 0, 0, 0, 0, NULL, NULL},
    {"data", "task_token", KEY_DATA, "", 0, 0, 0, 0, NULL, NULL},
    {"data", "encoding", KEY_ENCODING, "P1000", F(encoding), 0, 0, 0, NULL,
     "Encoding of the input: P10, P100, P1000, P10000, B1999, FP15 (Appendix A, C)."},
    {"data", "out_encoding", KEY_ENCODING, "", F(out_encoding), 0, 0, 0, "empty",
     "Encoding of the output; empty: the input's."},

    {"model", "arch", KEY_CHOICE, "transformer", F(arch), 0, 0, 0,
     &LAWT_ARCHS(ENUM_NAME_PIPED)[1],
     "Architecture: the paper's transformer, or Appendix E.1's LSTM or GRU encoder-decoder "
     "(rnn_layers, rnn_hidden; dim is their embedding size, heads are not used), or Appendix "
     "E.2's universal transformer (one encoder and/or decoder layer looped enc_loops / "
     "dec_loops times, weights shared)."},
    {"model", "layers", KEY_ALIAS, NULL, 0, 0, 0, 0, "enc_layers,dec_layers",
     "Sets enc_layers and dec_layers (a later enc_/dec_ line overrides)."},
    {"model", "dim", KEY_ALIAS, NULL, 0, 0, 0, 0, "enc_dim,dec_dim", "Sets enc_dim and dec_dim."},
    {"model", "heads", KEY_ALIAS, NULL, 0, 0, 0, 0, "enc_heads,dec_heads",
     "Sets enc_heads and dec_heads."},
    {"model", "enc_layers", KEY_INT, "1", F(enc_layers), 1, 256, 0, NULL, "Encoder layers."},
    {"model", "dec_layers", KEY_INT, "1", F(dec_layers), 1, 256, 0, NULL, "Decoder layers."},
    {"model", "enc_dim", KEY_INT, "512", F(enc_dim), 1, 65536, 0, NULL,
     "Encoder dimension (a multiple of enc_heads)."},
    {"model", "dec_dim", KEY_INT, "512", F(dec_dim), 1, 65536, 0, NULL,
     "Decoder dimension (a multiple of dec_heads)."},
    {"model", "enc_heads", KEY_INT, "8", F(enc_heads), 1, 1024, 0, NULL,
     "Encoder attention heads."},
    {"model", "dec_heads", KEY_INT, "8", F(dec_heads), 1, 1024, 0, NULL,
     "Decoder attention heads."},
    {"model", "recompute", KEY_CHOICE, "none", F(recompute), 0, 0, 0, "none|ffn|layer",
     "Activation recomputation, for models that do not fit otherwise: ffn recomputes the "
     "feed-forward hidden units in backward, layer every layer's activations from its input "
     "(each layer keeps only its output); same gradients, less memory, more time."},
    {"model", "enc_loops", KEY_INT, "0", F(enc_loops), 0, 1024, 0, NULL,
     "universal: iterations of the encoder's one shared layer (enc_layers = 1); 0: the encoder "
     "is a plain stack."},
    {"model", "dec_loops", KEY_INT, "0", F(dec_loops), 0, 1024, 0, NULL,
     "universal: iterations of the decoder's one shared layer (dec_layers = 1); 0: the decoder "
     "is a plain stack."},
    {"model", "loop_mode", KEY_CHOICE, "fixed", F(loop_mode), 0, 0, 0,
     &MODEL_LOOP_MODES(ENUM_NAME_PIPED)[1],
     "universal: fixed (every iteration), gated (copy gate, Csordas et al. 2021: "
     "x' = g layer(x) + (1 - g) x) or act (adaptive computation time, loops iterations at "
     "most)."},
    {"model", "act_threshold", KEY_REAL, "0.99", F(act_threshold), 0, 1, OPEN_MIN, NULL,
     "loop_mode = act: a position halts once its halting probabilities sum to this."},
    {"model", "ponder_cost", KEY_REAL, "0.01", F(ponder_cost), 0, BIG, 0, NULL,
     "loop_mode = act: tau, the weight in the loss of each counted position's N + R (iterations "
     "and remainder, Graves 2016)."},
    {"model", "rnn_layers", KEY_INT, "2", F(rnn_layers), 1, 256, 0, NULL,
     "Layers of the encoder and of the decoder of arch = lstm | gru (the paper: 2 to 8)."},
    {"model", "rnn_hidden", KEY_INT, "1024", F(rnn_hidden), 1, 65536, 0, NULL,
     "Hidden units of each layer of arch = lstm | gru (the paper: 1024 or 2048)."},
    {"model", "rnn_reverse_source", KEY_INT, "0", F(rnn_reverse_source), 0, 1, 0, NULL,
     "1: the encoder of arch = lstm | gru reads each source backwards (Sutskever et al. 2014), "
     "so that the first outputs are close to what they depend on; the paper does not say (0)."},

    {"train", "seed", KEY_SEED, "0", F(seed), 0, 0, 0, NULL,
     "Seed of the data streams and of the initial weights."},
    {"train", "batch_size", KEY_INT, "0", F(batch_size), 0, 1 << 24, 0, NULL,
     "Global batch (examples per optimizer step), split evenly over the ranks; 0: not given "
     "(batch_per_rank x ranks, or " CONFIG_DEFAULT_BATCH " when neither is given)."},
    {"train", "batch_per_rank", KEY_INT, "0", F(batch_per_rank), 0, 1 << 24, 0, NULL,
     "Examples per rank and step, instead of batch_size (set one of the two): the global "
     "batch is batch_per_rank x ranks (the paper's 4-GPU runs: 64 a GPU)."},
    {"train", "epoch_size", KEY_LONG, "300000", F(epoch_size), 1, BIG, 0, NULL,
     "Examples per epoch (rounded up to whole batches)."},
    {"train", "epochs", KEY_INT, "100", F(epochs), 1, 1e9, 0, NULL,
     "Epochs of the run; the learning-rate schedule spans all of them."},
    {"train", "max_steps", KEY_LONG, "0", F(max_steps), 0, BIG, 0, NULL,
     "Stop after this optimizer step (0: no limit); the schedule is unchanged."},
    {"train", "lr", KEY_REAL, "1e-4", F(lr), 0, 1, OPEN_MIN, NULL, "Peak learning rate (Adam)."},
    {"train", "warmup", KEY_LONG, "10000", F(warmup), 0, BIG, 0, NULL,
     "Steps of linear warm-up from 0 to lr."},
    {"train", "schedule", KEY_CHOICE, "cosine", F(schedule), 0, 0, 0,
     &LR_SCHEDULES(ENUM_NAME_PIPED)[1],
     "After warm-up: cosine decay to lr_min at the last step, constant, lr*sqrt(warmup/step), "
     "or cosine_period: cosines of train.cosine_period steps from lr to lr_min, restarting "
     "with both times train.lr_shrink (the paper's code, adam_cosine: its init_period and "
     "lr_shrink)."},
    {"train", "lr_min", KEY_REAL, "1e-5", F(lr_min), 0, 1, 0, NULL,
     "Floor of the cosine schedules."},
    {"train", "cosine_period", KEY_LONG, "100000000", F(cosine_period), 1, BIG, 0, NULL,
     "Schedule cosine_period: steps of one cosine after warm-up (the paper's code's "
     "init_period; its default 1e8 is all but constant over any run)."},
    {"train", "lr_shrink", KEY_REAL, "0.75", F(lr_shrink), 0, 1, OPEN_MIN, NULL,
     "Schedule cosine_period: lr and lr_min are multiplied by this at each restart (the "
     "paper's code's lr_shrink, default 0.75)."},
    {"train", "clip", KEY_REAL, "5", F(clip), 0, BIG, 0, NULL,
     "Gradient-norm clipping threshold (0: none)."},
    {"train", "beta1", KEY_REAL, "0.9", F(beta1), 0, 1, OPEN_MAX, NULL, "Adam beta1."},
    {"train", "beta2", KEY_REAL, "0.999", F(beta2), 0, 1, OPEN_MAX, NULL, "Adam beta2."},
    {"train", "eps", KEY_REAL, "1e-8", F(eps), 0, 1, OPEN_MIN, NULL, "Adam epsilon."},
    {"train", "threads", KEY_INT, "1", F(threads), 1, 1024, 0, NULL,
     "CPU threads per rank (the model's thread pool); runs with the same count are "
     "reproducible bit for bit."},
    {"train", "prefetch", KEY_CHOICE, "auto", F(prefetch), 0, 0, 0,
     &PREFETCH_CHOICES(ENUM_NAME_PIPED)[1],
     "A second thread makes the next batch while the model trains on this one (on), or the "
     "step makes its own (off); auto: on with the CUDA backend, off on the CPU (its pool uses "
     "every core). The examples are the same either way."},
    {"train", "log_every", KEY_LONG, "100", F(log_every), 1, BIG, 0, NULL,
     "Steps between training-loss records (metrics.jsonl, train.log)."},

    {"eval", "size", KEY_LONG, "10000", F(eval_size), 0, BIG, 0, NULL,
     "Fresh test examples per evaluation (0: no evaluation)."},
    {"eval", "tolerances", KEY_TOLERANCES, "5,2,1,0.5", F(tolerances), 0, 0, 0, NULL,
     "Tolerances in percent, comma-separated, at most 8; the first one ranks checkpoints."},
    {"eval", "decode", KEY_CHOICE, "greedy", F(decoding), 0, 0, 0,
     &DECODINGS(ENUM_NAME_PIPED)[1],
     "Decoding of the predictions."},
    {"eval", "beam_size", KEY_INT, "4", F(beam_size), 1, 256, 0, NULL,
     "Beam width when decode = beam."},
    {"eval", "every", KEY_INT, "1", F(eval_every), 0, 1e9, 0, NULL,
     "Evaluate every N epochs (0: only at the end of the run, which always evaluates)."},
    {"eval", "batch_size", KEY_INT, "64", F(eval_batch), 1, 1 << 20, 0, NULL,
     "Examples generated and decoded together, per rank; the model decodes them in chunks of "
     "at most the per-rank training batch, which alone sizes its activations."},
    {"eval", "ood", KEY_TEXT, "", F(ood), 0, 0, 0, NULL,
     "Out-of-distribution test sets (section 5, Table 12), comma-separated, at most "
     "16: each is evaluated on eval.size examples of its own stream at every evaluation and "
     "recorded under its name. LAW or LAW@SCALE; eigen tasks: wigner (Wigner matrices of "
     "uniform coefficients in [-A, A], A = data.bound x SCALE) or an eigenvalue law of "
     "data.eig_law (eig_scale SCALE); other tasks: a coefficient law of data.law (bound x "
     "SCALE). Empty: none."},

    {"run", "dir", KEY_TEXT, "", F(dir), 0, 0, 0, NULL,
     "Run directory (--run-dir): config.ini, train.log, metrics.jsonl, checkpoints; empty: "
     "no files."},
    {"run", "device", KEY_CHOICE, "auto", F(device), 0, 0, 0,
     &DEVICE_CHOICES(ENUM_NAME_PIPED)[1],
     "Backend of the model: auto is cuda when this build has the CUDA backend and a GPU is "
     "visible, else cpu; cuda stops with a message when there is none."},
    {"run", "precision", KEY_CHOICE, "fp32", F(precision), 0, 0, 0,
     &MODEL_PRECISIONS(ENUM_NAME_PIPED)[1],
     "Matrix products on the GPU: fp32; tf32 or bf16 tensor cores (inputs rounded, fp32 "
     "accumulation). Weights, activations, loss and Adam state stay fp32. The CPU backend "
     "always computes in fp32."},
    {"run", "init_from", KEY_TEXT, "", F(init_from), 0, 0, 0, NULL,
     "Checkpoint whose weights start this run (retraining, Appendix F.1): same layers, "
     "dimensions and vocabularies, any sizes; fresh optimizer and schedule. Ignored by --resume."},
    {"run", "keep_checkpoints", KEY_INT, "3", F(keep_checkpoints), 0, 1e6, 0, NULL,
     "Newest checkpoints step-*.h5 kept in the run directory (0: all); best.h5 is kept too."},
};

#undef F
#define NKEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

static const char *const SECTIONS[] = {"data", "model", "train", "eval", "run"};
#define NSECTIONS ((int)(sizeof SECTIONS / sizeof SECTIONS[0]))

_Static_assert(sizeof KEYS / sizeof KEYS[0] <= CONFIG_MAX_KEYS, "raise CONFIG_MAX_KEYS");

static int find_key(const char *section, const char *name)
{
    for (int k = 0; k < NKEYS; k++)
        if (strcmp(KEYS[k].section, section) == 0 && strcmp(KEYS[k].name, name) == 0) return k;
    return -1;
}

static int section_exists(const char *section)
{
    for (int s = 0; s < NSECTIONS; s++)
        if (strcmp(SECTIONS[s], section) == 0) return 1;
    return 0;
}

/* Allowed values of a key, in words, for --help-config and error messages. */
static void describe_allowed(const config_key *k, char *buf, size_t cap)
{
    switch (k->type) {
    case KEY_INT:
    case KEY_LONG:
        if (k->max >= BIG) snprintf(buf, cap, "integer >= %.0f", k->min);
        else snprintf(buf, cap, "integer in [%.0f, %.0f]", k->min, k->max);
        break;
    case KEY_SEED: snprintf(buf, cap, "integer in [0, 2^64)"); break;
    case KEY_REAL:
        if (k->max >= BIG)
            snprintf(buf, cap, "number %s %g", k->open & OPEN_MIN ? ">" : ">=", k->min);
        else
            snprintf(buf, cap, "number in %s%g, %g%s", k->open & OPEN_MIN ? "(" : "[", k->min,
                     k->max, k->open & OPEN_MAX ? ")" : "]");
        break;
    case KEY_CHOICE: snprintf(buf, cap, "%s", k->choices); break;
    case KEY_TEXT: snprintf(buf, cap, "text"); break;
    case KEY_ENCODING:
        snprintf(buf, cap, "%s%s", encoding_names_list(), k->choices ? ", or empty" : "");
        break;
    case KEY_TOLERANCES:
        snprintf(buf, cap, "1 to %d numbers in (0, 100]", EVAL_MAX_TOLERANCES);
        break;
    case KEY_DATA: snprintf(buf, cap, "%s", datagen_key_allowed(k->name)); break;
    case KEY_ALIAS: snprintf(buf, cap, "as %s", k->choices); break;
    }
}

/* Where a value comes from, for messages: "jobs/x.ini:12" or "--set". */
typedef struct {
    const char *origin;
    int line;         /* 0: no line (--set) */
    int section_line; /* of the current [section] header */
} value_source;

static int fail(char *err, size_t errcap, const value_source *src, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errcap, const value_source *src, const char *fmt, ...)
{
    int n = src->line > 0 ? snprintf(err, errcap, "%s:%d: ", src->origin, src->line)
                          : snprintf(err, errcap, "%s: ", src->origin);
    if (n < 0 || (size_t)n >= errcap) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errcap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* "5,2,1,0.5" -> fractions 0.05, 0.02, 0.01, 0.005. */
static int parse_tolerances(const char *s, double *tol, int *ntol)
{
    char buf[CONFIG_TEXT_MAX];
    snprintf(buf, sizeof buf, "%s", s);
    double parsed[EVAL_MAX_TOLERANCES];
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ') *--end = '\0';
        double pct;
        if (n == EVAL_MAX_TOLERANCES || parse_double(tok, &pct) || pct <= 0 || pct > 100) return -1;
        parsed[n++] = pct / 100.0;
    }
    if (n == 0) return -1;
    memcpy(tol, parsed, (size_t)n * sizeof *tol);
    *ntol = n;
    return 0;
}

/* The resolved configuration (config_to_ini) is parsed again by every rank and from every
 * checkpoint: a value must come back from its line "name = value" unchanged. A value from a
 * file always does, unless its line got longer (a blank added after '='); one from --set may
 * hold what inih would strip or cut. Returns 0, or 1 with the reason in why. */
static int unwritable_value(const char *name, const char *value, char *why, size_t cap)
{
    size_t len = strlen(value);
    if (strlen(name) + 3 + len > INI_MAX_LINE - 2) {
        snprintf(why, cap, "\"%s = VALUE\" must fit in a line of %d characters", name,
                 INI_MAX_LINE - 2);
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, cap, "a control character (code %d) in a value", c);
            return 1;
        }
        if (c == ';' && (i == 0 || value[i - 1] == ' ')) { /* written after "name = " */
            snprintf(why, cap, "a ';' first or after a blank would start a comment in the INI "
                     "file");
            return 1;
        }
    }
    if (len > 0 && (value[0] == ' ' || value[len - 1] == ' ')) {
        snprintf(why, cap, "blanks around a value are dropped in the INI file");
        return 1;
    }
    return 0;
}

/* Checks value against key k and stores it (text and typed field). */
static int set_key(trainer_config *cfg, int k, const char *value, const value_source *src,
                   char *err, size_t errcap)
{
    const config_key *key = &KEYS[k];
    char allowed[512];
    describe_allowed(key, allowed, sizeof allowed);
    if (strlen(value) >= CONFIG_TEXT_MAX)
        return fail(err, errcap, src, "[%s] %s: value longer than %d characters", key->section,
                    key->name, CONFIG_TEXT_MAX - 1);
    char why[128];
    if (unwritable_value(key->name, value, why, sizeof why))
        return fail(err, errcap, src, "[%s] %s = '%s': %s", key->section, key->name, value, why);
#define BAD_VALUE(why)                                                                        \
    fail(err, errcap, src, "[%s] %s = '%s': %s; allowed: %s", key->section, key->name, value, \
         why, allowed)
    char *field = (char *)cfg + key->offset;
    switch (key->type) {
    case KEY_INT:
    case KEY_LONG: {
        long v;
        if (parse_long(value, &v)) return BAD_VALUE("not an integer");
        if (v < key->min || (key->max < BIG && v > key->max)) return BAD_VALUE("out of range");
        if (key->type == KEY_INT) *(int *)field = (int)v;
        else *(long *)field = v;
        break;
    }
    case KEY_SEED: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || !isdigit((unsigned char)value[0]) || *end != '\0')
            return BAD_VALUE("not an unsigned integer");
        *(uint64_t *)field = (uint64_t)v;
        break;
    }
    case KEY_REAL: {
        double v;
        if (parse_double(value, &v)) return BAD_VALUE("not a number");
        if (v < key->min || (key->open & OPEN_MIN && v == key->min) ||
            (key->max < BIG && (v > key->max || (key->open & OPEN_MAX && v == key->max))))
            return BAD_VALUE("out of range");
        *(double *)field = v;
        break;
    }
    case KEY_CHOICE: {
        int index = 0, found = -1;
        for (const char *c = key->choices; *c; index++) {
            size_t len = strcspn(c, "|");
            if (strlen(value) == len && strncmp(c, value, len) == 0) found = index;
            c += len + (c[len] == '|');
        }
        if (found < 0) return BAD_VALUE("not one of the choices");
        *(int *)field = found;
        break;
    }
    case KEY_TEXT: snprintf(field, CONFIG_TEXT_MAX, "%s", value); break;
    case KEY_ENCODING: {
        lawt_encoding enc;
        if (!(value[0] == '\0' && key->choices) && encoding_from_name(value, &enc))
            return BAD_VALUE("unknown encoding");
        snprintf(field, CONFIG_TEXT_MAX, "%s", value);
        break;
    }
    case KEY_TOLERANCES:
        if (parse_tolerances(value, cfg->tol, &cfg->ntol)) return BAD_VALUE("not a tolerance list");
        snprintf(field, CONFIG_TEXT_MAX, "%s", value);
        break;
    case KEY_DATA: {
        /* Parsed once, here, so that a bad value is reported at its line; empty: the default. */
        char why[512] = "";
        if (datagen_set(&cfg->data, key->name, value[0] ? value : key->default_value, why,
                        sizeof why))
            return fail(err, errcap, src, "[%s] %s = '%s': %s", key->section, key->name, value,
                        why);
        break;
    }
    case KEY_ALIAS: {
        char targets[128];
        snprintf(targets, sizeof targets, "%s", key->choices);
        char *save = NULL;
        for (char *t = strtok_r(targets, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (set_key(cfg, find_key(key->section, t), value, src, err, errcap)) return -1;
        return 0; /* an alias has no text of its own */
    }
    }
#undef BAD_VALUE
    snprintf(cfg->value[k], CONFIG_TEXT_MAX, "%s", value);
    return 0;
}

static void keys_of_section(const char *section, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < NKEYS && n < cap; k++)
        if (strcmp(KEYS[k].section, section) == 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", KEYS[k].name);
}

static int set_by_name(trainer_config *cfg, const char *section, const char *name,
                       const char *value, const value_source *src, char *err, size_t errcap)
{
    if (section[0] == '\0')
        return fail(err, errcap, src, "'%s' is outside any section; sections: [data], [model], "
                    "[train], [eval], [run]", name);
    if (!section_exists(section)) {
        value_source header = {src->origin, src->section_line, 0};
        return fail(err, errcap, &header, "unknown section [%s]; sections: [data], [model], "
                    "[train], [eval], [run]", section);
    }
    int k = find_key(section, name);
    if (k < 0) {
        char names[1024];
        keys_of_section(section, names, sizeof names);
        return fail(err, errcap, src, "unknown key '%s' in [%s]; keys of [%s]: %s", name, section,
                    section, names);
    }
    return set_key(cfg, k, value, src, err, errcap);
}

void config_init(trainer_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    datagen_default(&cfg->data);
    value_source src = {"defaults", 0, 0};
    char err[512];
    for (int k = 0; k < NKEYS; k++)
        if (KEYS[k].type != KEY_ALIAS &&
            set_key(cfg, k, KEYS[k].default_value, &src, err, sizeof err))
            lawt_die("built-in default rejected (a bug in trainer/config.c): %s", err);
}

/* inih does the INI syntax. Our reader hands it one physical line a call, so that inih's line
 * count is the file's, and refuses what inih would silently mangle: a NUL byte (the rest of
 * the line would vanish), a line longer than inih's buffer (inih would read its rest as the
 * next line). It passes each line without its leading blanks: Debian builds inih with
 * INI_ALLOW_MULTILINE, which reads an indented line as the continuation of the previous value;
 * here an indented "dim = 3" is a key like any other. A section header or a key given twice in
 * one text is refused with both lines (the last one winning silently would hide a mistake);
 * --set, a later source, overrides a file's value as documented. */
#define INI_SECTIONS_TRACKED 32

typedef struct {
    trainer_config *cfg;
    value_source src;
    FILE *file;         /* read from a file, or ... */
    const char *text;   /* ... from a string */
    int next_line;      /* line number of the next line the reader returns */
    int max_line;       /* longest line inih takes (its buffer, newline excluded) */
    char *err;
    size_t errcap;
    int failed;         /* line whose refusal err holds; 0: none */
    int key_line[CONFIG_MAX_KEYS]; /* line that set each key in this text; 0: none */
    char section[INI_SECTIONS_TRACKED][64];
    int section_line[INI_SECTIONS_TRACKED];
    int nsections;
} ini_reader_state;

static int next_char(ini_reader_state *st)
{
    if (st->file) return getc(st->file);
    return *st->text ? (unsigned char)*st->text++ : EOF;
}

/* A [section] header: refused when the section was already opened in this text. */
static int note_section(ini_reader_state *st, const char *line)
{
    st->src.section_line = st->src.line;
    size_t len = strcspn(line + 1, "]\n");
    /* Longer than any known section: refused as unknown at its first key. */
    if (len >= sizeof st->section[0]) return 0;
    char name[sizeof st->section[0]];
    memcpy(name, line + 1, len);
    name[len] = '\0';
    for (int i = 0; i < st->nsections; i++)
        if (strcmp(st->section[i], name) == 0)
            return fail(st->err, st->errcap, &st->src, "section [%s] given twice (lines %d and %d); "
                        "put its keys under one [%s]", name, st->section_line[i], st->src.line, name);
    if (st->nsections < INI_SECTIONS_TRACKED) {
        memcpy(st->section[st->nsections], name, len + 1);
        st->section_line[st->nsections++] = st->src.line;
    }
    return 0;
}

static char *line_reader(char *str, int num, void *stream)
{
    ini_reader_state *st = stream;
    if (st->failed || num < 3) return NULL;
    st->max_line = num - 2; /* the newline and the terminating NUL take the rest */
    size_t n = 0, len = 0; /* characters kept in str; characters after the leading blanks */
    long nul_column = 0, column = 0;
    int c, last = 0, any = 0;
    while ((c = next_char(st)) != EOF) {
        any = 1;
        if (c == '\n') break;
        column++;
        if (c == '\0' && nul_column == 0) nul_column = column;
        if (len == 0 && (c == ' ' || c == '\t')) continue;
        len++;
        last = c;
        if (n < (size_t)st->max_line + 1) str[n++] = (char)c;
    }
    if (!any) return NULL;
    st->src.line = st->next_line++;
    if (nul_column) {
        fail(st->err, st->errcap, &st->src, "NUL byte at column %ld: not a text file?", nul_column);
        st->failed = st->src.line;
        return NULL;
    }
    if (last == '\r') { /* a CRLF line end */
        len--;
        if (n > len) n = len;
    }
    if (len > (size_t)st->max_line) {
        fail(st->err, st->errcap, &st->src, "line of %zu characters; lines are at most %d",
             len, st->max_line);
        st->failed = st->src.line;
        return NULL;
    }
    str[n++] = '\n';
    str[n] = '\0';
    /* A UTF-8 byte-order mark (inih skips it too) and the blanks after it. */
    if (st->src.line == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0) {
        size_t skip = 3 + strspn(str + 3, " \t");
        memmove(str, str + skip, n + 1 - skip);
    }
    if (str[0] == '[' && note_section(st, str)) {
        st->failed = st->src.line;
        return NULL;
    }
    return str;
}

static int ini_handler_set(void *user, const char *section, const char *name, const char *value)
{
    ini_reader_state *st = user;
    if (st->failed) return 0;
    int k = find_key(section, name);
    if (k >= 0 && st->key_line[k]) {
        fail(st->err, st->errcap, &st->src, "[%s] %s given twice (lines %d and %d); a key appears "
             "once in a file (--set overrides it)", section, name, st->key_line[k], st->src.line);
        st->failed = st->src.line;
        return 0;
    }
    if (set_by_name(st->cfg, section, name, value, &st->src, st->err, st->errcap)) {
        st->failed = st->src.line;
        return 0;
    }
    if (k >= 0) st->key_line[k] = st->src.line;
    return 1;
}

static int parse_stream(ini_reader_state *st)
{
    /* inih returns the line of its first error: a syntax error, or a line the handler refused
     * (err says why); the earlier of that and a line the reader refused is reported. */
    int rc = ini_parse_stream(line_reader, st, ini_handler_set, st);
    if (st->file && ferror(st->file))
        return fail(st->err, st->errcap, &st->src, "cannot read the configuration: %s",
                    strerror(errno));
    if (st->failed && !(rc > 0 && rc < st->failed)) return -1;
    if (rc > 0) {
        value_source at = {st->src.origin, rc, 0};
        return fail(st->err, st->errcap, &at, "syntax error: expected [section], key = value, or "
                    "a comment (; or #)");
    }
    if (rc < 0) return fail(st->err, st->errcap, &st->src, "cannot read the configuration");
    return 0;
}

int config_parse_file(trainer_config *cfg, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "%s: cannot open the configuration: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(err, errcap, "%s: is a directory, not a configuration file", path);
        fclose(f);
        return -1;
    }
    ini_reader_state st = {.cfg = cfg, .src = {path, 0, 0}, .file = f, .next_line = 1,
                           .err = err, .errcap = errcap};
    int rc = parse_stream(&st);
    fclose(f);
    return rc;
}

int config_parse_string(trainer_config *cfg, const char *text, const char *origin, char *err,
                        size_t errcap)
{
    ini_reader_state st = {.cfg = cfg, .src = {origin, 0, 0}, .text = text, .next_line = 1,
                           .err = err, .errcap = errcap};
    return parse_stream(&st);
}

int config_set_assignment(trainer_config *cfg, const char *assignment, char *err, size_t errcap)
{
    char origin[CONFIG_TEXT_MAX + 64];
    snprintf(origin, sizeof origin, "--set %s", assignment);
    value_source src = {origin, 0, 0};
    const char *dot = strchr(assignment, '.'), *eq = strchr(assignment, '=');
    if (!dot || !eq || dot > eq)
        return fail(err, errcap, &src, "expected section.key=value, e.g. --set model.enc_layers=6");
    char section[64], name[64];
    size_t slen = (size_t)(dot - assignment), nlen = (size_t)(eq - dot - 1);
    if (slen >= sizeof section || nlen >= sizeof name)
        return fail(err, errcap, &src, "section or key name too long");
    memcpy(section, assignment, slen);
    section[slen] = '\0';
    memcpy(name, dot + 1, nlen);
    name[nlen] = '\0';
    return set_by_name(cfg, section, name, eq + 1, &src, err, errcap);
}

/* eval.ood: each set is the training data with another law (config_finish, after the data
 * keys are final). Eigen tasks: "wigner" (plain Wigner matrices of uniform coefficients in
 * [-A x SCALE, A x SCALE]) or an eigenvalue law (eig_scale SCALE); other tasks: a coefficient
 * law, A x SCALE. A uniform_mixed training law is tested at A = data.bound, as Table 12's test
 * sets (sigma_tst / sigma_tr against A = 10). */
static int parse_ood(trainer_config *cfg, const value_source *src, char *err, size_t errcap)
{
    char buf[CONFIG_TEXT_MAX];
    snprintf(buf, sizeof buf, "%s", cfg->ood);
    int eigen = 1;
    for (int t = 0; t < cfg->data.ntasks; t++) eigen &= task_get(cfg->data.tasks[t])->symmetric;
    cfg->nood = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ') *--end = '\0';
        if (cfg->nood == CONFIG_MAX_OOD)
            return fail(err, errcap, src, "[eval] ood = '%s': more than %d sets", cfg->ood,
                        CONFIG_MAX_OOD);
        double scale = 1.0;
        char *at = strchr(tok, '@');
        if (at) {
            *at = '\0';
            if (parse_double(at + 1, &scale) || !(scale > 0))
                return fail(err, errcap, src, "[eval] ood = '%s': '%s@%s': the scale after @ must "
                            "be a number > 0", cfg->ood, tok, at + 1);
        }
        datagen_config d = cfg->data;
        char why[512] = "";
        if (eigen) {
            if (d.law == COEF_UNIFORM_MIXED) d.law = COEF_UNIFORM;
            if (strcmp(tok, "wigner") == 0) {
                datagen_set(&d, "eig_law", "none", why, sizeof why);
                d.bound *= scale;
            } else if (eig_law_from_name(tok) >= 0) {
                if (datagen_set(&d, "eig_law", tok, why, sizeof why))
                    return fail(err, errcap, src, "[eval] ood = '%s': %s", cfg->ood, why);
                d.eig_scale = scale;
            } else {
                return fail(err, errcap, src, "[eval] ood = '%s': unknown law '%s' for %s; "
                            "allowed: wigner or an eigenvalue law (%s), each with an optional "
                            "@SCALE", cfg->ood, tok, task_name(d.tasks[0]),
                            &EIG_LAWS(ENUM_NAME_LISTED)[2]);
            }
        } else {
            int law = coef_law_from_name(tok);
            if (law < 0)
                return fail(err, errcap, src, "[eval] ood = '%s': unknown law '%s' for %s; "
                            "allowed: a coefficient law (%s), each with an optional @SCALE",
                            cfg->ood, tok, task_name(d.tasks[0]), &COEF_LAWS(ENUM_NAME_LISTED)[2]);
            d.law = (coef_law)law;
            d.bound *= scale;
        }
        if (datagen_validate(&d, why, sizeof why))
            return fail(err, errcap, src, "[eval] ood = '%s': the set '%s': %s", cfg->ood, tok, why);
        /* The name records the set and keys its stream: "laplace@1" is "laplace". */
        char *name = cfg->ood_name[cfg->nood];
        if (scale != 1.0) snprintf(name, sizeof cfg->ood_name[0], "%s@%g", tok, scale);
        else snprintf(name, sizeof cfg->ood_name[0], "%s", tok);
        for (int k = 0; k < cfg->nood; k++)
            if (strcmp(cfg->ood_name[k], name) == 0)
                return fail(err, errcap, src, "[eval] ood = '%s': '%s' is listed twice", cfg->ood,
                            name);
        cfg->ood_data[cfg->nood++] = d;
    }
    return 0;
}

int config_finish(trainer_config *cfg, char *err, size_t errcap)
{
    value_source src = {"configuration", 0, 0};
    /* A task line sets task_token (joint training needs it): task_token's own value, whether
     * given before or after it, and its empty default follow the final task list. */
    int task_token = find_key("data", "task_token");
    char why[512] = "";
    if (datagen_set(&cfg->data, "task_token", cfg->value[task_token], why, sizeof why))
        return fail(err, errcap, &src, "[data] task_token = '%s': %s", cfg->value[task_token], why);
    lawt_encoding in, out;
    encoding_from_name(cfg->encoding, &in);
    encoding_from_name(cfg->out_encoding[0] ? cfg->out_encoding : cfg->encoding, &out);
    cfg->data.in_digits = in.digits;
    cfg->data.out_digits = out.digits;
    if (datagen_validate(&cfg->data, why, sizeof why))
        return fail(err, errcap, &src, "[data]: %s", why);
    if (parse_ood(cfg, &src, err, errcap)) return -1;
    if (model_arch_recurrent(cfg->arch) && cfg->recompute != MODEL_RECOMPUTE_NONE)
        return fail(err, errcap, &src, "[model] recompute = %s applies to the transformer only "
                    "(arch = %s)", cfg->recompute == MODEL_RECOMPUTE_FFN ? "ffn" : "layer",
                    enum_name(&MODEL_ARCH_TABLE, cfg->arch));
    if (!model_arch_recurrent(cfg->arch) && cfg->enc_dim % cfg->enc_heads)
        return fail(err, errcap, &src, "[model] enc_dim = %d is not a multiple of enc_heads = %d",
                    cfg->enc_dim, cfg->enc_heads);
    if (!model_arch_recurrent(cfg->arch) && cfg->dec_dim % cfg->dec_heads)
        return fail(err, errcap, &src, "[model] dec_dim = %d is not a multiple of dec_heads = %d",
                    cfg->dec_dim, cfg->dec_heads);
    if (cfg->arch != ARCH_UNIVERSAL && (cfg->enc_loops || cfg->dec_loops))
        return fail(err, errcap, &src, "[model] enc_loops = %d, dec_loops = %d: loops need "
                    "arch = universal", cfg->enc_loops, cfg->dec_loops);
    if (cfg->arch != ARCH_UNIVERSAL && cfg->loop_mode != LOOP_FIXED)
        return fail(err, errcap, &src, "[model] loop_mode = %s needs arch = universal",
                    enum_name(&MODEL_LOOP_MODE_TABLE, cfg->loop_mode));
    if (cfg->arch == ARCH_UNIVERSAL) {
        if (!cfg->enc_loops && !cfg->dec_loops)
            return fail(err, errcap, &src, "[model] arch = universal needs enc_loops > 0 "
                        "and/or dec_loops > 0 (the side or sides whose one layer loops)");
        if (cfg->enc_loops && cfg->enc_layers != 1)
            return fail(err, errcap, &src, "[model] enc_loops = %d loops one shared layer: "
                        "set enc_layers = 1 (got %d)", cfg->enc_loops, cfg->enc_layers);
        if (cfg->dec_loops && cfg->dec_layers != 1)
            return fail(err, errcap, &src, "[model] dec_loops = %d loops one shared layer: "
                        "set dec_layers = 1 (got %d)", cfg->dec_loops, cfg->dec_layers);
        if (cfg->recompute != MODEL_RECOMPUTE_NONE)
            return fail(err, errcap, &src, "[model] recompute = %s is not available with "
                        "arch = universal (set it to none)", cfg->value[find_key("model",
                        "recompute")]);
    }
    if ((cfg->schedule == SCHEDULE_COSINE || cfg->schedule == SCHEDULE_COSINE_PERIOD) &&
        cfg->lr_min > cfg->lr)
        return fail(err, errcap, &src, "[train] lr_min = %g is above lr = %g", cfg->lr_min,
                    cfg->lr);
    /* The trainer counts steps, examples (step x batch_size) and test examples (eval.size an
     * evaluation, at most one an epoch plus the last) in 64-bit integers. The global batch is
     * settled later, with the number of ranks (config_resolve_batch): the smallest it can be
     * gives the most steps. */
    const long batch = cfg->batch_size > 0      ? cfg->batch_size
                       : cfg->batch_per_rank > 0 ? cfg->batch_per_rank
                                                 : atol(CONFIG_DEFAULT_BATCH);
    long steps_per_epoch = (cfg->epoch_size - 1) / batch + 1, total_steps, examples, test_examples;
    if (__builtin_mul_overflow(steps_per_epoch, (long)cfg->epochs, &total_steps) ||
        __builtin_mul_overflow(total_steps, batch, &examples) || examples > LONG_MAX - batch)
        return fail(err, errcap, &src, "[train] epoch_size = %ld x epochs = %d: the run's "
                    "examples (rounded up to whole batches of %d) overflow a 64-bit counter; "
                    "lower train.epoch_size or train.epochs", cfg->epoch_size, cfg->epochs,
                    (int)batch);
    if (__builtin_mul_overflow(cfg->eval_size, (long)cfg->epochs + 1, &test_examples))
        return fail(err, errcap, &src, "[eval] size = %ld x (train.epochs = %d + 1) evaluations: "
                    "the test examples overflow a 64-bit counter; lower eval.size",
                    cfg->eval_size, cfg->epochs);
    /* Each out-of-distribution set takes test indices below 2^44 in its range of the stream. */
    if (cfg->nood && test_examples >= (1L << 44))
        return fail(err, errcap, &src, "[eval] size = %ld x (train.epochs = %d + 1) evaluations: "
                    "more test examples than eval.ood's streams hold (2^44); lower eval.size",
                    cfg->eval_size, cfg->epochs);
    return 0;
}

char *config_to_ini(const trainer_config *cfg)
{
    size_t cap = 256 + (size_t)NKEYS * (CONFIG_TEXT_MAX + 64), n = 0;
    char *text = lawt_malloc(cap);
    n += (size_t)snprintf(text + n, cap - n, "; lawt %s: resolved configuration (every key)\n",
                          LAWT_VERSION);
    for (int s = 0; s < NSECTIONS; s++) {
        n += (size_t)snprintf(text + n, cap - n, "\n[%s]\n", SECTIONS[s]);
        for (int k = 0; k < NKEYS; k++)
            if (KEYS[k].type != KEY_ALIAS && strcmp(KEYS[k].section, SECTIONS[s]) == 0)
                n += (size_t)snprintf(text + n, cap - n, "%s = %s\n", KEYS[k].name, cfg->value[k]);
    }
    return text;
}

static const char *key_doc(const config_key *k)
{
    return k->type == KEY_DATA ? datagen_key_help(k->name) : k->doc;
}

/* Markdown table cell text: a '|' would end the cell. */
static void print_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

void config_print_help(FILE *f, int markdown)
{
    char allowed[512];
    if (markdown) {
        fprintf(f, "| key | default | allowed | meaning |\n|---|---|---|---|\n");
        for (int k = 0; k < NKEYS; k++) {
            const config_key *key = &KEYS[k];
            describe_allowed(key, allowed, sizeof allowed);
            const char *def = key->default_value ? key->default_value : "";
            fprintf(f, "| `%s.%s` |", key->section, key->name);
            if (def[0]) fprintf(f, " `%s`", def);
            fputs(" | ", f);
            print_escaped(f, allowed);
            fputs(" | ", f);
            print_escaped(f, key_doc(key));
            fputs(" |\n", f);
        }
        return;
    }
    for (int s = 0; s < NSECTIONS; s++) {
        fprintf(f, "[%s]\n", SECTIONS[s]);
        for (int k = 0; k < NKEYS; k++) {
            const config_key *key = &KEYS[k];
            if (strcmp(key->section, SECTIONS[s])) continue;
            describe_allowed(key, allowed, sizeof allowed);
            const char *def = !key->default_value      ? "-"
                              : key->default_value[0] ? key->default_value
                                                      : "(empty)";
            fprintf(f, "  %-16s default %-10s allowed: %s\n  %-16s %s\n", key->name, def, allowed,
                    "", key_doc(key));
        }
        fputc('\n', f);
    }
}

double schedule_lr(const trainer_config *cfg, long step, long total_steps)
{
    if (step < cfg->warmup) return cfg->lr * (double)step / (double)cfg->warmup;
    switch (cfg->schedule) {
    case SCHEDULE_CONSTANT: return cfg->lr;
    case SCHEDULE_INVERSE_SQRT:
        return cfg->warmup > 0 ? cfg->lr * sqrt((double)cfg->warmup / (double)step) : cfg->lr;
    case SCHEDULE_COSINE_PERIOD: {
        long t = step - cfg->warmup, cosine = t / cfg->cosine_period;
        double shrink = pow(cfg->lr_shrink, (double)cosine);
        double progress = (double)(t % cfg->cosine_period) / (double)cfg->cosine_period;
        const double pi = 3.14159265358979323846;
        return shrink * (cfg->lr_min + 0.5 * (cfg->lr - cfg->lr_min) * (1.0 + cos(pi * progress)));
    }
    default: {
        long span = total_steps - cfg->warmup;
        double progress = span > 0 ? (double)(step - cfg->warmup) / (double)span : 1.0;
        if (progress > 1.0) progress = 1.0;
        const double pi = 3.14159265358979323846;
        return cfg->lr_min + 0.5 * (cfg->lr - cfg->lr_min) * (1.0 + cos(pi * progress));
    }
    }
}
