/* encoding.c: rounding to significant digits, the vocabularies, and matrix encode/decode.
 *
 * Range policy: a coefficient whose rounded exponent falls outside the encoding's range
 * (E-100..E100 for positional and balanced, b in [-8, 8] for FP15), or that is NaN/Inf, makes
 * encode_matrix return -1. We reject rather than clamp because a clamped value is a wrong
 * label: the model would be trained to answer 1e100 where the truth is 1e120. Datagen redraws
 * the example instead; with the default laws such values never occur for P10/P1000/B1999 and
 * only with probability ~1e-6 per coefficient for FP15 (|x| < 1e-6 or |x| >= 1e11).
 *
 * Decoding is lenient on one point only: a positional or balanced mantissa need not be
 * normalized ("+ 0 1 4 E-2" decodes to 0.14), since the value is well defined, as in the
 * paper's reference decoder. Everything else that is not exactly "Vm Vn" followed by m*n
 * coefficients of the encoding's shape is DECODE_MALFORMED. */
#include "encoding/encoding.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*          name      kind            base   digits  mantissa tokens  max exponent */
#define LAWT_ENCODINGS(X)                                                                   \
    X("P10",    ENC_POSITIONAL, 10,    3,      3,               100)                   \
    X("P100",   ENC_POSITIONAL, 100,   2,      1,               100)                   \
    X("P1000",  ENC_POSITIONAL, 1000,  3,      1,               100)                   \
    X("P10000", ENC_POSITIONAL, 10000, 4,      1,               100)                   \
    X("B1999",  ENC_BALANCED,   1999,  3,      1,               100)                   \
    X("FP15",   ENC_FLOAT,      0,     3,      1,               8)

#define ENCODING_ROW(name, kind, base, digits, mantissa_tokens, max_exponent) \
    {name, kind, base, digits, mantissa_tokens, max_exponent},
static const struct {
    const char *name;
    encoding_kind kind;
    int base, digits, mantissa_tokens, max_exponent;
} ENCODINGS[] = {LAWT_ENCODINGS(ENCODING_ROW)};
#undef ENCODING_ROW
#define ENCODING_COUNT (int)(sizeof ENCODINGS / sizeof ENCODINGS[0])

int encoding_from_name(const char *name, lawt_encoding *enc)
{
    for (int i = 0; i < ENCODING_COUNT; i++) {
        if (strcmp(name, ENCODINGS[i].name) != 0) continue;
        memset(enc, 0, sizeof *enc);
        enc->kind = ENCODINGS[i].kind;
        enc->base = ENCODINGS[i].base;
        enc->digits = ENCODINGS[i].digits;
        enc->mantissa_tokens = ENCODINGS[i].mantissa_tokens;
        enc->max_exponent = ENCODINGS[i].max_exponent;
        snprintf(enc->name, sizeof enc->name, "%s", ENCODINGS[i].name);
        return 0;
    }
    return -1;
}

const char *encoding_names_list(void)
{
#define ENCODING_LISTED(name, ...) ", " name
    return &LAWT_ENCODINGS(ENCODING_LISTED)[2];
#undef ENCODING_LISTED
}

int encoding_tokens_per_coefficient(const lawt_encoding *enc)
{
    switch (enc->kind) {
    case ENC_POSITIONAL: return enc->mantissa_tokens + 2;
    case ENC_BALANCED: return 2;
    case ENC_FLOAT: return 1;
    }
    return 0;
}

int encoding_matrix_length(const lawt_encoding *enc, int rows, int cols)
{
    return 2 + rows * cols * encoding_tokens_per_coefficient(enc);
}

/* ---------------------------------------------------------------------------------------- */
/* Decimal rounding                                                                           */

/* Powers of ten that are exact doubles: a product or quotient by one of them is a single
 * correctly rounded operation, which is what makes the fast path exact. */
static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define MAX_DIGITS 15

/* ax > 0 finite. Finds the m in [10^(d-1), 10^d) and p with m * 10^p the value printf's
 * "%.{d-1}e" prints for ax, without printing. y = ax / 10^p is one correctly rounded
 * operation, and rounding is monotonic while half-integers below 2^52 are doubles: if the
 * exact quotient is above (below) a half-integer t, y >= t (y <= t). So round(y) is the
 * exact rounding unless y lands exactly on t; that case (a true tie, or a near-tie within
 * half an ulp), and p beyond the exact powers of ten, return 0 for the caller to ask printf,
 * which rounds the exact binary value (ties to even). */
static int split_fast(double ax, int digits, int64_t *mant, int *exp10)
{
    uint64_t bits;
    memcpy(&bits, &ax, sizeof bits);
    int biased = (int)(bits >> 52) & 0x7ff;
    if (biased == 0) return 0; /* subnormal: far outside the fast range anyway */
    /* ax in [2^e2, 2^(e2+1)): floor(log10 ax) is this estimate or one more. */
    int e2 = biased - 1023;
    int p = (int)floor(e2 * 0.30102999566398120) - digits + 1;
    double lo = POW10[digits - 1], hi = POW10[digits];
    for (int tries = 0; tries < 3; tries++) {
        if (p < -22 || p > 21) return 0;
        double y = p < 0 ? ax * POW10[-p] : ax / POW10[p];
        /* A y that lands in the wrong decade only through rounding is within an ulp of a
         * power of ten, where both decades round to the same value. */
        if (y < lo) { p--; continue; }
        if (y >= hi) { p++; continue; }
        double fl = floor(y);
        double frac = y - fl; /* exact: y >= 1 */
        if (frac == 0.5) return 0;
        int64_t m = (int64_t)fl + (frac > 0.5);
        if (m == (int64_t)hi) { /* 9.9951 -> 1.00e+01 */
            m = (int64_t)lo;
            p++;
        }
        *mant = m;
        *exp10 = p;
        return 1;
    }
    return 0;
}

/* The exact path: printf rounds the exact binary value (ties to even) and carries. */
static void split_printf(double ax, int digits, int64_t *mant, int *exp10)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*e", digits - 1, ax);
    int64_t m = 0;
    const char *s = buf;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') m = m * 10 + (*s - '0');
    *mant = m;
    *exp10 = (int)strtol(s + 1, NULL, 10) - (digits - 1);
}

static void split_decimal(double ax, int digits, int64_t *mant, int *exp10)
{
    if (!split_fast(ax, digits, mant, exp10)) split_printf(ax, digits, mant, exp10);
}

/* The double nearest to m * 10^p, as strtod would give it. */
static double compose_decimal(int64_t m, int p)
{
    if (p >= 0 && p <= 22) return (double)m * POW10[p];
    if (p < 0 && p >= -22) return (double)m / POW10[-p];
    char buf[64];
    snprintf(buf, sizeof buf, "%llde%d", (long long)m, p);
    return strtod(buf, NULL);
}

double round_significant(double x, int digits)
{
    if (digits < 1) digits = 1;
    if (digits > MAX_DIGITS) digits = MAX_DIGITS;
    if (x == 0.0) return 0.0;
    if (!isfinite(x)) return x;
    double ax = fabs(x), r;
    int64_t m;
    int p;
    if (split_fast(ax, digits, &m, &p)) {
        r = compose_decimal(m, p);
    } else {
        /* Same string as the printf path of split_decimal; strtod of it is the definition
         * (it overflows to Inf for 1.80e+308, as printf-then-strtod would). */
        char buf[64];
        snprintf(buf, sizeof buf, "%.*e", digits - 1, ax);
        r = strtod(buf, NULL);
    }
    return x < 0 ? -r : r;
}

/* ---------------------------------------------------------------------------------------- */
/* Vocabulary                                                                                 */
/* Layout after the shared prefix [<pad> <eos> V1..V100 <task>...]:
 *   positional  + - 0 .. base-1 E-100 .. E100
 *   balanced    N-999 .. N999 E-100 .. E100
 *   float       FP0/0, then for b = -8..8: FP-999/b .. FP-100/b FP100/b .. FP999/b */

static int64_t ipow10(int k)
{
    int64_t r = 1;
    while (k-- > 0) r *= 10;
    return r;
}

static int positional_first_digit(const lawt_vocab *v) { return v->first_word + 2; }

static int first_exponent(const lawt_vocab *v)
{
    return v->enc.kind == ENC_POSITIONAL ? v->first_word + 2 + v->enc.base
                                         : v->first_word + v->enc.base;
}

static int balanced_half(const lawt_vocab *v) { return (v->enc.base - 1) / 2; }

/* Nonzero FP15 mantissas per sign: 100..999. */
static int float_span(const lawt_vocab *v) { return (int)(9 * ipow10(v->enc.digits - 1)); }

static int float_id(const lawt_vocab *v, int64_t m, int b)
{
    if (m == 0) return v->first_word;
    int64_t lo = ipow10(v->enc.digits - 1), top = ipow10(v->enc.digits) - 1;
    int span = float_span(v);
    int64_t in_sign = m < 0 ? m + top : span + m - lo;
    return v->first_word + 1 + (b + v->enc.max_exponent) * 2 * span + (int)in_sign;
}

static void float_value_of(const lawt_vocab *v, int id, int64_t *m, int *b)
{
    int k = id - v->first_word;
    if (k == 0) {
        *m = 0;
        *b = 0;
        return;
    }
    int span = float_span(v);
    k--;
    *b = k / (2 * span) - v->enc.max_exponent;
    int in_sign = k % (2 * span);
    int64_t lo = ipow10(v->enc.digits - 1), top = ipow10(v->enc.digits) - 1;
    *m = in_sign < span ? in_sign - top : in_sign - span + lo;
}

static int vocab_size_of(const lawt_encoding *enc, int first_word)
{
    int exponents = 2 * enc->max_exponent + 1;
    switch (enc->kind) {
    case ENC_POSITIONAL: return first_word + 2 + enc->base + exponents;
    case ENC_BALANCED: return first_word + enc->base + exponents;
    case ENC_FLOAT: return first_word + 1 + 2 * (int)(9 * ipow10(enc->digits - 1)) * exponents;
    }
    return first_word;
}

static char *word_slot(const lawt_vocab *v, int id) { return v->words + (size_t)id * v->word_stride; }

static void set_word(lawt_vocab *v, int id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_word(lawt_vocab *v, int id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(word_slot(v, id), (size_t)v->word_stride, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= v->word_stride) lawt_die("vocabulary word %d longer than %d", id, v->word_stride - 1);
}

void vocab_init(lawt_vocab *v, const lawt_encoding *enc)
{
    memset(v, 0, sizeof *v);
    v->enc = *enc;
    v->first_task = TOK_FIRST_DIM + LAWT_MAX_DIM;
    v->first_word = v->first_task + LAWT_TASK_COUNT;
    v->size = vocab_size_of(enc, v->first_word);
    v->word_stride = 24; /* "<singularvalues>" and "FP-999/-8" fit */
    v->words = lawt_calloc((size_t)v->size, (size_t)v->word_stride);

    set_word(v, TOK_PAD, "<pad>");
    set_word(v, TOK_EOS, "<eos>");
    for (int d = 1; d <= LAWT_MAX_DIM; d++) set_word(v, TOK_FIRST_DIM + d - 1, "V%d", d);
    for (int t = 0; t < LAWT_TASK_COUNT; t++) set_word(v, v->first_task + t, "<%s>", task_name(t));

    switch (enc->kind) {
    case ENC_POSITIONAL:
        set_word(v, v->first_word, "+");
        set_word(v, v->first_word + 1, "-");
        for (int d = 0; d < enc->base; d++) set_word(v, positional_first_digit(v) + d, "%d", d);
        break;
    case ENC_BALANCED:
        for (int k = 0; k < enc->base; k++) set_word(v, v->first_word + k, "N%d", k - balanced_half(v));
        break;
    case ENC_FLOAT:
        for (int id = v->first_word; id < v->size; id++) {
            int64_t m;
            int b;
            float_value_of(v, id, &m, &b);
            set_word(v, id, "FP%lld/%d", (long long)m, b);
        }
        return;
    }
    for (int e = -enc->max_exponent; e <= enc->max_exponent; e++)
        set_word(v, first_exponent(v) + e + enc->max_exponent, "E%d", e);
}

void vocab_free(lawt_vocab *v)
{
    free(v->words);
    v->words = NULL;
    v->size = 0;
}

const char *vocab_word(const lawt_vocab *v, int id)
{
    return (id >= 0 && id < v->size) ? word_slot(v, id) : "<oov>";
}

/* Reads the integer at s; sets *end past it. Returns 0 when there is none. */
static int parse_int(const char *s, const char **end, long *out)
{
    char *e;
    *out = strtol(s, &e, 10);
    *end = e;
    return e != s;
}

/* The id the word would have if it is well spelled; vocab_lookup then checks the spelling
 * against the table, which rejects leading zeros, "+5", "-0" and the like for free. */
static int candidate_id(const lawt_vocab *v, const char *w)
{
    const lawt_encoding *enc = &v->enc;
    const char *end;
    long n, b;
    if (w[0] == '<') {
        for (int id = 0; id < v->first_word; id++)
            if (strcmp(word_slot(v, id), w) == 0) return id;
        return -1;
    }
    if (w[0] == 'V') {
        if (!parse_int(w + 1, &end, &n) || n < 1 || n > LAWT_MAX_DIM) return -1;
        return TOK_FIRST_DIM + (int)n - 1;
    }
    if (w[0] == 'E' && enc->kind != ENC_FLOAT) {
        if (!parse_int(w + 1, &end, &n) || n < -enc->max_exponent || n > enc->max_exponent) return -1;
        return first_exponent(v) + (int)n + enc->max_exponent;
    }
    switch (enc->kind) {
    case ENC_POSITIONAL:
        if (strcmp(w, "+") == 0) return v->first_word;
        if (strcmp(w, "-") == 0) return v->first_word + 1;
        if (!parse_int(w, &end, &n) || n < 0 || n >= enc->base) return -1;
        return positional_first_digit(v) + (int)n;
    case ENC_BALANCED:
        if (w[0] != 'N' || !parse_int(w + 1, &end, &n)) return -1;
        if (n < -balanced_half(v) || n > balanced_half(v)) return -1;
        return v->first_word + (int)n + balanced_half(v);
    case ENC_FLOAT: {
        if (strncmp(w, "FP", 2) != 0 || !parse_int(w + 2, &end, &n) || *end != '/') return -1;
        if (!parse_int(end + 1, &end, &b) || b < -enc->max_exponent || b > enc->max_exponent) return -1;
        long lo = (long)ipow10(enc->digits - 1), top = (long)ipow10(enc->digits) - 1;
        if (n != 0 && (labs(n) < lo || labs(n) > top)) return -1;
        return float_id(v, n, (int)b);
    }
    }
    return -1;
}

int vocab_lookup(const lawt_vocab *v, const char *word)
{
    int id = candidate_id(v, word);
    return (id >= 0 && id < v->size && strcmp(word_slot(v, id), word) == 0) ? id : -1;
}

int vocab_dim_token(const lawt_vocab *v, int dim)
{
    (void)v;
    return (dim >= 1 && dim <= LAWT_MAX_DIM) ? TOK_FIRST_DIM + dim - 1 : -1;
}

int vocab_task_token(const lawt_vocab *v, lawt_task task)
{
    return ((int)task >= 0 && task < LAWT_TASK_COUNT) ? v->first_task + (int)task : -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Encode / decode                                                                            */

/* Writes the tokens of x at ids (room for one coefficient); returns -1 when x is NaN/Inf or
 * its rounded exponent is outside the encoding's range. */
static int encode_number(const lawt_vocab *v, double x, int *ids)
{
    const lawt_encoding *enc = &v->enc;
    if (!isfinite(x)) return -1;
    int64_t m = 0;
    int p = 0;
    if (x != 0.0) {
        split_decimal(fabs(x), enc->digits, &m, &p);
        if (p < -enc->max_exponent || p > enc->max_exponent) return -1;
        if (x < 0) m = -m;
    }
    switch (enc->kind) {
    case ENC_POSITIONAL: {
        ids[0] = v->first_word + (m < 0);
        int64_t a = m < 0 ? -m : m;
        for (int t = enc->mantissa_tokens; t >= 1; t--) {
            ids[t] = positional_first_digit(v) + (int)(a % enc->base);
            a /= enc->base;
        }
        ids[enc->mantissa_tokens + 1] = first_exponent(v) + p + enc->max_exponent;
        return 0;
    }
    case ENC_BALANCED:
        ids[0] = v->first_word + (int)m + balanced_half(v);
        ids[1] = first_exponent(v) + p + enc->max_exponent;
        return 0;
    case ENC_FLOAT:
        ids[0] = float_id(v, m, p);
        return 0;
    }
    return -1;
}

int encode_matrix(const lawt_vocab *v, const lawt_matrix *m, int *ids, int cap)
{
    if (m->rows < 1 || m->rows > LAWT_MAX_DIM || m->cols < 1 || m->cols > LAWT_MAX_DIM) return -1;
    int n = encoding_matrix_length(&v->enc, m->rows, m->cols);
    if (n > cap) return -1;
    int tpc = encoding_tokens_per_coefficient(&v->enc);
    ids[0] = vocab_dim_token(v, m->rows);
    ids[1] = vocab_dim_token(v, m->cols);
    size_t count = (size_t)m->rows * (size_t)m->cols;
    for (size_t k = 0; k < count; k++)
        if (encode_number(v, m->a[k], ids + 2 + k * (size_t)tpc) < 0) return -1;
    return n;
}

static int in_range(int id, int first, int count) { return id >= first && id < first + count; }

/* Reads one coefficient from exactly tpc ids; returns 0, or -1 when they do not spell one. */
static int decode_number(const lawt_vocab *v, const int *ids, double *out)
{
    const lawt_encoding *enc = &v->enc;
    int exponents = 2 * enc->max_exponent + 1;
    int64_t m = 0;
    int p = 0;
    switch (enc->kind) {
    case ENC_POSITIONAL: {
        if (!in_range(ids[0], v->first_word, 2)) return -1;
        for (int t = 1; t <= enc->mantissa_tokens; t++) {
            if (!in_range(ids[t], positional_first_digit(v), enc->base)) return -1;
            m = m * enc->base + (ids[t] - positional_first_digit(v));
        }
        int e = ids[enc->mantissa_tokens + 1];
        if (!in_range(e, first_exponent(v), exponents)) return -1;
        p = e - first_exponent(v) - enc->max_exponent;
        if (ids[0] == v->first_word + 1) m = -m;
        break;
    }
    case ENC_BALANCED:
        if (!in_range(ids[0], v->first_word, enc->base)) return -1;
        if (!in_range(ids[1], first_exponent(v), exponents)) return -1;
        m = ids[0] - v->first_word - balanced_half(v);
        p = ids[1] - first_exponent(v) - enc->max_exponent;
        break;
    case ENC_FLOAT:
        if (!in_range(ids[0], v->first_word, v->size - v->first_word)) return -1;
        float_value_of(v, ids[0], &m, &p);
        break;
    }
    double r = m == 0 ? 0.0 : compose_decimal(m < 0 ? -m : m, p);
    *out = m < 0 ? -r : r;
    return 0;
}

decode_status decode_matrix(const lawt_vocab *v, const int *ids, int n, lawt_matrix *m, int cap)
{
    m->rows = m->cols = 0;
    if (n < 2 || !in_range(ids[0], TOK_FIRST_DIM, LAWT_MAX_DIM) ||
        !in_range(ids[1], TOK_FIRST_DIM, LAWT_MAX_DIM))
        return DECODE_MALFORMED;
    int rows = ids[0] - TOK_FIRST_DIM + 1, cols = ids[1] - TOK_FIRST_DIM + 1;
    int tpc = encoding_tokens_per_coefficient(&v->enc);
    if (rows * cols > cap || n != 2 + rows * cols * tpc) return DECODE_MALFORMED;
    for (int k = 0; k < rows * cols; k++)
        if (decode_number(v, ids + 2 + k * tpc, &m->a[k]) < 0) return DECODE_MALFORMED;
    m->rows = rows;
    m->cols = cols;
    return DECODE_OK;
}

int vocab_spell(const lawt_vocab *v, const int *ids, int n, char *buf, size_t cap)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const char *w = vocab_word(v, ids[i]);
        size_t wl = strlen(w);
        if (i > 0) {
            if (len + 1 < cap) buf[len] = ' ';
            len++;
        }
        if (len < cap) memcpy(buf + len, w, len + wl < cap ? wl : cap - 1 - len);
        len += wl;
    }
    if (cap > 0) buf[len < cap ? len : cap - 1] = '\0';
    return (int)len;
}
