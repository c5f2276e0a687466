/* encoding.h: numbers and matrices as token sequences (paper section 2.1, Appendix A, C).
 *
 * A coefficient x != 0 is written x = s * m * 10^e with m an integer of `digits` significant
 * decimal digits (m in [10^(digits-1), 10^digits)). The encodings spell (s, m, e):
 *   P10    + 3 1 4 E-2        sign, one token per base-10 digit, exponent E-100..E100
 *   P100 / P1000 / P10000     sign, m in base 100/1000/10000 (2/3/4 digits: one token), exponent
 *   B1999  N314 E-2           signed mantissa N-999..N999, exponent
 *   FP15   FP314/-2           one token for m * 10^b, m signed, b in [-8, 8]
 * Zero keeps the token count of its encoding: "+ 0 0 0 E0", "+ 0 E0", "N0 E0", "FP0/0".
 * A matrix is "Vm Vn" followed by its coefficients row by row.
 *
 * Token ids: the vocabulary of an encoding starts with the special words (PAD, EOS), then
 * V1..V100, then one task token per lawt_task (for joint training), then the encoding's
 * own words. Every id in [0, size) has a printable word. */
#ifndef LAWT_ENCODING_H
#define LAWT_ENCODING_H

#include "common/common.h"

typedef enum {
    ENC_POSITIONAL, /* P10, P100, P1000, P10000 */
    ENC_BALANCED,   /* B1999 */
    ENC_FLOAT,      /* FP15 */
} encoding_kind;

typedef struct {
    encoding_kind kind;
    int base;            /* digit base (positional), 1999 (balanced), 0 (float) */
    int digits;          /* significant decimal digits of the mantissa */
    int mantissa_tokens; /* tokens spelling the mantissa (positional); 1 otherwise */
    int max_exponent;    /* exponent tokens/values cover [-max_exponent, max_exponent] */
    char name[16];       /* "P1000" */
} lawt_encoding;

/* Parses "P10", "P100", "P1000", "P10000", "B1999", "FP15"; returns 0, or -1 when unknown. */
int encoding_from_name(const char *name, lawt_encoding *enc);
/* The names above joined by ", " for error messages. */
const char *encoding_names_list(void);
int encoding_tokens_per_coefficient(const lawt_encoding *enc);
/* Tokens of an encoded rows x cols matrix, without sequence framing: 2 + rows*cols*tpc. */
int encoding_matrix_length(const lawt_encoding *enc, int rows, int cols);

/* x rounded to `digits` (1 to 15) significant decimal digits: exactly strtod of C's
 * "%.{digits-1}e" (ties to even on the exact binary value), without printf on the fast path
 * (~15 ns). -0.0 becomes +0.0; NaN and Inf are returned as they are. */
double round_significant(double x, int digits);

enum { TOK_PAD = 0, TOK_EOS = 1, TOK_FIRST_DIM = 2 };

typedef struct {
    lawt_encoding enc;
    int size;       /* number of token ids */
    int first_task; /* id of the task token of task 0 */
    int first_word; /* id of the encoding's first own word */
    char *words;    /* size words, each word_stride bytes, NUL-terminated */
    int word_stride;
} lawt_vocab;

void vocab_init(lawt_vocab *v, const lawt_encoding *enc);
void vocab_free(lawt_vocab *v);
/* The printable word of an id ("<pad>", "<eos>", "V5", "<matmul>", "+", "314", "E-2", ...),
 * or "<oov>" for an id outside [0, size). */
const char *vocab_word(const lawt_vocab *v, int id);
/* The id of a word, or -1 when the word is not in the vocabulary. */
int vocab_lookup(const lawt_vocab *v, const char *word);
int vocab_dim_token(const lawt_vocab *v, int dim); /* V<dim> */
int vocab_task_token(const lawt_vocab *v, lawt_task task);

/* Encodes m (coefficients already rounded or not: they are rounded here to enc.digits) into
 * ids[0 .. n). Returns n, or -1 when it does not fit in cap, or a coefficient is NaN/Inf or
 * its exponent is beyond the encoding's range (documented in encoding.c: such values are
 * rejected, never clamped, and datagen redraws the example). Tiny values that round below the
 * smallest representable magnitude are rejected too. */
int encode_matrix(const lawt_vocab *v, const lawt_matrix *m, int *ids, int cap);

typedef enum { DECODE_OK = 0, DECODE_MALFORMED = 1 } decode_status;

/* Decodes one matrix from ids[0 .. n) into m->a (capacity cap coefficients), setting m->rows
 * and m->cols. Never crashes: bad token order, wrong count, trailing tokens, an out-of-range
 * id or too many coefficients give DECODE_MALFORMED. The sequence must hold exactly one
 * matrix (no EOS: the caller strips the framing). */
decode_status decode_matrix(const lawt_vocab *v, const int *ids, int n, lawt_matrix *m, int cap);

/* Writes the words of ids[0 .. n) separated by single spaces into buf (always NUL-terminated);
 * returns the length the full string needs, like snprintf. */
int vocab_spell(const lawt_vocab *v, const int *ids, int n, char *buf, size_t cap);

#endif
