/* compress_codec: the encoders behind the compress step, one row per
 * content coding (accept_encoding.h's list): gzip (zlib), br (libbrotli),
 * zstd (libzstd), each driven as a streaming body transform (txn.h's
 * struct txn_xform) with bounded memory. */
#ifndef WEIR_HTTP_STEPS_COMPRESS_CODEC_H
#define WEIR_HTTP_STEPS_COMPRESS_CODEC_H

#include <stddef.h>

#include "http/steps/accept_encoding.h"
#include "http/txn.h"

struct compress_codec {
    const char *name;              /* the Content-Encoding value */
    int level_min, level_max, level_default;
};

/* The row of coding c. */
const struct compress_codec *compress_codec_get(enum ae_coding c);
/* A new encoder of coding c at `level` (within the row's range), or NULL
 * when out of memory. It is a body transform: hand it to
 * txn_set_body_xform with compress_codec_xform, which frees it. */
void *compress_codec_open(enum ae_coding c, int level);
extern const struct txn_xform compress_codec_xform;
/* Bytes the library holds for one encoder of c at level (measured by
 * counting its allocations; for tests and the docs). */
size_t compress_codec_memory(enum ae_coding c, int level);

#endif
