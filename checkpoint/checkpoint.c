/* checkpoint.c: HDF5 checkpoints (checkpoint.h). The layout is documented in README.md,
 * "Checkpoint format":
 *
 *   /params/<tensor name>   float32, the tensor's shape; attribute "offset" (int64): its
 *                           position, in floats, in the flat parameter buffer
 *   /adam/m/<tensor name>   float32, first Adam moment, same names and shapes
 *   /adam/v/<tensor name>   float32, second Adam moment
 *   /config_text            fixed-length string: the resolved INI text of the run
 *   /metrics_jsonl          fixed-length string: the metrics history, one JSON object a line
 *   attributes of /         lawt_version (string), format_version, step, examples_seen, epoch,
 *                           seed, test_index, lr, best_accuracy, wall_seconds, num_params, the
 *                           model config (enc_layers ... max_len), the CRC-32 (zlib's) of each
 *                           of the five blocks of data above, and (format_version 2) of the
 *                           numeric attributes themselves (attributes_crc32); from
 *                           format_version 3 the model config has arch, rnn_layers,
 *                           rnn_hidden and rnn_reverse_source too (an earlier file holds a
 *                           transformer)
 *
 * Tensor names keep their dots ("enc.layer0.attn.qkv.weight"): one flat group per buffer,
 * names identical to model_tensors() and to a PyTorch-style state dict.
 *
 * Every HDF5 call is checked (H5_CHECKED): HDF5's own error printing is off, and a failure
 * becomes one message naming the file, our source line, the call and HDF5's innermost error. */
#include "checkpoint/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "common/common.h"
#include "encoding/encoding.h"

#define STEP_PREFIX "step-"
#define STEP_SUFFIX ".h5"

/* ---- errors ---- */

typedef struct {
    char *err;
    size_t errcap;
    const char *path;
    char object[160]; /* what is being read or written ("attribute step"), for messages */
} ctx;

static void fail(ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(ctx *x, const char *fmt, ...)
{
    if (!x->err || x->errcap == 0) return;
    int n = snprintf(x->err, x->errcap, "checkpoint %s: ", x->path ? x->path : "");
    if (n < 0 || (size_t)n >= x->errcap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err + n, x->errcap - (size_t)n, fmt, ap);
    va_end(ap);
}

typedef struct {
    char first[256], last[256];
    int count;
} h5_walk_data;

static herr_t h5_walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    h5_walk_data *w = data;
    const char *d = e->desc ? e->desc : "";
    if (w->count == 0) snprintf(w->first, sizeof w->first, "%s", d);
    snprintf(w->last, sizeof w->last, "%s", d);
    w->count++;
    return 0;
}

/* HDF5's error stack as "outermost: innermost" message, then cleared. */
static void h5_stack_text(char *buf, size_t cap)
{
    h5_walk_data w;
    memset(&w, 0, sizeof w);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_walk_cb, &w);
    H5Eclear2(H5E_DEFAULT);
    if (w.count > 1 && strcmp(w.first, w.last) != 0)
        snprintf(buf, cap, "%s: %s", w.first, w.last);
    else if (w.count > 0)
        snprintf(buf, cap, "%s", w.first);
    else
        snprintf(buf, cap, "no HDF5 error message");
    for (char *p = buf; *p; p++) /* HDF5 messages can hold newlines (a ctime) */
        if (*p == '\n' || *p == '\r') *p = ' ';
}

static void at(ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void at(ctx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->object, sizeof x->object, fmt, ap);
    va_end(ap);
}

static void h5_failed(ctx *x, const char *file, int line, const char *call)
{
    char detail[600];
    h5_stack_text(detail, sizeof detail);
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    if (x->object[0])
        fail(x, "%s: %s failed (%s:%d): %s", x->object, call, base, line, detail);
    else
        fail(x, "%s failed (%s:%d): %s", call, base, line, detail);
}

/* Jumps to the function's "out" label with the message set when an HDF5 call fails. */
#define H5_CHECKED(x, call)                                          \
    do {                                                          \
        if ((call) < 0) {                                         \
            h5_failed((x), __FILE__, __LINE__, #call);            \
            goto out;                                             \
        }                                                         \
    } while (0)

/* Closes an identifier if open, ignoring errors (cleanup paths). */
static void h5_close(hid_t *id)
{
    if (*id < 0) return;
    H5E_BEGIN_TRY
    {
        switch (H5Iget_type(*id)) {
        case H5I_FILE: H5Fclose(*id); break;
        case H5I_GROUP: H5Gclose(*id); break;
        case H5I_DATASET: H5Dclose(*id); break;
        case H5I_DATASPACE: H5Sclose(*id); break;
        case H5I_DATATYPE: H5Tclose(*id); break;
        case H5I_ATTR: H5Aclose(*id); break;
        case H5I_GENPROP_LST: H5Pclose(*id); break;
        default: break;
        }
    }
    H5E_END_TRY;
    *id = -1;
}

static void quiet_hdf5(void)
{
    /* Our messages replace HDF5's automatic printing of its error stack. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ---- CRC-32 (the zlib / PNG polynomial, so Python's zlib.crc32 verifies it) ---- */

static uint32_t crc_table[8][256];

static void crc_init(void)
{
    static int done;
    if (done) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
    done = 1;
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    crc_init();
    crc = ~crc;
    while (n >= 8) { /* slicing-by-8 over bytes: independent of the host's endianness */
        uint32_t a = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = crc_table[7][a & 0xFF] ^ crc_table[6][(a >> 8) & 0xFF] ^ crc_table[5][(a >> 16) & 0xFF] ^
              crc_table[4][a >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
              crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--) crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* CRC-32 of n floats as little-endian IEEE-754 bytes (the file's byte order). */
static uint32_t crc32_floats(const float *a, size_t n)
{
    if (host_is_little_endian()) return crc32_update(0, (const unsigned char *)a, n * sizeof *a);
    uint32_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b[4], *s = (unsigned char *)&a[i];
        b[0] = s[3], b[1] = s[2], b[2] = s[1], b[3] = s[0];
        crc = crc32_update(crc, b, 4);
    }
    return crc;
}

static uint32_t crc32_text(const char *s)
{
    return crc32_update(0, (const unsigned char *)(s ? s : ""), s ? strlen(s) : 0);
}

/* ---- the model's tensors ---- */

typedef struct {
    model_tensor *t;
    int n;
    size_t num_params;
} tensor_list;

static int tensors_of(ctx *x, const model_config *cfg, size_t num_params, tensor_list *tl)
{
    model_tensor probe;
    int n = model_tensors(cfg, &probe, 1);
    if (n <= 0) {
        fail(x, "the model has no tensors");
        return -1;
    }
    tl->t = lawt_calloc((size_t)n, sizeof *tl->t);
    tl->n = model_tensors(cfg, tl->t, n);
    tl->num_params = num_params;
    size_t next = 0;
    for (int i = 0; i < tl->n; i++) {
        size_t sz = 1;
        for (int d = 0; d < tl->t[i].ndim; d++) sz *= (size_t)tl->t[i].shape[d];
        if (tl->t[i].offset != next || tl->t[i].ndim < 1 || tl->t[i].ndim > MODEL_MAX_NDIM ||
            tl->t[i].name[0] == '\0' || strchr(tl->t[i].name, '/')) {
            fail(x, "model_tensors: tensor %d (%s) does not continue the buffer at float %zu", i,
                 tl->t[i].name, next);
            return -1;
        }
        next += sz;
    }
    if (next != num_params) {
        fail(x, "model_tensors cover %zu floats, the model has %zu", next, num_params);
        return -1;
    }
    return 0;
}

/* ---- model config attributes: the one list both writing and comparing use ---- */

#define CONFIG_FIELDS(X)                                                                 \
    X(enc_layers) X(dec_layers) X(enc_dim) X(dec_dim) X(enc_heads) X(dec_heads) X(vocab_in) \
        X(vocab_out) X(max_len)
/* Since format_version 3 (before: 0, a transformer, which has no recurrent layers). */
#define CONFIG_FIELDS_V3(X) X(arch) X(rnn_layers) X(rnn_hidden) X(rnn_reverse_source)
/* Since format_version 4: the loops of universal transformers (integers, then ACT's two
 * reals; before: 0, no loops). */
#define CONFIG_FIELDS_V4(X) X(enc_loops) X(dec_loops) X(loop_mode)
#define CONFIG_REALS_V4(X) X(act_threshold) X(ponder_cost)

/* ---- the numeric attributes of the root group ---- */

/* Every numeric attribute of / but format_version and the CRCs. */
typedef struct {
    long long step, examples_seen, epoch;
    unsigned long long seed, test_index, num_params;
    double lr, best_accuracy, wall_seconds;
    model_config cfg;
} header;

typedef enum { ATTR_I64, ATTR_U64, ATTR_F64, ATTR_I32 } attr_kind;

/* The one list writing, reading and attributes_crc32 use, in the order of the CRC. */
static const struct {
    const char *name;
    attr_kind kind;
    size_t offset;
    int since; /* the first format_version that has it */
} HEADER_ATTRS[] = {
    {"step", ATTR_I64, offsetof(header, step), 1},
    {"examples_seen", ATTR_I64, offsetof(header, examples_seen), 1},
    {"epoch", ATTR_I64, offsetof(header, epoch), 1},
    {"seed", ATTR_U64, offsetof(header, seed), 1},
    {"test_index", ATTR_U64, offsetof(header, test_index), 1},
    {"lr", ATTR_F64, offsetof(header, lr), 1},
    {"best_accuracy", ATTR_F64, offsetof(header, best_accuracy), 1},
    {"wall_seconds", ATTR_F64, offsetof(header, wall_seconds), 1},
    {"num_params", ATTR_U64, offsetof(header, num_params), 1},
#define HEADER_CONFIG_ATTR(field) {#field, ATTR_I32, offsetof(header, cfg.field), 1},
    CONFIG_FIELDS(HEADER_CONFIG_ATTR)
#undef HEADER_CONFIG_ATTR
#define HEADER_CONFIG_ATTR_V3(field) {#field, ATTR_I32, offsetof(header, cfg.field), 3},
    CONFIG_FIELDS_V3(HEADER_CONFIG_ATTR_V3)
#undef HEADER_CONFIG_ATTR_V3
#define HEADER_CONFIG_ATTR_V4(field) {#field, ATTR_I32, offsetof(header, cfg.field), 4},
    CONFIG_FIELDS_V4(HEADER_CONFIG_ATTR_V4)
#undef HEADER_CONFIG_ATTR_V4
#define HEADER_CONFIG_REAL_V4(field) {#field, ATTR_F64, offsetof(header, cfg.field), 4},
    CONFIG_REALS_V4(HEADER_CONFIG_REAL_V4)
#undef HEADER_CONFIG_REAL_V4
};
#define NHEADER_ATTRS (sizeof HEADER_ATTRS / sizeof HEADER_ATTRS[0])

static hid_t attr_file_type(attr_kind k)
{
    return k == ATTR_I64 ? H5T_STD_I64LE : k == ATTR_U64 ? H5T_STD_U64LE
                         : k == ATTR_F64 ? H5T_IEEE_F64LE : H5T_STD_I32LE;
}

static hid_t attr_mem_type(attr_kind k)
{
    return k == ATTR_I64 ? H5T_NATIVE_LLONG : k == ATTR_U64 ? H5T_NATIVE_ULLONG
                         : k == ATTR_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT;
}

/* attributes_crc32: the CRC-32 of the attributes of HEADER_ATTRS that a file of `version`
 * has, as little-endian bytes, in that order (int64, uint64, float64 as 8 bytes, int32 as 4):
 * what Python's struct.pack("<qqqQQdddQ9i", ...) gives for version 2, "<qqqQQdddQ13i" for 3,
 * "<qqqQQdddQ16i2d" for 4. */
static uint32_t header_crc(const header *h, int version)
{
    unsigned char buf[NHEADER_ATTRS * 8], *p = buf;
    for (size_t i = 0; i < NHEADER_ATTRS; i++) {
        if (HEADER_ATTRS[i].since > version) continue;
        const void *field = (const char *)h + HEADER_ATTRS[i].offset;
        uint64_t v;
        int bytes = 8;
        if (HEADER_ATTRS[i].kind == ATTR_I32) {
            v = (uint32_t) * (const int *)field;
            bytes = 4;
        } else {
            memcpy(&v, field, sizeof v); /* long long, unsigned long long or double: 8 bytes */
        }
        for (int b = 0; b < bytes; b++) *p++ = (unsigned char)(v >> (8 * b));
    }
    return crc32_update(0, buf, (size_t)(p - buf));
}
_Static_assert(sizeof(long long) == 8 && sizeof(double) == 8, "8-byte counters");

/* The values a lawt writer can produce (defined with the readers, used by the writer too). */
static int check_header(ctx *x, const header *h);

/* ---- writing ---- */

static int write_attr(ctx *x, hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                      const void *value)
{
    int rc = -1;
    hid_t sp = -1, a = -1;
    H5_CHECKED(x, sp = H5Screate(H5S_SCALAR));
    H5_CHECKED(x, a = H5Acreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECKED(x, H5Awrite(a, mem_type, value));
    rc = 0;
out:
    h5_close(&a);
    h5_close(&sp);
    return rc;
}

static int write_string_attr(ctx *x, hid_t loc, const char *name, const char *value)
{
    int rc = -1;
    hid_t t = -1;
    H5_CHECKED(x, t = H5Tcopy(H5T_C_S1));
    H5_CHECKED(x, H5Tset_size(t, strlen(value) + 1));
    H5_CHECKED(x, H5Tset_strpad(t, H5T_STR_NULLTERM));
    H5_CHECKED(x, H5Tset_cset(t, H5T_CSET_UTF8));
    rc = write_attr(x, loc, name, t, t, value);
out:
    h5_close(&t);
    return rc;
}

/* A scalar fixed-length string dataset (size strlen + 1, NUL-terminated). */
static int write_string_dataset(ctx *x, hid_t loc, const char *name, const char *value)
{
    int rc = -1;
    hid_t t = -1, sp = -1, d = -1;
    if (!value) value = "";
    H5_CHECKED(x, t = H5Tcopy(H5T_C_S1));
    H5_CHECKED(x, H5Tset_size(t, strlen(value) + 1));
    H5_CHECKED(x, H5Tset_strpad(t, H5T_STR_NULLTERM));
    H5_CHECKED(x, H5Tset_cset(t, H5T_CSET_UTF8));
    H5_CHECKED(x, sp = H5Screate(H5S_SCALAR));
    H5_CHECKED(x, d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECKED(x, H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, value));
    rc = 0;
out:
    h5_close(&d);
    h5_close(&sp);
    h5_close(&t);
    return rc;
}

/* One group of datasets, one a tensor, from the flat buffer buf. */
static int write_tensors(ctx *x, hid_t file, const char *group, const tensor_list *tl,
                         const float *buf, int with_offsets)
{
    int rc = -1;
    hid_t g = -1, sp = -1, d = -1, lcpl = -1;
    H5_CHECKED(x, lcpl = H5Pcreate(H5P_LINK_CREATE));
    H5_CHECKED(x, H5Pset_create_intermediate_group(lcpl, 1));
    H5_CHECKED(x, g = H5Gcreate2(file, group, lcpl, H5P_DEFAULT, H5P_DEFAULT));
    for (int i = 0; i < tl->n; i++) {
        const model_tensor *t = &tl->t[i];
        hsize_t dims[MODEL_MAX_NDIM];
        for (int k = 0; k < t->ndim; k++) dims[k] = (hsize_t)t->shape[k];
        H5_CHECKED(x, sp = H5Screate_simple(t->ndim, dims, NULL));
        H5_CHECKED(x, d = H5Dcreate2(g, t->name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        H5_CHECKED(x, H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + t->offset));
        if (with_offsets) {
            long long off = (long long)t->offset;
            if (write_attr(x, d, "offset", H5T_STD_I64LE, H5T_NATIVE_LLONG, &off) != 0) goto out;
        }
        h5_close(&d);
        h5_close(&sp);
    }
    rc = 0;
out:
    h5_close(&d);
    h5_close(&sp);
    h5_close(&g);
    h5_close(&lcpl);
    return rc;
}

/* The whole file is built in memory (HDF5's core driver without a backing store) and then
 * written by write_image: HDF5 itself never writes to the disk, so a full disk fails in our
 * own checked write, errno at hand, and never inside H5Fclose, whose failure (HDF5 1.10)
 * leaves a file identifier behind that crashes the library's shutdown at exit. The driver's
 * memory goes through these callbacks so that the closed file's bytes stay ours
 * (H5Fget_file_image would copy them, and its copy of a version-2 superblock fails its
 * checksum in HDF5 1.10). The price: the file's bytes in memory during a save, beside the
 * three host copies of the buffers. On success *image (malloc'd) holds *size bytes. */
typedef struct {
    void *kept; /* the driver's buffer when the file closed */
} image_owner;

/* The in-memory file's name: it never touches the disk, but H5Fcreate reads a file of the
 * same name if there is one, so not the checkpoint's own path. */
static const char IMAGE_NAME[] = "lawt-checkpoint-in-memory.h5";

static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op;
    (void)udata;
    return malloc(size);
}

static void *image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
                          void *udata)
{
    (void)op;
    (void)udata;
    return memcpy(dest, src, size);
}

static void *image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op;
    (void)udata;
    return realloc(ptr, size);
}

static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
    image_owner *owner = udata;
    if (op != H5FD_FILE_IMAGE_OP_FILE_CLOSE) {
        free(ptr);
        return 0;
    }
    /* H5Fcreate first tries to open an existing file of that name (it reads it whole with
     * this driver); the file we build closes last. */
    free(owner->kept);
    owner->kept = ptr;
    return 0;
}

static void *image_udata_copy(void *udata) { return udata; }
static herr_t image_udata_free(void *udata)
{
    (void)udata;
    return 0;
}

static int build_image(ctx *x, const model *m, const checkpoint_meta *meta, const tensor_list *tl,
                       const float *params, const float *am, const float *av, void **image,
                       size_t *size)
{
    int rc = -1;
    hid_t fapl = -1, f = -1;
    image_owner owner = {NULL};
    const model_config *cfg = model_get_config(m);
    *image = NULL;
    H5_CHECKED(x, fapl = H5Pcreate(H5P_FILE_ACCESS));
    /* File format of HDF5 >= 1.8: version-2 object headers carry checksums, so a corrupted
     * header is detected by HDF5 itself; our CRCs cover the raw data. */
    H5_CHECKED(x, H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST));
    H5_CHECKED(x, H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG));
    /* Grown in steps of the three buffers' size: one or two allocations in all. */
    H5_CHECKED(x, H5Pset_fapl_core(fapl, 3 * tl->num_params * sizeof(float) + (1 << 20), 0));
    H5FD_file_image_callbacks_t callbacks = {image_malloc,     image_memcpy,     image_realloc,
                                             image_free,       image_udata_copy, image_udata_free,
                                             &owner};
    H5_CHECKED(x, H5Pset_file_image_callbacks(fapl, &callbacks));
    /* Without block aggregation the file's size before closing is its final size: closing
     * releases no unused aggregator space (which would leave a tail after the end the
     * superblock records). */
    H5_CHECKED(x, H5Pset_meta_block_size(fapl, 0));
    H5_CHECKED(x, H5Pset_small_data_block_size(fapl, 0));
    H5_CHECKED(x, f = H5Fcreate(IMAGE_NAME, H5F_ACC_TRUNC, H5P_DEFAULT, fapl));

    int format_version = CHECKPOINT_FORMAT_VERSION;
    header h = {meta->step, meta->examples_seen, meta->epoch, meta->seed, meta->test_index,
                tl->num_params, meta->lr, meta->best_accuracy, meta->wall_seconds, *cfg};
    unsigned int crc_h = header_crc(&h, format_version), crc_p = crc32_floats(params, tl->num_params),
                 crc_m = crc32_floats(am, tl->num_params), crc_v = crc32_floats(av, tl->num_params),
                 crc_c = crc32_text(meta->config_text), crc_j = crc32_text(meta->metrics_jsonl);
    if (write_string_attr(x, f, "lawt_version", LAWT_VERSION) ||
        write_attr(x, f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &format_version))
        goto out;
    for (size_t i = 0; i < NHEADER_ATTRS; i++)
        if (write_attr(x, f, HEADER_ATTRS[i].name, attr_file_type(HEADER_ATTRS[i].kind),
                       attr_mem_type(HEADER_ATTRS[i].kind), (const char *)&h + HEADER_ATTRS[i].offset))
            goto out;
    if (write_attr(x, f, "attributes_crc32", H5T_STD_U32LE, H5T_NATIVE_UINT, &crc_h) ||
        write_attr(x, f, "params_crc32", H5T_STD_U32LE, H5T_NATIVE_UINT, &crc_p) ||
        write_attr(x, f, "adam_m_crc32", H5T_STD_U32LE, H5T_NATIVE_UINT, &crc_m) ||
        write_attr(x, f, "adam_v_crc32", H5T_STD_U32LE, H5T_NATIVE_UINT, &crc_v) ||
        write_attr(x, f, "config_text_crc32", H5T_STD_U32LE, H5T_NATIVE_UINT, &crc_c) ||
        write_attr(x, f, "metrics_jsonl_crc32", H5T_STD_U32LE, H5T_NATIVE_UINT, &crc_j))
        goto out;

    if (write_string_dataset(x, f, "config_text", meta->config_text) ||
        write_string_dataset(x, f, "metrics_jsonl", meta->metrics_jsonl) ||
        write_tensors(x, f, "params", tl, params, 1) || write_tensors(x, f, "adam/m", tl, am, 0) ||
        write_tensors(x, f, "adam/v", tl, av, 0))
        goto out;
    H5_CHECKED(x, H5Fflush(f, H5F_SCOPE_GLOBAL));
    /* The end of the flushed file's last allocation (the driver's buffer grows in whole
     * increments); closing only clears the superblock's "open for writing" flag, in place. */
    ssize_t n;
    H5_CHECKED(x, n = H5Fget_file_image(f, NULL, 0));
    hid_t fc = f;
    f = -1;
    H5_CHECKED(x, H5Fclose(fc));
    h5_close(&fapl);
    if (!owner.kept) {
        fail(x, "HDF5's core driver closed the file without handing over its memory");
        goto out;
    }
    *image = owner.kept;
    owner.kept = NULL;
    *size = (size_t)n;
    rc = 0;
out:
    h5_close(&f);
    h5_close(&fapl);
    free(owner.kept);
    return rc;
}

/* The image into tmp, flushed to the disk. On failure the message names the file and the
 * errno, and tmp is removed (the caller's previous checkpoint is untouched). */
static int write_image(ctx *x, const char *tmp, const void *image, size_t size)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        fail(x, "cannot create %s: %s (errno %d)", tmp, strerror(e), e);
        return -1;
    }
    const char *what = "writing";
    int rc = lawt_write_all(fd, image, size);
    if (rc == 0 && (rc = fsync(fd)) != 0) what = "fsync of";
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        e = errno;
        what = "closing";
        rc = -1;
    }
    if (rc != 0) {
        fail(x, "%s %s (%zu bytes) failed: %s (errno %d); %s removed, earlier checkpoints are "
             "untouched", what, tmp, size, strerror(e), e, tmp);
        unlink(tmp);
    }
    return rc;
}

static int fsync_path(const char *path, int directory)
{
    int fd = open(path, O_RDONLY | (directory ? O_DIRECTORY : 0));
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* Some file systems cannot sync a directory: that is not a failure of the write. */
    if (rc != 0 && directory && (errno == EINVAL || errno == EBADF)) rc = 0;
    close(fd);
    return rc;
}

int checkpoint_save(const char *path, const model *m, const checkpoint_meta *meta, char *err,
                    size_t errcap)
{
    ctx x = {err, errcap, path, ""};
    if (err && errcap) err[0] = '\0';
    quiet_hdf5();
    size_t plen = strlen(path);
    char *tmp = lawt_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int rc = -1;
    tensor_list tl = {0};
    float *params = NULL, *am = NULL, *av = NULL;
    void *image = NULL;
    size_t size = 0;
    if (tensors_of(&x, model_get_config(m), model_num_params(m), &tl) != 0) goto done;
    /* What no reader would take is refused now, before a file is touched. */
    header h = {meta->step, meta->examples_seen, meta->epoch, meta->seed, meta->test_index,
                tl.num_params, meta->lr, meta->best_accuracy, meta->wall_seconds,
                *model_get_config(m)};
    if (check_header(&x, &h) != 0) goto done;
    params = lawt_malloc(tl.num_params * sizeof *params);
    am = lawt_malloc(tl.num_params * sizeof *am);
    av = lawt_malloc(tl.num_params * sizeof *av);
    model_copy_out(m, BUF_PARAMS, params);
    model_copy_out(m, BUF_ADAM_M, am);
    model_copy_out(m, BUF_ADAM_V, av);

    if (build_image(&x, m, meta, &tl, params, am, av, &image, &size) != 0) goto done;
    free(params);
    free(am);
    free(av);
    params = am = av = NULL;
    if (write_image(&x, tmp, image, size) != 0) goto done;
    if (rename(tmp, path) != 0) {
        int e = errno;
        fail(&x, "rename of %s failed: %s (errno %d)", tmp, strerror(e), e);
        unlink(tmp);
        goto done;
    }
    /* Make the rename itself durable. */
    char *dir = lawt_malloc(plen + 2);
    memcpy(dir, path, plen + 1);
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    fsync_path(dir, 1);
    free(dir);
    rc = 0;
done:
    free(image);
    free(params);
    free(am);
    free(av);
    free(tl.t);
    free(tmp);
    return rc;
}

/* ---- reading ---- */

/* Opens a checkpoint of a format version this lawt reads (1: before attributes_crc32). */
static hid_t open_checkpoint(ctx *x, int *version)
{
    hid_t fapl = -1, f = -1;
    hid_t a = -1;
    struct stat st;
    *version = -1;
    if (stat(x->path, &st) != 0) {
        fail(x, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fail(x, "not a regular file");
        return -1;
    }
    H5_CHECKED(x, fapl = H5Pcreate(H5P_FILE_ACCESS));
    H5_CHECKED(x, H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG));
    f = H5Fopen(x->path, H5F_ACC_RDONLY, fapl);
    if (f < 0) {
        char detail[600];
        h5_stack_text(detail, sizeof detail);
        fail(x, "not a readable HDF5 file (truncated or corrupt?): H5Fopen failed: %s", detail);
        goto out;
    }
    at(x, "attribute format_version");
    htri_t exists;
    H5_CHECKED(x, exists = H5Aexists(f, "format_version"));
    if (exists == 0) {
        fail(x, "not a lawt checkpoint (no format_version attribute)");
        goto out;
    }
    H5_CHECKED(x, a = H5Aopen(f, "format_version", H5P_DEFAULT));
    H5_CHECKED(x, H5Aread(a, H5T_NATIVE_INT, version));
    h5_close(&a);
    if (*version < 1 || *version > CHECKPOINT_FORMAT_VERSION) {
        fail(x, "has format_version %d, this lawt (%s) reads format_version 1 to %d", *version,
             LAWT_VERSION, CHECKPOINT_FORMAT_VERSION);
        goto out;
    }
    h5_close(&fapl);
    return f;
out:
    h5_close(&a);
    h5_close(&f);
    h5_close(&fapl);
    return -1;
}

/* Reads a scalar numeric attribute of loc, converted to mem_type; where names loc in messages
 * ("" for the root group). */
static int read_attr_of(ctx *x, hid_t loc, const char *where, const char *name, hid_t mem_type,
                        void *value)
{
    int rc = -1;
    hid_t a = -1, sp = -1;
    at(x, "attribute %s%s%s", where, where[0] ? "/" : "", name);
    htri_t exists;
    H5_CHECKED(x, exists = H5Aexists(loc, name));
    if (exists == 0) {
        fail(x, "%s is missing", x->object);
        return -1;
    }
    H5_CHECKED(x, a = H5Aopen(loc, name, H5P_DEFAULT));
    H5_CHECKED(x, sp = H5Aget_space(a));
    if (H5Sget_simple_extent_type(sp) != H5S_SCALAR) {
        fail(x, "%s is not a scalar", x->object);
        goto out;
    }
    H5_CHECKED(x, H5Aread(a, mem_type, value));
    rc = 0;
out:
    h5_close(&sp);
    h5_close(&a);
    return rc;
}

static int read_attr(ctx *x, hid_t f, const char *name, hid_t mem_type, void *value)
{
    return read_attr_of(x, f, "", name, mem_type, value);
}

/* The values a lawt writer can produce, whatever the configuration. */
static int check_header(ctx *x, const header *h)
{
#define REFUSE(name, fmt, value, why)                                  \
    do {                                                               \
        fail(x, "attribute %s = " fmt ": %s", name, value, why);       \
        return -1;                                                     \
    } while (0)
    if (h->step < 0) REFUSE("step", "%lld", h->step, "a step count is >= 0");
    if (h->examples_seen < 0) REFUSE("examples_seen", "%lld", h->examples_seen, "a count is >= 0");
    if (h->step > h->examples_seen) {
        fail(x, "attribute step = %lld: more steps than examples_seen = %lld (a step takes at "
             "least one example)", h->step, h->examples_seen);
        return -1;
    }
    if ((h->step > 0 && h->examples_seen % h->step != 0) || (h->step == 0 && h->examples_seen != 0))
        REFUSE("examples_seen", "%lld", h->examples_seen, "not a whole number of examples a step");
    if (h->epoch < 0 || h->epoch > h->step)
        REFUSE("epoch", "%lld", h->epoch, "completed epochs are between 0 and step");
    if (h->test_index > (unsigned long long)INT64_MAX)
        REFUSE("test_index", "%llu", h->test_index, "beyond 2^63 test examples");
    /* train.lr is at most 1; the cosine schedule may round a few ulps above it. */
    if (!(h->lr >= 0 && h->lr <= 1 + 1e-9))
        REFUSE("lr", "%g", h->lr, "a learning rate is a number in [0, 1]");
    if (!(h->best_accuracy == -1 || (h->best_accuracy >= 0 && h->best_accuracy <= 100)))
        REFUSE("best_accuracy", "%g", h->best_accuracy,
               "an accuracy is a percentage in [0, 100] (-1: not evaluated yet)");
    if (!(h->wall_seconds >= 0 && isfinite(h->wall_seconds)))
        REFUSE("wall_seconds", "%g", h->wall_seconds, "a duration is a finite number >= 0");
#undef REFUSE
    char why[256];
    if (model_config_validate(&h->cfg, why, sizeof why) != 0) {
        fail(x, "has an invalid model config: %s", why);
        return -1;
    }
    if (h->num_params != model_param_count(&h->cfg)) {
        fail(x, "attribute num_params = %llu, but its model config (enc_layers ... max_len) has "
             "%zu parameters", h->num_params, model_param_count(&h->cfg));
        return -1;
    }
    return 0;
}

/* Reads the numeric attributes, checks every value and verifies attributes_crc32
 * (format_version 2 on). */
static int read_header(ctx *x, hid_t f, int version, header *h)
{
    memset(h, 0, sizeof *h); /* an earlier format's absent attributes: arch 0, a transformer */
    for (size_t i = 0; i < NHEADER_ATTRS; i++)
        if (HEADER_ATTRS[i].since <= version &&
            read_attr(x, f, HEADER_ATTRS[i].name, attr_mem_type(HEADER_ATTRS[i].kind),
                      (char *)h + HEADER_ATTRS[i].offset))
            return -1;
    /* The values first, so that an impossible one is named; then the CRC, for the others. */
    if (check_header(x, h)) return -1;
    if (version >= 2) {
        unsigned int stored = 0;
        if (read_attr(x, f, "attributes_crc32", H5T_NATIVE_UINT, &stored)) return -1;
        unsigned int got = header_crc(h, version);
        if (got != stored) {
            fail(x, "its attributes (step, examples_seen, ..., the model config) are corrupt: "
                 "CRC-32 0x%08x, the file records attributes_crc32 0x%08x: refusing the file",
                 got, stored);
            return -1;
        }
    }
    return 0;
}

/* Reads a scalar fixed-length string dataset into a malloc'd string; checks its CRC. */
static char *read_string_dataset(ctx *x, hid_t f, const char *name, const char *crc_name)
{
    char *s = NULL;
    hid_t d = -1, t = -1, mt = -1, sp = -1;
    unsigned int stored = 0;
    at(x, "dataset /%s", name);
    htri_t exists;
    H5_CHECKED(x, exists = H5Lexists(f, name, H5P_DEFAULT));
    if (exists == 0) {
        fail(x, "dataset /%s is missing", name);
        return NULL;
    }
    H5_CHECKED(x, d = H5Dopen2(f, name, H5P_DEFAULT));
    H5_CHECKED(x, t = H5Dget_type(d));
    H5_CHECKED(x, sp = H5Dget_space(d));
    if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0 ||
        H5Sget_simple_extent_type(sp) != H5S_SCALAR) {
        fail(x, "dataset /%s is not a scalar fixed-length string", name);
        goto out;
    }
    size_t size = H5Tget_size(t);
    if (size == 0) {
        fail(x, "dataset /%s has size 0", name);
        goto out;
    }
    H5_CHECKED(x, mt = H5Tcopy(H5T_C_S1));
    H5_CHECKED(x, H5Tset_size(mt, size));
    H5_CHECKED(x, H5Tset_strpad(mt, H5T_STR_NULLTERM));
    H5_CHECKED(x, H5Tset_cset(mt, H5Tget_cset(t)));
    s = lawt_malloc(size + 1);
    H5_CHECKED(x, H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, s));
    s[size] = '\0';
    if (read_attr(x, f, crc_name, H5T_NATIVE_UINT, &stored) != 0) goto out;
    unsigned int got = crc32_text(s);
    if (got != stored) {
        fail(x, "/%s is corrupt: CRC-32 0x%08x, the file records %s 0x%08x", name, got, crc_name, stored);
        goto out;
    }
    h5_close(&sp);
    h5_close(&mt);
    h5_close(&t);
    h5_close(&d);
    return s;
out:
    free(s);
    h5_close(&sp);
    h5_close(&mt);
    h5_close(&t);
    h5_close(&d);
    return NULL;
}

/* Both texts, read and verified, then dropped: a damaged file is refused as a whole. */
static int verify_texts(ctx *x, hid_t f)
{
    char *config = read_string_dataset(x, f, "config_text", "config_text_crc32");
    char *metrics = config ? read_string_dataset(x, f, "metrics_jsonl", "metrics_jsonl_crc32") : NULL;
    int rc = config && metrics ? 0 : -1;
    free(config);
    free(metrics);
    return rc;
}

/* Reads a group of tensors into buf (num_params floats), checking every shape (and, for
 * /params, every offset attribute), then the CRC. */
static int read_tensors(ctx *x, hid_t f, const char *group, const tensor_list *tl, float *buf,
                        const char *crc_name)
{
    int rc = -1;
    hid_t g = -1, d = -1, sp = -1, t = -1;
    unsigned int stored = 0;
    int with_offsets = strcmp(group, "params") == 0;
    at(x, "group /%s", group);
    if (H5Lexists(f, group[0] == 'a' ? "adam" : group, H5P_DEFAULT) <= 0 ||
        H5Lexists(f, group, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        fail(x, "group /%s is missing", group);
        return -1;
    }
    H5_CHECKED(x, g = H5Gopen2(f, group, H5P_DEFAULT));
    for (int i = 0; i < tl->n; i++) {
        const model_tensor *mt = &tl->t[i];
        at(x, "dataset /%s/%s", group, mt->name);
        htri_t exists;
        H5_CHECKED(x, exists = H5Lexists(g, mt->name, H5P_DEFAULT));
        if (exists == 0) {
            fail(x, "dataset /%s/%s is missing", group, mt->name);
            goto out;
        }
        H5_CHECKED(x, d = H5Dopen2(g, mt->name, H5P_DEFAULT));
        H5_CHECKED(x, sp = H5Dget_space(d));
        H5_CHECKED(x, t = H5Dget_type(d));
        int nd = H5Sget_simple_extent_ndims(sp);
        hsize_t dims[MODEL_MAX_NDIM + 1] = {0};
        int same = nd == mt->ndim && H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4;
        if (same) H5_CHECKED(x, H5Sget_simple_extent_dims(sp, dims, NULL));
        for (int k = 0; same && k < nd; k++) same = dims[k] == (hsize_t)mt->shape[k];
        if (!same) {
            char want[64] = "", *p = want;
            for (int k = 0; k < mt->ndim; k++)
                p += snprintf(p, (size_t)(want + sizeof want - p), k ? " x %d" : "%d", mt->shape[k]);
            fail(x, "dataset /%s/%s is not a float32 tensor of shape %s", group, mt->name, want);
            goto out;
        }
        H5_CHECKED(x, H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + mt->offset));
        if (with_offsets) {
            char where[96];
            long long offset = -1;
            snprintf(where, sizeof where, "/%s/%s", group, mt->name);
            if (read_attr_of(x, d, where, "offset", H5T_NATIVE_LLONG, &offset)) goto out;
            if (offset != (long long)mt->offset) {
                fail(x, "attribute %s/offset = %lld, the model's layout puts %s at %zu", where,
                     offset, mt->name, mt->offset);
                goto out;
            }
        }
        h5_close(&t);
        h5_close(&sp);
        h5_close(&d);
    }
    if (read_attr(x, f, crc_name, H5T_NATIVE_UINT, &stored) != 0) goto out;
    unsigned int got = crc32_floats(buf, tl->num_params);
    if (got != stored) {
        fail(x, "/%s is corrupt: CRC-32 0x%08x, the file records %s 0x%08x: refusing the file", group,
             got, crc_name, stored);
        goto out;
    }
    rc = 0;
out:
    h5_close(&t);
    h5_close(&sp);
    h5_close(&d);
    h5_close(&g);
    return rc;
}

int checkpoint_read_model_config(const char *path, model_config *cfg, char *err, size_t errcap)
{
    ctx x = {err, errcap, path, ""};
    if (err && errcap) err[0] = '\0';
    quiet_hdf5();
    int version;
    hid_t f = open_checkpoint(&x, &version);
    if (f < 0) return -1;
    header h;
    int rc = read_header(&x, f, version, &h);
    if (rc == 0) *cfg = h.cfg;
    h5_close(&f);
    return rc;
}

int checkpoint_read_meta(const char *path, checkpoint_meta *meta, char *err, size_t errcap)
{
    ctx x = {err, errcap, path, ""};
    if (err && errcap) err[0] = '\0';
    quiet_hdf5();
    memset(meta, 0, sizeof *meta);
    int version;
    hid_t f = open_checkpoint(&x, &version);
    if (f < 0) return -1;
    int rc = -1;
    header h;
    if (read_header(&x, f, version, &h)) goto out;
    meta->step = (long)h.step;
    meta->examples_seen = (long)h.examples_seen;
    meta->epoch = (long)h.epoch;
    meta->seed = h.seed;
    meta->test_index = h.test_index;
    meta->lr = h.lr;
    meta->best_accuracy = h.best_accuracy;
    meta->wall_seconds = h.wall_seconds;
    if (!(meta->config_text = read_string_dataset(&x, f, "config_text", "config_text_crc32"))) goto out;
    if (!(meta->metrics_jsonl = read_string_dataset(&x, f, "metrics_jsonl", "metrics_jsonl_crc32"))) goto out;
    rc = 0;
out:
    if (rc != 0) checkpoint_meta_free(meta);
    h5_close(&f);
    return rc;
}

int checkpoint_check_progress(const char *path, const checkpoint_meta *meta, long batch_size,
                              long steps_per_epoch, long total_steps, char *err, size_t errcap)
{
    ctx x = {err, errcap, path, ""};
    if (meta->step > total_steps) {
        fail(&x, "step %ld is beyond the run's %ld steps (train.epoch_size, train.epochs and "
             "train.batch_size): a damaged file, or a run already longer than this configuration",
             meta->step, total_steps);
        return -1;
    }
    if (meta->examples_seen != meta->step * batch_size) {
        fail(&x, "examples_seen %ld in %ld steps: train.batch_size must stay %ld to resume (it is "
             "%ld)", meta->examples_seen, meta->step,
             meta->step ? meta->examples_seen / meta->step : 0, batch_size);
        return -1;
    }
    if (meta->epoch != meta->step / steps_per_epoch) {
        fail(&x, "epoch %ld, but step %ld ends epoch %ld of this configuration: train.epoch_size "
             "must stay the run's to resume", meta->epoch, meta->step, meta->step / steps_per_epoch);
        return -1;
    }
    return 0;
}

/* "checkpoint has dec_dim 512, config has 256" for the first differing field, or 0. */
static int compare_config(ctx *x, const model_config *file, const model_config *want)
{
#define COMPARE_FIELD(field)                                                                     \
    if (file->field != want->field) {                                                            \
        fail(x, "has " #field " %d, the model (config) has %d", file->field, want->field);       \
        return -1;                                                                               \
    }
    CONFIG_FIELDS(COMPARE_FIELD)
    CONFIG_FIELDS_V3(COMPARE_FIELD)
    CONFIG_FIELDS_V4(COMPARE_FIELD)
#undef COMPARE_FIELD
#define COMPARE_REAL(field)                                                                      \
    if (file->field != want->field) {                                                            \
        fail(x, "has " #field " %g, the model (config) has %g", file->field, want->field);       \
        return -1;                                                                               \
    }
    CONFIG_REALS_V4(COMPARE_REAL)
#undef COMPARE_REAL
    return 0;
}

int checkpoint_load(const char *path, model *m, int with_optimizer, char *err, size_t errcap)
{
    ctx x = {err, errcap, path, ""};
    if (err && errcap) err[0] = '\0';
    quiet_hdf5();
    int version;
    hid_t f = open_checkpoint(&x, &version);
    if (f < 0) return -1;
    int rc = -1;
    tensor_list tl = {0};
    float *params = NULL, *am = NULL, *av = NULL;
    header h;
    if (read_header(&x, f, version, &h) || compare_config(&x, &h.cfg, model_get_config(m))) goto out;
    if (tensors_of(&x, model_get_config(m), model_num_params(m), &tl) != 0) goto out;
    /* Everything is read and verified (the moments too, even when not loaded: a damaged file
     * is refused as a whole) before the model is touched. */
    params = lawt_malloc(tl.num_params * sizeof *params);
    am = lawt_malloc(tl.num_params * sizeof *am);
    av = lawt_malloc(tl.num_params * sizeof *av);
    if (read_tensors(&x, f, "params", &tl, params, "params_crc32") ||
        read_tensors(&x, f, "adam/m", &tl, am, "adam_m_crc32") ||
        read_tensors(&x, f, "adam/v", &tl, av, "adam_v_crc32") || verify_texts(&x, f))
        goto out;
    model_copy_in(m, BUF_PARAMS, params);
    if (with_optimizer) {
        model_copy_in(m, BUF_ADAM_M, am);
        model_copy_in(m, BUF_ADAM_V, av);
    }
    rc = 0;
out:
    free(params);
    free(am);
    free(av);
    free(tl.t);
    h5_close(&f);
    return rc;
}

/* ---- retraining (Appendix F.1) ---- */

/* The name of the encoding whose vocabulary has `size` ids, or NULL (for error messages). */
static const char *encoding_of_vocab_size(int size, char *name, size_t cap)
{
    const char *list = encoding_names_list(); /* "P10, P100, ..." */
    for (const char *p = list; *p;) {
        while (*p == ',' || *p == ' ') p++;
        size_t k = strcspn(p, ", ");
        if (k == 0) break;
        char word[32];
        if (k < sizeof word) {
            memcpy(word, p, k);
            word[k] = '\0';
            lawt_encoding enc;
            if (encoding_from_name(word, &enc) == 0) {
                lawt_vocab v;
                vocab_init(&v, &enc);
                int n = v.size;
                vocab_free(&v);
                if (n == size) {
                    snprintf(name, cap, "%s", word);
                    return name;
                }
            }
        }
        p += k;
    }
    return NULL;
}

/* Retraining keeps the architecture and the vocabularies; only max_len may change. */
static int compare_for_retraining(ctx *x, const model_config *file, const model_config *want)
{
    static const char hint[] = "retraining keeps the layers, dimensions, heads and vocabularies of the "
                               "checkpoint; only max_len may change";
    const struct {
        const char *name;
        int file, want;
    } vocab[] = {{"vocab_in", file->vocab_in, want->vocab_in}, {"vocab_out", file->vocab_out, want->vocab_out}};
    for (int i = 0; i < 2; i++) {
        if (vocab[i].file == vocab[i].want) continue;
        char a[32], b[32], guess[96] = "";
        const char *ea = encoding_of_vocab_size(vocab[i].file, a, sizeof a),
                   *eb = encoding_of_vocab_size(vocab[i].want, b, sizeof b);
        if (ea || eb)
            snprintf(guess, sizeof guess, " (encoding %s vs %s?)", ea ? ea : "unknown", eb ? eb : "unknown");
        fail(x, "vocabularies differ: checkpoint %s %d, config %d%s: %s", vocab[i].name, vocab[i].file,
             vocab[i].want, guess, hint);
        return -1;
    }
#define COMPARE_SHAPE(field)                                                                      \
    if (file->field != want->field) {                                                             \
        fail(x, "model shapes differ: checkpoint " #field " %d, config %d: %s", file->field,      \
             want->field, hint);                                                                  \
        return -1;                                                                                \
    }
    COMPARE_SHAPE(arch)
    COMPARE_SHAPE(rnn_layers)
    COMPARE_SHAPE(rnn_hidden)
    COMPARE_SHAPE(rnn_reverse_source)
    COMPARE_SHAPE(enc_layers)
    COMPARE_SHAPE(dec_layers)
    COMPARE_SHAPE(enc_dim)
    COMPARE_SHAPE(dec_dim)
    COMPARE_SHAPE(enc_heads)
    COMPARE_SHAPE(dec_heads)
#undef COMPARE_SHAPE
    /* The others (the loops among them) as compare_config compares them, max_len aside. */
    model_config a = *file, b = *want;
    a.max_len = b.max_len = 0;
    if (compare_config(x, &a, &b) != 0) return -1;
    return 0;
}

static void shape_text(const model_tensor *t, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t n = 0;
    for (int k = 0; k < t->ndim && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, k ? " x %d" : "%d", t->shape[k]);
}

int checkpoint_load_for_retraining(const char *path, model *m, char *err, size_t errcap)
{
    ctx x = {err, errcap, path, ""};
    if (err && errcap) err[0] = '\0';
    quiet_hdf5();
    int version;
    hid_t f = open_checkpoint(&x, &version);
    if (f < 0) return -1;
    int rc = -1;
    const model_config *mcfg = model_get_config(m);
    tensor_list ftl = {0}, mtl = {0};
    float *fparams = NULL, *am = NULL, *av = NULL, *params = NULL;
    header h;
    if (read_header(&x, f, version, &h) || compare_for_retraining(&x, &h.cfg, mcfg)) goto out;
    const model_config fcfg = h.cfg;
    unsigned long long np = h.num_params;
    if (tensors_of(&x, &fcfg, (size_t)np, &ftl) || tensors_of(&x, mcfg, model_num_params(m), &mtl)) goto out;
    if (ftl.n != mtl.n) {
        fail(&x, "has %d tensors, the model has %d", ftl.n, mtl.n);
        goto out;
    }
    /* The whole file is read and verified (the moments too, though unused: a damaged file is
     * refused as a whole, as by checkpoint_load) before the model is touched. */
    fparams = lawt_malloc(ftl.num_params * sizeof *fparams);
    am = lawt_malloc(ftl.num_params * sizeof *am);
    av = lawt_malloc(ftl.num_params * sizeof *av);
    if (read_tensors(&x, f, "params", &ftl, fparams, "params_crc32") ||
        read_tensors(&x, f, "adam/m", &ftl, am, "adam_m_crc32") ||
        read_tensors(&x, f, "adam/v", &ftl, av, "adam_v_crc32") || verify_texts(&x, f))
        goto out;

    /* Start from the model's own parameters (its initialisation) and copy the file's over. */
    params = lawt_malloc(mtl.num_params * sizeof *params);
    model_copy_out(m, BUF_PARAMS, params);
    for (int i = 0; i < mtl.n; i++) {
        const model_tensor *mt = &mtl.t[i], *ft = &ftl.t[i];
        if (strcmp(mt->name, ft->name) != 0) {
            fail(&x, "tensor %d is %s in the checkpoint, %s in the model", i, ft->name, mt->name);
            goto out;
        }
        int same = mt->ndim == ft->ndim, rows_differ = 0;
        for (int k = 0; same && k < mt->ndim; k++)
            if (mt->shape[k] != ft->shape[k]) {
                if (k == 0 && ft->shape[0] == fcfg.max_len && mt->shape[0] == mcfg->max_len) rows_differ = 1;
                else same = 0;
            }
        if (!same) {
            char a[64], b[64];
            shape_text(ft, a, sizeof a);
            shape_text(mt, b, sizeof b);
            fail(&x, "tensor %s has shape %s in the checkpoint, %s in the model", mt->name, a, b);
            goto out;
        }
        size_t row = 1;
        for (int k = 1; k < mt->ndim; k++) row *= (size_t)mt->shape[k];
        /* A position table (max_len rows): the rows both have. */
        int rows = rows_differ && ft->shape[0] < mt->shape[0] ? ft->shape[0] : mt->shape[0];
        memcpy(params + mt->offset, fparams + ft->offset, (size_t)rows * row * sizeof *params);
    }
    model_copy_in(m, BUF_PARAMS, params);
    /* A fresh optimizer. */
    memset(params, 0, mtl.num_params * sizeof *params);
    model_copy_in(m, BUF_ADAM_M, params);
    model_copy_in(m, BUF_ADAM_V, params);
    model_zero_grad(m);
    rc = 0;
out:
    free(fparams);
    free(am);
    free(av);
    free(params);
    free(ftl.t);
    free(mtl.t);
    h5_close(&f);
    return rc;
}

void checkpoint_meta_free(checkpoint_meta *meta)
{
    if (!meta) return;
    free(meta->config_text);
    free(meta->metrics_jsonl);
    meta->config_text = NULL;
    meta->metrics_jsonl = NULL;
}

/* ---- step-<N>.h5 files ---- */

int checkpoint_step_path(const char *dir, long step, char *path, size_t cap)
{
    int n = snprintf(path, cap, "%s/" STEP_PREFIX "%0*ld" STEP_SUFFIX, dir, CHECKPOINT_STEP_DIGITS, step);
    return n < 0 || (size_t)n >= cap || step < 0 ? -1 : 0;
}

/* The step of a name "step-<digits>.h5", or -1. */
static long step_of_name(const char *name)
{
    size_t len = strlen(name), pl = strlen(STEP_PREFIX), sl = strlen(STEP_SUFFIX);
    if (len <= pl + sl || strncmp(name, STEP_PREFIX, pl) != 0 || strcmp(name + len - sl, STEP_SUFFIX) != 0)
        return -1;
    long v = 0;
    for (size_t i = pl; i < len - sl; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        if (v > (LONG_MAX - 9) / 10) return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

typedef struct {
    long step;
    char *name;
} step_file;

static int by_step(const void *a, const void *b)
{
    const step_file *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The step files of dir, oldest first; returns their count (or -1 if dir cannot be read). */
static int list_steps(const char *dir, step_file **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 0;
    step_file *v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        long s = step_of_name(e->d_name);
        if (s < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            step_file *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) lawt_die("out of memory listing %s", dir);
            v = nv;
        }
        size_t len = strlen(e->d_name);
        v[n].name = lawt_malloc(len + 1);
        memcpy(v[n].name, e->d_name, len + 1);
        v[n].step = s;
        n++;
    }
    closedir(d);
    if (n > 1) qsort(v, (size_t)n, sizeof *v, by_step);
    *out = v;
    return n;
}

static void free_steps(step_file *v, int n)
{
    for (int i = 0; i < n; i++) free(v[i].name);
    free(v);
}

int checkpoint_latest(const char *dir, char *path, size_t cap)
{
    step_file *v;
    int n = list_steps(dir, &v);
    int rc = -1;
    if (n > 0) {
        int k = snprintf(path, cap, "%s/%s", dir, v[n - 1].name);
        rc = k < 0 || (size_t)k >= cap ? -1 : 0;
    }
    free_steps(v, n);
    return rc;
}

void checkpoint_keep_last(const char *dir, int keep)
{
    if (keep <= 0) return; /* keep everything */
    step_file *v;
    int n = list_steps(dir, &v);
    for (int i = 0; i < n - keep; i++) {
        size_t len = strlen(dir) + strlen(v[i].name) + 2;
        char *p = lawt_malloc(len);
        snprintf(p, len, "%s/%s", dir, v[i].name);
        unlink(p);
        free(p);
    }
    free_steps(v, n);
}

int checkpoint_remove_stray_tmp(const char *dir, char *names, size_t cap)
{
    if (cap) names[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    size_t used = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".tmp") != 0) continue;
        char base[NAME_MAX + 1];
        snprintf(base, sizeof base, "%.*s", (int)(len - 4), e->d_name);
        if (step_of_name(base) < 0 && strcmp(base, "best.h5") != 0) continue;
        size_t plen = strlen(dir) + len + 2;
        char *p = lawt_malloc(plen);
        snprintf(p, plen, "%s/%s", dir, e->d_name);
        if (unlink(p) == 0) {
            removed++;
            int k = snprintf(names + used, cap > used ? cap - used : 0, "%s%s", removed > 1 ? ", " : "",
                             e->d_name);
            if (k > 0) used = used + (size_t)k < cap ? used + (size_t)k : cap;
        }
        free(p);
    }
    closedir(d);
    return removed;
}

/* ---- inspection (lawt_inspect) ---- */

static void h5_problem(char *buf, size_t cap, const char *call)
{
    int n = snprintf(buf, cap, "%s failed: ", call);
    if (n >= 0 && (size_t)n < cap) h5_stack_text(buf + n, cap - (size_t)n);
    else H5Eclear2(H5E_DEFAULT);
}

static int attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    checkpoint_contents *c = data;
    checkpoint_attr *grown = realloc(c->attrs, (size_t)(c->nattrs + 1) * sizeof *grown);
    if (!grown) lawt_die("out of memory listing attributes");
    c->attrs = grown;
    checkpoint_attr *a = &c->attrs[c->nattrs++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->kind = CHECKPOINT_ATTR_UNREADABLE;
    hid_t id = -1, t = -1, sp = -1, mt = -1;
    if ((id = H5Aopen(loc, name, H5P_DEFAULT)) < 0) {
        h5_problem(a->s, sizeof a->s, "H5Aopen");
        goto out;
    }
    if ((t = H5Aget_type(id)) < 0 || (sp = H5Aget_space(id)) < 0) {
        h5_problem(a->s, sizeof a->s, "H5Aget_type/H5Aget_space");
        goto out;
    }
    if (H5Sget_simple_extent_type(sp) != H5S_SCALAR) {
        snprintf(a->s, sizeof a->s, "not a scalar");
        goto out;
    }
    H5T_class_t cls = H5Tget_class(t);
    herr_t rc = -1;
    if (cls == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE) {
        a->kind = CHECKPOINT_ATTR_UINT;
        rc = H5Aread(id, H5T_NATIVE_ULLONG, &a->u);
    } else if (cls == H5T_INTEGER) {
        a->kind = CHECKPOINT_ATTR_INT;
        rc = H5Aread(id, H5T_NATIVE_LLONG, &a->i);
    } else if (cls == H5T_FLOAT) {
        a->kind = CHECKPOINT_ATTR_FLOAT;
        rc = H5Aread(id, H5T_NATIVE_DOUBLE, &a->f);
    } else if (cls == H5T_STRING && H5Tis_variable_str(t) == 0 && H5Tget_size(t) < sizeof a->s) {
        a->kind = CHECKPOINT_ATTR_STRING;
        if ((mt = H5Tcopy(H5T_C_S1)) >= 0 && H5Tset_size(mt, sizeof a->s - 1) >= 0 &&
            H5Tset_strpad(mt, H5T_STR_NULLTERM) >= 0 && H5Tset_cset(mt, H5Tget_cset(t)) >= 0)
            rc = H5Aread(id, mt, a->s);
    } else {
        snprintf(a->s, sizeof a->s, "of a type lawt does not read");
        goto out;
    }
    if (rc < 0) {
        a->kind = CHECKPOINT_ATTR_UNREADABLE;
        h5_problem(a->s, sizeof a->s, "H5Aread");
    }
out:
    if (a->kind == CHECKPOINT_ATTR_UNREADABLE) c->damaged = 1;
    h5_close(&mt);
    h5_close(&sp);
    h5_close(&t);
    h5_close(&id);
    return 0; /* go on: one bad attribute does not hide the others */
}

const checkpoint_attr *checkpoint_contents_attr(const checkpoint_contents *c, const char *name)
{
    for (int i = 0; i < c->nattrs; i++)
        if (strcmp(c->attrs[i].name, name) == 0) return &c->attrs[i];
    return NULL;
}

const char *checkpoint_part_status_name(checkpoint_part_status s)
{
    static const char *const NAMES[] = {"ok", "corrupt", "unreadable", "missing"};
    return (unsigned)s < sizeof NAMES / sizeof NAMES[0] ? NAMES[s] : "?";
}

static herr_t name_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)g;
    (void)info;
    checkpoint_part *p = data;
    checkpoint_tensor_data *grown = realloc(p->tensors, (size_t)(p->ntensors + 1) * sizeof *grown);
    if (!grown) lawt_die("out of memory listing tensors");
    p->tensors = grown;
    checkpoint_tensor_data *t = &p->tensors[p->ntensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = -1;
    return 0;
}

static void read_tensor_data(hid_t g, checkpoint_tensor_data *t, int with_offset)
{
    hid_t d = -1, sp = -1, ty = -1, a = -1;
    if ((d = H5Dopen2(g, t->name, H5P_DEFAULT)) < 0) {
        h5_problem(t->problem, sizeof t->problem, "H5Dopen2");
        goto out;
    }
    if ((sp = H5Dget_space(d)) < 0 || (ty = H5Dget_type(d)) < 0) {
        h5_problem(t->problem, sizeof t->problem, "H5Dget_space/H5Dget_type");
        goto out;
    }
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[MODEL_MAX_NDIM];
    if (nd < 1 || nd > MODEL_MAX_NDIM || H5Tget_class(ty) != H5T_FLOAT ||
        H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        H5Eclear2(H5E_DEFAULT);
        snprintf(t->problem, sizeof t->problem, "not a float tensor of 1 to %d dimensions", MODEL_MAX_NDIM);
        goto out;
    }
    t->ndim = nd;
    t->count = 1;
    for (int k = 0; k < nd; k++) {
        t->shape[k] = (long long)dims[k];
        t->count *= (size_t)dims[k];
    }
    if (with_offset) {
        if (H5Aexists(d, "offset") > 0 && (a = H5Aopen(d, "offset", H5P_DEFAULT)) >= 0) {
            if (H5Aread(a, H5T_NATIVE_LLONG, &t->offset) < 0) {
                h5_problem(t->problem, sizeof t->problem, "H5Aread of its offset");
                t->offset = -1;
                goto out;
            }
        } else {
            H5Eclear2(H5E_DEFAULT);
            snprintf(t->problem, sizeof t->problem, "no offset attribute");
            goto out;
        }
    }
    t->values = lawt_malloc((t->count ? t->count : 1) * sizeof *t->values);
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->values) < 0) {
        h5_problem(t->problem, sizeof t->problem, "H5Dread");
        free(t->values);
        t->values = NULL;
    }
out:
    h5_close(&a);
    h5_close(&ty);
    h5_close(&sp);
    h5_close(&d);
}

/* Buffer order; tensors without a known offset last, by name. */
static int by_offset(const void *a, const void *b)
{
    const checkpoint_tensor_data *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < 0 ? 1 : y->offset < 0 ? -1 : x->offset < y->offset ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int stored_crc(const checkpoint_contents *c, checkpoint_part *p)
{
    const checkpoint_attr *a = checkpoint_contents_attr(c, p->crc_attr);
    if (!a || (a->kind != CHECKPOINT_ATTR_UINT && a->kind != CHECKPOINT_ATTR_INT)) {
        snprintf(p->problem, sizeof p->problem, "attribute %s is %s", p->crc_attr,
                 a ? "unreadable" : "missing");
        p->status = CHECKPOINT_PART_UNREADABLE;
        return -1;
    }
    p->stored_crc = a->kind == CHECKPOINT_ATTR_UINT ? (unsigned int)a->u : (unsigned int)a->i;
    return 0;
}

/* The model config from the attributes already read; -1 when one is missing or unreadable. */
static int config_from_attrs(const checkpoint_contents *c, model_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
#define CONFIG_FROM_ATTR(field)                                                                   \
    {                                                                                             \
        const checkpoint_attr *a = checkpoint_contents_attr(c, #field);                           \
        if (!a || a->kind != CHECKPOINT_ATTR_INT) return -1;                                      \
        cfg->field = (int)a->i;                                                                   \
    }
    CONFIG_FIELDS(CONFIG_FROM_ATTR)
#undef CONFIG_FROM_ATTR
    /* format_version 3 on; absent from earlier files, which hold transformers */
#define CONFIG_FROM_ATTR_V3(field)                                                                \
    {                                                                                             \
        const checkpoint_attr *a = checkpoint_contents_attr(c, #field);                           \
        if (a && a->kind != CHECKPOINT_ATTR_INT) return -1;                                       \
        if (a) cfg->field = (int)a->i;                                                            \
    }
    CONFIG_FIELDS_V3(CONFIG_FROM_ATTR_V3)
    CONFIG_FIELDS_V4(CONFIG_FROM_ATTR_V3)
#undef CONFIG_FROM_ATTR_V3
    /* format_version 4 on */
#define CONFIG_REAL_FROM_ATTR_V4(field)                                                           \
    {                                                                                             \
        const checkpoint_attr *a = checkpoint_contents_attr(c, #field);                           \
        if (a && a->kind != CHECKPOINT_ATTR_FLOAT) return -1;                                     \
        if (a) cfg->field = a->f;                                                                 \
    }
    CONFIG_REALS_V4(CONFIG_REAL_FROM_ATTR_V4)
#undef CONFIG_REAL_FROM_ATTR_V4
    return 0;
}

/* The tensors of one group, each read on its own, in buffer order; then the CRC over them all
 * and the list against the model config's. */
static void inspect_tensors(const checkpoint_contents *c, hid_t f, checkpoint_part *p,
                            const checkpoint_part *params)
{
    hid_t g = -1;
    if (H5Lexists(f, "adam", H5P_DEFAULT) < 0 || H5Lexists(f, p->name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        p->status = CHECKPOINT_PART_MISSING;
        snprintf(p->problem, sizeof p->problem, "group /%s is missing", p->name);
        return;
    }
    if ((g = H5Gopen2(f, p->name, H5P_DEFAULT)) < 0) {
        p->status = CHECKPOINT_PART_UNREADABLE;
        h5_problem(p->problem, sizeof p->problem, "H5Gopen2");
        return;
    }
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, name_cb, p) < 0) {
        p->status = CHECKPOINT_PART_UNREADABLE;
        h5_problem(p->problem, sizeof p->problem, "H5Literate (listing the tensors)");
    }
    for (int i = 0; i < p->ntensors; i++) {
        checkpoint_tensor_data *t = &p->tensors[i];
        read_tensor_data(g, t, p == params);
        /* The moments have the parameters' layout (and no offset attributes of their own). */
        for (int k = 0; p != params && k < params->ntensors; k++)
            if (strcmp(params->tensors[k].name, t->name) == 0) t->offset = params->tensors[k].offset;
    }
    h5_close(&g);
    if (p->ntensors > 1) qsort(p->tensors, (size_t)p->ntensors, sizeof *p->tensors, by_offset);

    size_t total = 0;
    int readable = p->status == CHECKPOINT_PART_OK;
    for (int i = 0; i < p->ntensors; i++) {
        const checkpoint_tensor_data *t = &p->tensors[i];
        if (t->problem[0] && readable) {
            snprintf(p->problem, sizeof p->problem, "tensor %s: %s", t->name, t->problem);
            p->status = CHECKPOINT_PART_UNREADABLE;
            readable = 0;
        }
        total += t->count;
    }
    /* The names and shapes the model config of the file implies. */
    model_config cfg;
    char verr[256];
    if (readable && config_from_attrs(c, &cfg) == 0 && model_config_validate(&cfg, verr, sizeof verr) == 0) {
        model_tensor probe;
        int n = model_tensors(&cfg, &probe, 1);
        model_tensor *want = lawt_calloc((size_t)n, sizeof *want);
        model_tensors(&cfg, want, n);
        for (int i = 0; i < n && readable; i++) {
            const checkpoint_tensor_data *t = i < p->ntensors ? &p->tensors[i] : NULL;
            int same = t && strcmp(t->name, want[i].name) == 0 && t->ndim == want[i].ndim;
            for (int k = 0; same && k < t->ndim; k++) same = t->shape[k] == want[i].shape[k];
            if (!same) {
                snprintf(p->problem, sizeof p->problem,
                         "tensor %d should be %s as the model config says, the file has %s", i,
                         want[i].name, t ? t->name : "no more tensors");
                p->status = CHECKPOINT_PART_UNREADABLE;
                readable = 0;
            }
        }
        if (readable && p->ntensors > n) {
            snprintf(p->problem, sizeof p->problem, "%d tensors, the model config has %d", p->ntensors, n);
            p->status = CHECKPOINT_PART_UNREADABLE;
            readable = 0;
        }
        free(want);
    }
    H5Eclear2(H5E_DEFAULT);
    if (!readable || stored_crc(c, p)) return;
    float *flat = lawt_malloc((total ? total : 1) * sizeof *flat);
    size_t at = 0;
    for (int i = 0; i < p->ntensors; i++) {
        memcpy(flat + at, p->tensors[i].values, p->tensors[i].count * sizeof *flat);
        at += p->tensors[i].count;
    }
    p->computed_crc = crc32_floats(flat, total);
    free(flat);
    if (p->computed_crc != p->stored_crc) {
        p->status = CHECKPOINT_PART_CORRUPT;
        snprintf(p->problem, sizeof p->problem, "CRC-32 0x%08x, the file records %s 0x%08x",
                 p->computed_crc, p->crc_attr, p->stored_crc);
    }
}

static void inspect_text(const checkpoint_contents *c, hid_t f, checkpoint_part *p)
{
    hid_t d = -1, t = -1, mt = -1, sp = -1;
    if (H5Lexists(f, p->name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        p->status = CHECKPOINT_PART_MISSING;
        snprintf(p->problem, sizeof p->problem, "dataset /%s is missing", p->name);
        return;
    }
    p->status = CHECKPOINT_PART_UNREADABLE;
    if ((d = H5Dopen2(f, p->name, H5P_DEFAULT)) < 0 || (t = H5Dget_type(d)) < 0 ||
        (sp = H5Dget_space(d)) < 0) {
        h5_problem(p->problem, sizeof p->problem, "H5Dopen2/H5Dget_type/H5Dget_space");
        goto out;
    }
    size_t size = H5Tget_size(t);
    if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0 ||
        H5Sget_simple_extent_type(sp) != H5S_SCALAR || size == 0) {
        H5Eclear2(H5E_DEFAULT);
        snprintf(p->problem, sizeof p->problem, "not a scalar fixed-length string");
        goto out;
    }
    p->text = lawt_malloc(size + 1);
    if ((mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(mt, size) < 0 ||
        H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0 ||
        H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, p->text) < 0) {
        h5_problem(p->problem, sizeof p->problem, "H5Dread");
        free(p->text);
        p->text = NULL;
        goto out;
    }
    p->text[size] = '\0';
    p->status = CHECKPOINT_PART_OK;
    if (stored_crc(c, p)) goto out;
    p->computed_crc = crc32_text(p->text);
    if (p->computed_crc != p->stored_crc) {
        p->status = CHECKPOINT_PART_CORRUPT;
        snprintf(p->problem, sizeof p->problem, "CRC-32 0x%08x, the file records %s 0x%08x",
                 p->computed_crc, p->crc_attr, p->stored_crc);
    }
out:
    h5_close(&mt);
    h5_close(&sp);
    h5_close(&t);
    h5_close(&d);
}

int checkpoint_inspect(const char *path, checkpoint_contents *c)
{
    memset(c, 0, sizeof *c);
    c->format_version = -1;
#define CHECKPOINT_PART_INIT(id, pname, crc, tensors) \
    c->parts[id] = (checkpoint_part){.name = pname, .crc_attr = crc, .is_tensors = tensors};
    CHECKPOINT_PART_LIST(CHECKPOINT_PART_INIT)
#undef CHECKPOINT_PART_INIT
    quiet_hdf5();
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(c->problem, sizeof c->problem, "cannot open: %s", strerror(errno));
        c->damaged = 1;
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        h5_problem(c->problem, sizeof c->problem,
                   "not a readable HDF5 file (truncated or corrupt?): H5Fopen");
        c->damaged = 1;
        return -1;
    }
    if (H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, attr_cb, c) < 0) {
        h5_problem(c->problem, sizeof c->problem, "H5Aiterate2 (listing the attributes)");
        c->damaged = 1;
    }
    const checkpoint_attr *v = checkpoint_contents_attr(c, "format_version");
    if (v && v->kind == CHECKPOINT_ATTR_INT) c->format_version = (int)v->i;
    else if (!c->problem[0]) {
        snprintf(c->problem, sizeof c->problem, "not a lawt checkpoint (no readable format_version attribute)");
        c->damaged = 1;
    }
    for (int i = 0; i < CHECKPOINT_PARTS; i++) {
        checkpoint_part *p = &c->parts[i];
        if (p->is_tensors) inspect_tensors(c, f, p, &c->parts[CHECKPOINT_PART_PARAMS]);
        else inspect_text(c, f, p);
        if (p->status != CHECKPOINT_PART_OK) c->damaged = 1;
    }
    /* The counters and model config as loading checks them (attributes_crc32, ranges). */
    if (!c->problem[0] && c->format_version >= 1 && c->format_version <= CHECKPOINT_FORMAT_VERSION) {
        char why[768];
        ctx x = {why, sizeof why, path, ""};
        header h;
        if (read_header(&x, f, c->format_version, &h) != 0) {
            size_t prefix = strlen("checkpoint ") + strlen(path) + 2; /* fail()'s "checkpoint PATH: " */
            snprintf(c->problem, sizeof c->problem, "%s", strlen(why) > prefix ? why + prefix : why);
            c->damaged = 1;
        }
    }
    h5_close(&f);
    return c->damaged ? -1 : 0;
}

void checkpoint_contents_free(checkpoint_contents *c)
{
    if (!c) return;
    for (int i = 0; i < CHECKPOINT_PARTS; i++) {
        for (int k = 0; k < c->parts[i].ntensors; k++) free(c->parts[i].tensors[k].values);
        free(c->parts[i].tensors);
        free(c->parts[i].text);
        c->parts[i].tensors = NULL;
        c->parts[i].text = NULL;
        c->parts[i].ntensors = 0;
    }
    free(c->attrs);
    c->attrs = NULL;
    c->nattrs = 0;
}
