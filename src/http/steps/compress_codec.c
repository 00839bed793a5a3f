/* compress_codec: see compress_codec.h.
 *
 * An encoder is one malloc'd struct compress_enc plus the library's state,
 * allocated when a response is compressed and freed when its transaction
 * ends. The windows are bounded so one compressed response costs about
 * (compress_codec_memory, measured; docs/configuration.md has the table):
 *   gzip: windowBits 15, memLevel 8 (zlib's defaults)    261 KiB, any level
 *   br:   lgwin 18 (256 KiB window), levels 0-6          6 KiB - 2 MiB (4: 519 KiB)
 *   zstd: windowLog 18, levels 1-6                       1.1 - 4 MiB (3: 1.8 MiB)
 * Output buffers are the session's (the transform writes into the out
 * buffer's room): nothing more per response.
 *
 * gzip and zstd states are reset and kept for the next response on the
 * same worker thread (at most COMPRESS_SPARES per codec): allocating and
 * freeing a few hundred KiB per response made glibc trim and regrow the
 * thread's heap, and the page faults and zeroing cost 8x the compression
 * itself under load. br has no reset and is made afresh.
 *
 * The three libraries share one shape, driven here: PROCESS (take input),
 * FLUSH (emit everything taken), FINISH (end the stream). A FLUSH or
 * FINISH that runs out of output room must be continued, with no new
 * input, before anything else: `pending` remembers which. */
#include "http/steps/compress_codec.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#define COMPRESS_GZIP_WBITS 15
#define COMPRESS_GZIP_MEMLEVEL 8
#define COMPRESS_BR_LGWIN 18
#define COMPRESS_ZSTD_WLOG 18

enum compress_op { COMPRESS_PROCESS, COMPRESS_FLUSH, COMPRESS_FINISH };

/* One library call: moves what it can from *in to *out (advancing both)
 * and says whether a FLUSH or FINISH still has output to give (*more).
 * Returns 0 or -EIO. */
typedef int (*compress_step_fn)(void *lib, enum compress_op op, const char **in, size_t *in_n,
                                char **out, size_t *room, int *more);

struct compress_impl {
    struct compress_codec codec;
    void *(*open)(int level, void *counter);
    compress_step_fn step;
    void (*close)(void *lib);
    int (*reset)(void *lib);       /* back to a new stream, same level; NULL: none */
};

#define COMPRESS_SPARES 16

struct compress_enc {
    const struct compress_impl *impl;
    void *lib;
    int level;
    struct compress_enc *next_spare;
    uint8_t pending;               /* COMPRESS_FLUSH or _FINISH not done yet, else 0 */
};

/* ---- allocation (counted when a counter is given: compress_codec_memory) ---- */

struct compress_count {
    size_t bytes;
};

static void *compress_alloc(void *opaque, size_t n)
{
    size_t *p = malloc(n + sizeof(size_t) * 2);
    if (p == NULL)
        return NULL;
    p[0] = n;
    if (opaque)
        ((struct compress_count *)opaque)->bytes += n;
    return p + 2;
}

static void compress_free_mem(void *opaque, void *ptr)
{
    if (ptr == NULL)
        return;
    size_t *p = (size_t *)ptr - 2;
    if (opaque)
        ((struct compress_count *)opaque)->bytes -= p[0];
    free(p);
}

/* ---- gzip ---- */

static voidpf gz_alloc(voidpf opaque, uInt items, uInt size)
{
    return compress_alloc(opaque, (size_t)items * size);
}

static void gz_free(voidpf opaque, voidpf ptr)
{
    compress_free_mem(opaque, ptr);
}

static void *gz_open(int level, void *counter)
{
    z_stream *z = calloc(1, sizeof(*z));
    if (z == NULL)
        return NULL;
    z->zalloc = gz_alloc;
    z->zfree = gz_free;
    z->opaque = counter;
    /* windowBits + 16: a gzip wrapper */
    if (deflateInit2(z, level, Z_DEFLATED, COMPRESS_GZIP_WBITS + 16, COMPRESS_GZIP_MEMLEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

static int gz_step(void *lib, enum compress_op op, const char **in, size_t *in_n, char **out,
                   size_t *room, int *more)
{
    z_stream *z = lib;
    z->next_in = (Bytef *)(uintptr_t)*in;
    z->avail_in = (uInt)*in_n;
    z->next_out = (Bytef *)*out;
    z->avail_out = (uInt)*room;
    int flush = op == COMPRESS_PROCESS ? Z_NO_FLUSH : op == COMPRESS_FLUSH ? Z_SYNC_FLUSH : Z_FINISH;
    int r = deflate(z, flush);
    if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
        return -EIO;
    *in += *in_n - z->avail_in;
    *in_n = z->avail_in;
    *out += *room - z->avail_out;
    *room = z->avail_out;
    *more = op == COMPRESS_FINISH ? r != Z_STREAM_END : op == COMPRESS_FLUSH && z->avail_out == 0;
    return 0;
}

static void gz_close(void *lib)
{
    deflateEnd(lib);
    free(lib);
}

static int gz_reset(void *lib)
{
    return deflateReset(lib) == Z_OK ? 0 : -EIO;
}

/* ---- br ---- */

static void *br_open(int level, void *counter)
{
    BrotliEncoderState *s = BrotliEncoderCreateInstance(compress_alloc, compress_free_mem, counter);
    if (s == NULL)
        return NULL;
    if (!BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, (uint32_t)level) ||
        !BrotliEncoderSetParameter(s, BROTLI_PARAM_LGWIN, COMPRESS_BR_LGWIN)) {
        BrotliEncoderDestroyInstance(s);
        return NULL;
    }
    return s;
}

static int br_step(void *lib, enum compress_op op, const char **in, size_t *in_n, char **out,
                   size_t *room, int *more)
{
    BrotliEncoderState *s = lib;
    BrotliEncoderOperation bop = op == COMPRESS_PROCESS ? BROTLI_OPERATION_PROCESS
                               : op == COMPRESS_FLUSH ? BROTLI_OPERATION_FLUSH
                               : BROTLI_OPERATION_FINISH;
    const uint8_t *ni = (const uint8_t *)*in;
    uint8_t *no = (uint8_t *)*out;
    if (!BrotliEncoderCompressStream(s, bop, in_n, &ni, room, &no, NULL))
        return -EIO;
    *in = (const char *)ni;
    *out = (char *)no;
    *more = op == COMPRESS_FINISH ? !BrotliEncoderIsFinished(s)
          : op == COMPRESS_FLUSH && (*in_n > 0 || BrotliEncoderHasMoreOutput(s));
    return 0;
}

static void br_close(void *lib)
{
    BrotliEncoderDestroyInstance(lib);
}

/* ---- zstd ---- */

/* zstd's custom allocator is experimental API: the memory is measured with
 * ZSTD_sizeof_CCtx instead (compress_codec_memory). */
static void *zs_open(int level, void *counter)
{
    ZSTD_CCtx *z = ZSTD_createCCtx();
    if (z == NULL)
        return NULL;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, COMPRESS_ZSTD_WLOG))) {
        ZSTD_freeCCtx(z);
        return NULL;
    }
    return z;
}

static int zs_step(void *lib, enum compress_op op, const char **in, size_t *in_n, char **out,
                   size_t *room, int *more)
{
    ZSTD_inBuffer ib = { *in, *in_n, 0 };
    ZSTD_outBuffer ob = { *out, *room, 0 };
    ZSTD_EndDirective d = op == COMPRESS_PROCESS ? ZSTD_e_continue
                        : op == COMPRESS_FLUSH ? ZSTD_e_flush : ZSTD_e_end;
    size_t r = ZSTD_compressStream2(lib, &ob, &ib, d);
    if (ZSTD_isError(r))
        return -EIO;
    *in += ib.pos;
    *in_n -= ib.pos;
    *out += ob.pos;
    *room -= ob.pos;
    *more = op != COMPRESS_PROCESS && (r != 0 || *in_n > 0);
    return 0;
}

static void zs_close(void *lib)
{
    ZSTD_freeCCtx(lib);
}

static int zs_reset(void *lib)
{
    return ZSTD_isError(ZSTD_CCtx_reset(lib, ZSTD_reset_session_only)) ? -EIO : 0;
}

/* ---- the table ---- */

static const struct compress_impl compress_impls[AE_CODING_COUNT] = {
    /* levels above 6 cost 8 MiB or more per response (br 7-9, zstd 7+) or
     * are far too slow to compress on the fly (br 10-11): not offered */
    [AE_CODING_BR] = { { "br", 0, 6, 4 }, br_open, br_step, br_close, NULL },
    [AE_CODING_ZSTD] = { { "zstd", 1, 6, 3 }, zs_open, zs_step, zs_close, zs_reset },
    [AE_CODING_GZIP] = { { "gzip", 1, 9, 6 }, gz_open, gz_step, gz_close, gz_reset },
};

const struct compress_codec *compress_codec_get(enum ae_coding c)
{
    return &compress_impls[c].codec;
}

/* ---- the thread's spare encoders ---- */

struct compress_spares {
    struct compress_enc *list[AE_CODING_COUNT];
    unsigned n[AE_CODING_COUNT];
};

static pthread_key_t compress_spares_key;
static pthread_once_t compress_spares_once = PTHREAD_ONCE_INIT;

static void compress_enc_destroy(struct compress_enc *e)
{
    e->impl->close(e->lib);
    free(e);
}

/* At thread exit: the spares go with the thread. */
static void compress_spares_free(void *p)
{
    struct compress_spares *s = p;
    for (int c = 0; c < AE_CODING_COUNT; c++)
        while (s->list[c]) {
            struct compress_enc *e = s->list[c];
            s->list[c] = e->next_spare;
            compress_enc_destroy(e);
        }
    free(s);
}

static void compress_spares_init(void)
{
    (void)pthread_key_create(&compress_spares_key, compress_spares_free);
}

static struct compress_spares *compress_spares(int create)
{
    (void)pthread_once(&compress_spares_once, compress_spares_init);
    struct compress_spares *s = pthread_getspecific(compress_spares_key);
    if (s == NULL && create && (s = calloc(1, sizeof(*s))) != NULL &&
        pthread_setspecific(compress_spares_key, s) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}

/* A spare encoder of codec c at `level`, or NULL. */
static struct compress_enc *compress_spare_take(enum ae_coding c, int level)
{
    struct compress_spares *s = compress_spares(0);
    if (s == NULL)
        return NULL;
    for (struct compress_enc **pp = &s->list[c]; *pp; pp = &(*pp)->next_spare) {
        struct compress_enc *e = *pp;
        if (e->level == level) {
            *pp = e->next_spare;
            s->n[c]--;
            e->next_spare = NULL;
            e->pending = 0;
            return e;
        }
    }
    return NULL;
}

void *compress_codec_open(enum ae_coding c, int level)
{
    struct compress_enc *e = compress_spare_take(c, level);
    if (e != NULL)
        return e;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->impl = &compress_impls[c];
    e->level = level;
    e->lib = e->impl->open(level, NULL);
    if (e->lib == NULL) {
        free(e);
        return NULL;
    }
    return e;
}

size_t compress_codec_memory(enum ae_coding c, int level)
{
    struct compress_count n = { 0 };
    void *lib = compress_impls[c].open(level, &n);
    if (lib == NULL)
        return 0;
    /* one byte through, so lazily made tables exist too */
    const char *in = "x";
    size_t in_n = 1, room = 64;
    char buf[64], *out = buf;
    int more;
    (void)compress_impls[c].step(lib, COMPRESS_FLUSH, &in, &in_n, &out, &room, &more);
    size_t bytes = c == AE_CODING_ZSTD ? ZSTD_sizeof_CCtx(lib) : n.bytes;
    compress_impls[c].close(lib);
    return bytes + sizeof(struct compress_enc);
}

/* txn_xform.run: see txn.h. */
static int compress_run(void *ctx, enum txn_xform_mode mode, const char *in, size_t in_n,
                        size_t *used, char *out, size_t out_room, size_t *made)
{
    struct compress_enc *e = ctx;
    compress_step_fn step = e->impl->step;
    const char *ip = in;
    size_t left = in_n, room = out_room;
    char *op = out;
    int more = 0, rc = 0;
    *used = *made = 0;
    /* a FLUSH cut short by a full buffer goes on first, with no new input */
    if (e->pending == COMPRESS_FLUSH) {
        const char *none = NULL;
        size_t zero = 0;
        if ((rc = step(e->lib, COMPRESS_FLUSH, &none, &zero, &op, &room, &more)) < 0)
            return rc;
        if (more)
            goto out;
        e->pending = 0;
    }
    if (mode == TXN_XFORM_END) {
        if ((rc = step(e->lib, COMPRESS_FINISH, &ip, &left, &op, &room, &more)) < 0)
            return rc;
        e->pending = more ? COMPRESS_FINISH : 0;
        goto out;
    }
    if (left > 0 && (rc = step(e->lib, COMPRESS_PROCESS, &ip, &left, &op, &room, &more)) < 0)
        return rc;
    more = 0;
    if (mode == TXN_XFORM_FLUSH) {
        if (left > 0 || room == 0) {
            more = 1; /* input or room left over: the flush comes next call */
        } else {
            const char *none = NULL;
            size_t zero = 0;
            if ((rc = step(e->lib, COMPRESS_FLUSH, &none, &zero, &op, &room, &more)) < 0)
                return rc;
            e->pending = more ? COMPRESS_FLUSH : 0;
        }
    }
out:
    *used = in_n - left;
    *made = out_room - room;
    return more;
}

static void compress_xform_free(void *ctx)
{
    struct compress_enc *e = ctx;
    enum ae_coding c = (enum ae_coding)(e->impl - compress_impls);
    struct compress_spares *s = e->impl->reset ? compress_spares(1) : NULL;
    if (s == NULL || s->n[c] >= COMPRESS_SPARES || e->impl->reset(e->lib) != 0) {
        compress_enc_destroy(e);
        return;
    }
    e->pending = 0;
    e->next_spare = s->list[c];
    s->list[c] = e;
    s->n[c]++;
}

const struct txn_xform compress_codec_xform = { compress_run, compress_xform_free };
