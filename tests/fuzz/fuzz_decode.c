/* fuzz_decode: libFuzzer target for the token decoder (encoding/encoding.c: decode_matrix,
 * vocab_spell), what reads a model's predictions. The first byte picks the encoding, the rest
 * are token ids (2 bytes each, so out-of-range ids occur too). Decoding must never crash; a
 * matrix it accepts must be within its capacity, and encoding it and decoding the result must
 * give the same numbers back. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/encoding.h"

#define CAP 10000 /* coefficients: a 100 x 100 matrix */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"P10", "P100", "P1000", "P10000", "B1999", "FP15"};
    static lawt_vocab vocab[6];
    static int ready;
    if (!ready) {
        for (int i = 0; i < 6; i++) {
            lawt_encoding enc;
            if (encoding_from_name(names[i], &enc)) abort();
            vocab_init(&vocab[i], &enc);
        }
        ready = 1;
    }
    if (size < 1) return 0;
    const lawt_vocab *v = &vocab[data[0] % 6];
    int n = (int)((size - 1) / 2);
    int *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = (int16_t)(data[1 + 2 * i] | data[2 + 2 * i] << 8);
    static double a[CAP], b[CAP];
    lawt_matrix m = {0, 0, a};
    char words[4096];
    int len = vocab_spell(v, ids, n, words, sizeof words);
    if (len < 0 || strlen(words) >= sizeof words) abort();
    if (decode_matrix(v, ids, n, &m, CAP) == DECODE_OK) {
        if (m.rows < 1 || m.cols < 1 || m.rows * m.cols > CAP) abort();
        int cap = encoding_matrix_length(&v->enc, m.rows, m.cols);
        int *again = malloc((size_t)cap * sizeof *again);
        int k = encode_matrix(v, &m, again, cap);
        lawt_matrix back = {0, 0, b};
        /* A value the encoding cannot write back (beyond its exponents once normalised) is
         * refused by encode_matrix; anything it writes must decode to the same numbers. */
        if (k > 0) {
            if (decode_matrix(v, again, k, &back, CAP) != DECODE_OK || back.rows != m.rows ||
                back.cols != m.cols)
                abort();
            for (int i = 0; i < m.rows * m.cols; i++)
                if (fabs(back.a[i] - m.a[i]) > 1e-12 * fabs(m.a[i])) {
                    fprintf(stderr, "coefficient %d: %.17g decodes back as %.17g\n", i, m.a[i],
                            back.a[i]);
                    abort();
                }
        }
        free(again);
    }
    free(ids);
    return 0;
}
