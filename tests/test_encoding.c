/* test_encoding: round_significant against printf, vocabularies, spellings, round trips,
 * rejection of out-of-range values, and decoding of malformed or random sequences. */
#include "encoding/encoding.h"
#include "tests/test.h"

#include <float.h>
#include <stdint.h>
#include <string.h>

static const char *const ALL_ENCODINGS[] = {"P10", "P100", "P1000", "P10000", "B1999", "FP15"};
#define NENC 6

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void) /* xorshift64*: enough for test inputs */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}
static double rng_unit(void) { return (double)(rng_next() >> 11) * 0x1p-53; }

static double printf_rounding(double x, int digits)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*e", digits - 1, x);
    double r = strtod(buf, NULL);
    return r == 0.0 ? 0.0 : r;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* A value of one of several shapes: any finite bit pattern, uniform coefficients, random
 * magnitudes, and decimal near-ties such as 1.2345 or 9.9951 (which sit within an ulp of a
 * rounding boundary), and exact binary ties such as 0.125. */
static double random_test_value(int shape)
{
    double x;
    char buf[64];
    switch (shape) {
    case 0: {
        uint64_t bits = rng_next();
        memcpy(&x, &bits, sizeof x);
        return isfinite(x) ? x : 1.0;
    }
    case 1: return 20.0 * rng_unit() - 10.0;
    case 2: return ldexp(rng_unit() - 0.5, (int)(rng_next() % 240) - 120);
    case 3:
        snprintf(buf, sizeof buf, "%s%lu5e%d", rng_next() & 1 ? "-" : "",
                 (unsigned long)(rng_next() % 100000), (int)(rng_next() % 40) - 25);
        return strtod(buf, NULL);
    default: return ldexp((double)(2 * (rng_next() % 20000) + 1), -(int)(rng_next() % 12) - 1);
    }
}

static void test_round_significant(void)
{
    long mismatches = 0, n = 0;
    for (long i = 0; i < 1000000; i++) {
        double x = random_test_value((int)(i % 5));
        /* Digits 2-4 are the encodings' (3 million checks); 1, 5, 6 on a tenth of the values. */
        for (int d = 1; d <= 6; d++) {
            if ((d < 2 || d > 4) && i % 10) continue;
            double got = round_significant(x, d), want = printf_rounding(x, d);
            n++;
            if (!same_bits(got, want)) {
                if (mismatches++ < 5)
                    fprintf(stderr, "round_significant(%.17g, %d) = %.17g, printf: %.17g\n", x, d, got, want);
            }
        }
    }
    CHECK_MSG(mismatches == 0, "%ld of %ld roundings differ from printf", mismatches, n);

    static const double edges[] = {9.9951, 0.0012345, 1e-300, 999.5, 0.9995, 0.125, 2.5, 1.5,
                                   99.95, 1e22, 1e23, 9.995e21, 1e-22, 123456789.0, 5e-324,
                                   DBL_MIN, DBL_MAX, 1.0, 10.0, 100.0, 0.1, 0.3, 1e300};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        for (int d = 1; d <= 6; d++)
            for (int s = -1; s <= 1; s += 2) {
                double x = s * edges[i];
                CHECK_MSG(same_bits(round_significant(x, d), printf_rounding(x, d)), "x = %.17g d = %d", x, d);
            }
    CHECK(round_significant(9.9951, 3) == 10.0);
    CHECK(round_significant(999.5, 3) == 1000.0); /* exact tie, to even: 999|5 -> 1.00e3 */
    CHECK(round_significant(0.125, 2) == 0.12);   /* exact tie, to even */
    CHECK(round_significant(0.0012345, 3) == 0.00123);
    CHECK(round_significant(-3.14159, 3) == -3.14);
    double nz = round_significant(-0.0, 3);
    CHECK(nz == 0.0 && !signbit(nz));
    CHECK(isnan(round_significant(NAN, 3)));
    CHECK(isinf(round_significant(INFINITY, 3)));

    /* Datagen rounds every coefficient: report the speed (informative, no assertion). */
    double t = lawt_now(), acc = 0;
    for (int i = 0; i < 2000000; i++) acc += round_significant(20.0 * rng_unit() - 10.0, 3);
    t = lawt_now() - t;
    printf("round_significant: %.1f ns per call (checksum %.3f)\n", 1e9 * t / 2000000, acc);
}

static void expect_spelling(const char *encname, double x, const char *want)
{
    lawt_encoding enc;
    lawt_vocab v;
    encoding_from_name(encname, &enc);
    vocab_init(&v, &enc);
    lawt_matrix m = {1, 1, &x};
    int ids[16];
    char buf[128];
    int n = encode_matrix(&v, &m, ids, 16);
    CHECK_MSG(n == 2 + encoding_tokens_per_coefficient(&enc), "%s %.17g: n = %d", encname, x, n);
    if (n > 2) {
        vocab_spell(&v, ids + 2, n - 2, buf, sizeof buf);
        CHECK_MSG(strcmp(buf, want) == 0, "%s %.17g: '%s', want '%s'", encname, x, buf, want);
    }
    vocab_free(&v);
}

static void test_spellings(void)
{
    static const int tpc[NENC] = {5, 3, 3, 3, 2, 1};
    static const int sizes[NENC] = {111 + 2 + 10 + 201,   111 + 2 + 100 + 201, 111 + 2 + 1000 + 201,
                                    111 + 2 + 10000 + 201, 111 + 1999 + 201,   111 + 1 + 1800 * 17};
    for (int e = 0; e < NENC; e++) {
        lawt_encoding enc;
        lawt_vocab v;
        CHECK(encoding_from_name(ALL_ENCODINGS[e], &enc) == 0);
        CHECK(strcmp(enc.name, ALL_ENCODINGS[e]) == 0);
        CHECK_MSG(encoding_tokens_per_coefficient(&enc) == tpc[e], "%s", ALL_ENCODINGS[e]);
        CHECK(encoding_matrix_length(&enc, 5, 6) == 2 + 30 * tpc[e]);
        vocab_init(&v, &enc);
        CHECK_MSG(v.size == sizes[e], "%s: vocabulary of %d words", ALL_ENCODINGS[e], v.size);
        printf("%s: %d words, %d tokens per coefficient\n", enc.name, v.size, tpc[e]);
        vocab_free(&v);
    }
    lawt_encoding enc;
    CHECK(encoding_from_name("P7", &enc) == -1);
    CHECK(encoding_from_name("fp15", &enc) == -1);
    CHECK(strstr(encoding_names_list(), "P10000") != NULL);

    expect_spelling("P10", 3.14, "+ 3 1 4 E-2");
    expect_spelling("P1000", 3.14, "+ 314 E-2");
    expect_spelling("B1999", 3.14, "N314 E-2");
    expect_spelling("FP15", 3.14, "FP314/-2");
    expect_spelling("P100", 3.14, "+ 31 E-1");
    expect_spelling("P10000", 3.14159, "+ 3142 E-3");
    expect_spelling("P10", -6.02e23, "- 6 0 2 E21");
    expect_spelling("P1000", -6.02e23, "- 602 E21");
    expect_spelling("B1999", -6.02e23, "N-602 E21");
    expect_spelling("FP15", -6.02e8, "FP-602/6");
    expect_spelling("P10", 0.0, "+ 0 0 0 E0");
    expect_spelling("P10", -0.0, "+ 0 0 0 E0");
    expect_spelling("P1000", 0.0, "+ 0 E0");
    expect_spelling("P10000", 0.0, "+ 0 E0");
    expect_spelling("B1999", -0.0, "N0 E0");
    expect_spelling("FP15", 0.0, "FP0/0");
    expect_spelling("P1000", 9.9951, "+ 100 E-1");
    expect_spelling("P10", 9.9951, "+ 1 0 0 E-1");
    expect_spelling("P1000", 999.5, "+ 100 E1");
    expect_spelling("P1000", 0.9995, "+ 100 E-2");
    expect_spelling("P1000", 0.0012345, "+ 123 E-5");
    expect_spelling("P10000", 0.0012345, "+ 1234 E-6"); /* 0.0012345 is below the tie */
    expect_spelling("P1000", 9.99e102, "+ 999 E100");
    expect_spelling("P1000", 1e-98, "+ 100 E-100");
    expect_spelling("FP15", 9.99e10, "FP999/8");
    expect_spelling("FP15", -1e-6, "FP-100/-8");
    expect_spelling("P10", 5.0, "+ 5 0 0 E-2");
}

static int encode_scalar(const char *encname, double x)
{
    lawt_encoding enc;
    lawt_vocab v;
    encoding_from_name(encname, &enc);
    vocab_init(&v, &enc);
    lawt_matrix m = {1, 1, &x};
    int ids[16];
    int n = encode_matrix(&v, &m, ids, 16);
    vocab_free(&v);
    return n;
}

static void test_rejections(void)
{
    for (int e = 0; e < NENC; e++) {
        CHECK(encode_scalar(ALL_ENCODINGS[e], NAN) == -1);
        CHECK(encode_scalar(ALL_ENCODINGS[e], INFINITY) == -1);
        CHECK(encode_scalar(ALL_ENCODINGS[e], -INFINITY) == -1);
        CHECK(encode_scalar(ALL_ENCODINGS[e], 1e200) == -1);
        CHECK(encode_scalar(ALL_ENCODINGS[e], -1e-200) == -1);
    }
    CHECK(encode_scalar("P1000", 9.995e102) == -1); /* rounds up to 1.00e103 */
    CHECK(encode_scalar("P1000", 9.99e102) > 0);
    CHECK(encode_scalar("P1000", 9.99e-99) == -1); /* 999e-101 */
    CHECK(encode_scalar("B1999", -9.99e-99) == -1);
    CHECK(encode_scalar("P10", 1e-98) > 0);
    CHECK(encode_scalar("P10000", 1e-97) > 0);
    CHECK(encode_scalar("P10000", 9.999e-98) == -1); /* 9999e-101 */
    CHECK(encode_scalar("FP15", 9.995e10) == -1);
    CHECK(encode_scalar("FP15", 9.99e-7) == -1);
    CHECK(encode_scalar("FP15", 1e-6) > 0);

    lawt_encoding enc;
    lawt_vocab v;
    encoding_from_name("P1000", &enc);
    vocab_init(&v, &enc);
    double a[6] = {1, 2, 3, 4, 5, 6};
    int ids[32];
    lawt_matrix m = {2, 3, a};
    CHECK(encode_matrix(&v, &m, ids, 20) == 20);
    CHECK(encode_matrix(&v, &m, ids, 19) == -1); /* does not fit */
    lawt_matrix empty = {0, 3, a}, huge = {101, 1, a};
    CHECK(encode_matrix(&v, &empty, ids, 32) == -1);
    CHECK(encode_matrix(&v, &huge, ids, 32) == -1);
    a[4] = NAN;
    CHECK(encode_matrix(&v, &m, ids, 32) == -1);
    vocab_free(&v);
}

/* Every id's word looks up to that id, and a few near-miss spellings are not words. */
static void test_lookup(void)
{
    for (int e = 0; e < NENC; e++) {
        lawt_encoding enc;
        lawt_vocab v;
        encoding_from_name(ALL_ENCODINGS[e], &enc);
        vocab_init(&v, &enc);
        int bad = 0;
        for (int id = 0; id < v.size; id++)
            if (vocab_lookup(&v, vocab_word(&v, id)) != id && bad++ < 3)
                fprintf(stderr, "%s: '%s' (%d) looks up to %d\n", enc.name, vocab_word(&v, id), id,
                        vocab_lookup(&v, vocab_word(&v, id)));
        CHECK_MSG(bad == 0, "%s: %d words do not look up to their id", enc.name, bad);
        static const char *const junk[] = {"", " ", "V0", "V101", "V05", "E101", "E-101", "E+2",
                                           "E02", "E-0", "007", "-0", "+5", "N1000", "N-0", "N+3",
                                           "FP1000/0", "FP99/0", "FP100/9", "FP100/-9", "FP0/1",
                                           "FP-0/0", "FP100/+1", "FP100", "<oov>", "<foo>", "x",
                                           "10000", "FP314/-2 ", "3 1"};
        for (size_t j = 0; j < sizeof junk / sizeof junk[0]; j++)
            CHECK_MSG(vocab_lookup(&v, junk[j]) == -1, "%s: '%s' -> %d", enc.name, junk[j],
                      vocab_lookup(&v, junk[j]));
        CHECK(vocab_lookup(&v, "<eos>") == TOK_EOS);
        CHECK(vocab_lookup(&v, "<pad>") == TOK_PAD);
        CHECK(vocab_lookup(&v, "V7") == vocab_dim_token(&v, 7));
        CHECK(vocab_lookup(&v, "<matmul>") == vocab_task_token(&v, TASK_MATMUL));
        CHECK(vocab_lookup(&v, "<inversion>") == v.first_task + LAWT_TASK_COUNT - 1);
        CHECK(vocab_dim_token(&v, 0) == -1 && vocab_dim_token(&v, 101) == -1);
        CHECK(strcmp(vocab_word(&v, -1), "<oov>") == 0 && strcmp(vocab_word(&v, v.size), "<oov>") == 0);
        vocab_free(&v);
    }

    lawt_encoding enc;
    lawt_vocab v;
    encoding_from_name("FP15", &enc);
    vocab_init(&v, &enc);
    double t = lawt_now();
    long found = 0;
    for (int r = 0; r < 20; r++)
        for (int id = v.first_word; id < v.size; id++) found += vocab_lookup(&v, vocab_word(&v, id)) == id;
    t = lawt_now() - t;
    CHECK(found == 20L * (v.size - v.first_word));
    printf("vocab_lookup FP15: %.0f ns per word\n", 1e9 * t / (20.0 * (v.size - v.first_word)));
    vocab_free(&v);
}

/* A coefficient spread over many magnitudes that the encoding can represent. */
static double representable_value(const lawt_encoding *enc)
{
    int lowest = enc->digits - 1 - enc->max_exponent, span = 2 * enc->max_exponent + 1;
    double x = (rng_unit() * 8.9 + 1.0) * pow(10.0, lowest + (int)(rng_next() % (unsigned)span));
    switch (rng_next() % 8) {
    case 0: return 0.0;
    case 1: return -0.0;
    case 2: return 20.0 * rng_unit() - 10.0;
    default: return rng_next() & 1 ? -x : x;
    }
}

static void test_round_trip(void)
{
    for (int e = 0; e < NENC; e++) {
        lawt_encoding enc;
        lawt_vocab v;
        encoding_from_name(ALL_ENCODINGS[e], &enc);
        vocab_init(&v, &enc);
        int cap = encoding_matrix_length(&enc, 12, 12);
        int *ids = lawt_malloc((size_t)cap * sizeof *ids);
        double a[144], back[144];
        long bad = 0, bad_len = 0, matrices = 2000;
        for (long t = 0; t < matrices; t++) {
            lawt_matrix m = {1 + (int)(rng_next() % 12), 1 + (int)(rng_next() % 12), a};
            for (int k = 0; k < m.rows * m.cols; k++) a[k] = representable_value(&enc);
            int n = encode_matrix(&v, &m, ids, cap);
            bad_len += n != encoding_matrix_length(&enc, m.rows, m.cols);
            lawt_matrix d = {0, 0, back};
            if (n < 0 || decode_matrix(&v, ids, n, &d, 144) != DECODE_OK || d.rows != m.rows || d.cols != m.cols) {
                bad++;
                continue;
            }
            for (int k = 0; k < m.rows * m.cols; k++)
                if (!same_bits(back[k], round_significant(a[k], enc.digits)) && bad++ < 3)
                    fprintf(stderr, "%s: %.17g decodes to %.17g\n", enc.name, a[k], back[k]);
        }
        CHECK_MSG(bad == 0 && bad_len == 0, "%s: %ld round-trip failures, %ld bad lengths", enc.name, bad, bad_len);

        /* The spelled words look up to the same ids (what the CLI relies on). */
        double x[4] = {3.14, -0.0, 9.9951, -6.02e5};
        lawt_matrix m = {2, 2, x};
        int n = encode_matrix(&v, &m, ids, cap);
        char buf[256];
        int len = vocab_spell(&v, ids, n, buf, sizeof buf);
        CHECK(len == (int)strlen(buf));
        int re[64], nre = 0;
        for (char *save, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) re[nre++] = vocab_lookup(&v, w);
        CHECK(nre == n && memcmp(re, ids, (size_t)n * sizeof *ids) == 0);
        free(ids);
        vocab_free(&v);
    }
}

static int spell_ids(const lawt_vocab *v, const char *text, int *ids)
{
    char buf[512];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        int id = vocab_lookup(v, w);
        ids[n++] = id >= 0 ? id : atoi(w + 1); /* "#123": a raw id, valid or not */
    }
    return n;
}

static decode_status decode_text(const char *encname, const char *text, double *out)
{
    lawt_encoding enc;
    lawt_vocab v;
    encoding_from_name(encname, &enc);
    vocab_init(&v, &enc);
    int ids[64];
    int n = spell_ids(&v, text, ids);
    double a[16];
    lawt_matrix m;
    m.a = a;
    decode_status s = decode_matrix(&v, ids, n, &m, 4);
    if (s == DECODE_OK && out) *out = a[0];
    vocab_free(&v);
    return s;
}

static void test_malformed(void)
{
    double x = 0;
    CHECK(decode_text("P10", "V1 V1 + 3 1 4 E-2", &x) == DECODE_OK && x == 3.14);
    CHECK(decode_text("P10", "V1 V1 - 0 1 4 E-2", &x) == DECODE_OK && x == -0.14); /* lenient */
    CHECK(decode_text("P1000", "V1 V1 + 0 E7", &x) == DECODE_OK && x == 0.0 && !signbit(x));
    CHECK(decode_text("B1999", "V1 V1 N5 E3", &x) == DECODE_OK && x == 5000.0);
    CHECK(decode_text("FP15", "V1 V1 FP-602/6", &x) == DECODE_OK && x == -6.02e8);
    CHECK(decode_text("P1000", "V2 V2 + 1 E0 + 2 E0 + 3 E0 + 4 E0", NULL) == DECODE_OK);
    CHECK(decode_text("P1000", "V1 V1 + 314 E-2 + 1 E0", NULL) == DECODE_MALFORMED);  /* trailing */
    CHECK(decode_text("P1000", "V1 V2 + 314 E-2", NULL) == DECODE_MALFORMED);         /* short */
    CHECK(decode_text("P1000", "V1 V1 314 + E-2", NULL) == DECODE_MALFORMED);         /* order */
    CHECK(decode_text("P1000", "V1 V1 + E-2 314", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("P1000", "V1 V1 + 314 314", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("P1000", "V1 + 314 E-2 E0", NULL) == DECODE_MALFORMED);         /* one dim */
    CHECK(decode_text("P1000", "+ 314 E-2", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("P1000", "V1 V1 + 314 <eos>", NULL) == DECODE_MALFORMED);       /* special */
    CHECK(decode_text("P1000", "V1 V1 + 314 <pad>", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("P1000", "V1 V1 <add> 314 E-2", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("P1000", "V1 V1 + V3 E-2", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("P1000", "V1 V1 + 314 #-1", NULL) == DECODE_MALFORMED);         /* oov */
    CHECK(decode_text("P1000", "V1 V1 + 314 #1314", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("P1000", "V3 V3 + 1 E0", NULL) == DECODE_MALFORMED);            /* > cap */
    CHECK(decode_text("P1000", "", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("P10", "V1 V1 + 3 1 E-2", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("P10", "V1 V1 + 3 1 4 5 E-2", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("B1999", "V1 V1 E-2 N314", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("B1999", "V1 V1 N314", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("FP15", "V1 V1 FP314/-2 FP1/0", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("FP15", "V1 V1 <eos>", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("FP15", "V1 V1 #30712", NULL) == DECODE_MALFORMED);
    CHECK(decode_text("FP15", "V1 V1 V2", NULL) == DECODE_MALFORMED);

    /* Fuzz: random id soups, and valid sequences truncated or with one token replaced. Under
     * ASan this is the "never crashes" check; here it also checks what an OK decode claims. */
    for (int e = 0; e < NENC; e++) {
        lawt_encoding enc;
        lawt_vocab v;
        encoding_from_name(ALL_ENCODINGS[e], &enc);
        vocab_init(&v, &enc);
        enum { CAP = 36, MAXN = 2 + CAP * 5 + 4 };
        int ids[MAXN];
        double a[CAP];
        long bad_claims = 0, truncated_ok = 0;
        for (int t = 0; t < 20000; t++) {
            int n = (int)(rng_next() % MAXN);
            for (int i = 0; i < n; i++) ids[i] = (int)(rng_next() % (unsigned)(v.size + 20)) - 10;
            lawt_matrix m = {-1, -1, a};
            if (decode_matrix(&v, ids, n, &m, CAP) == DECODE_OK)
                bad_claims += m.rows * m.cols > CAP || n != encoding_matrix_length(&enc, m.rows, m.cols);
            /* A valid matrix, then damaged. */
            lawt_matrix src = {1 + (int)(rng_next() % 6), 1 + (int)(rng_next() % 6), a};
            for (int k = 0; k < src.rows * src.cols; k++) a[k] = 20.0 * rng_unit() - 10.0;
            int len = encode_matrix(&v, &src, ids, MAXN);
            int cut = (int)(rng_next() % (unsigned)len);
            truncated_ok += decode_matrix(&v, ids, cut, &m, CAP) == DECODE_OK;
            ids[rng_next() % (unsigned)len] = (int)(rng_next() % (unsigned)(v.size + 20)) - 10;
            if (decode_matrix(&v, ids, len, &m, CAP) == DECODE_OK) bad_claims += m.rows * m.cols > CAP;
        }
        CHECK_MSG(bad_claims == 0 && truncated_ok == 0, "%s: %ld bad claims, %ld truncations decoded",
                  enc.name, bad_claims, truncated_ok);
        vocab_free(&v);
    }
}

static void test_spell_buffer(void)
{
    lawt_encoding enc;
    lawt_vocab v;
    encoding_from_name("P10", &enc);
    vocab_init(&v, &enc);
    int ids[] = {vocab_dim_token(&v, 1), vocab_dim_token(&v, 12), -5};
    char buf[8];
    CHECK(vocab_spell(&v, ids, 3, buf, sizeof buf) == (int)strlen("V1 V12 <oov>"));
    CHECK(strcmp(buf, "V1 V12 ") == 0);
    CHECK(vocab_spell(&v, ids, 2, buf, 3) == 6 && strcmp(buf, "V1") == 0);
    CHECK(vocab_spell(&v, ids, 2, buf, 4) == 6 && strcmp(buf, "V1 ") == 0);
    CHECK(vocab_spell(&v, ids, 0, buf, sizeof buf) == 0 && buf[0] == '\0');
    CHECK(vocab_spell(&v, ids, 1, NULL, 0) == 2);
    vocab_free(&v);
}

int main(void)
{
    test_round_significant();
    test_spellings();
    test_rejections();
    test_lookup();
    test_round_trip();
    test_malformed();
    test_spell_buffer();
    return test_report("test_encoding");
}
