/* fuzz_qlog_record: libFuzzer harness for the queue log's frame check and
 * record decoder (queue/qlog.c), the code that reads whatever a crash or a
 * bad disk left in a segment.
 *
 * The input is read as a segment: frames are checked one after another
 * (resynchronising byte by byte after a bad one, as replay does); every
 * frame that checks is decoded, and every record that decodes is encoded
 * again and must check and decode to the same fields. Each frame is
 * checked on an exact-size copy so a read past it is a heap overflow
 * under ASan. */
#include "queue/qlog.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int blob_eq(struct qlog_blob a, struct qlog_blob b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void fuzz_roundtrip(const struct qlog_record *rec)
{
    size_t cap = QLOG_FRAME_HEADER + qlog_record_size(rec);
    unsigned char *buf = malloc(cap);
    const void *body;
    size_t body_len;
    struct qlog_record again;

    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(qlog_record_encode(rec, buf, cap) == (long)cap);
    FUZZ_CHECK(qlog_frame_check(buf, cap, &body, &body_len) == (long)cap);
    FUZZ_CHECK(qlog_record_decode(body, body_len, &again) == 0);
    FUZZ_CHECK(again.type == rec->type && again.queue_id == rec->queue_id &&
               again.seq == rec->seq && again.sent_ms == rec->sent_ms &&
               again.visible_ms == rec->visible_ms);
    FUZZ_CHECK(blob_eq(again.id, rec->id) && blob_eq(again.body, rec->body) &&
               blob_eq(again.attrs, rec->attrs) && blob_eq(again.group, rec->group) &&
               blob_eq(again.dedup, rec->dedup) && blob_eq(again.origin, rec->origin));
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        size_t avail = size - off;
        unsigned char *copy = malloc(avail ? avail : 1);
        const void *body;
        size_t body_len;
        struct qlog_record rec;

        FUZZ_CHECK(copy != NULL);
        memcpy(copy, data + off, avail);
        long n = qlog_frame_check(copy, avail, &body, &body_len);
        FUZZ_CHECK(n == QLOG_FRAME_PARTIAL || n == QLOG_FRAME_CORRUPT ||
                   (n > 0 && (size_t)n <= avail));
        if (n > 0 && qlog_record_decode(body, body_len, &rec) == 0)
            fuzz_roundtrip(&rec);
        /* the body alone, exact size, through the decoder too */
        if (avail > 1 && qlog_record_decode(copy + 1, avail - 1, &rec) == 0)
            fuzz_roundtrip(&rec);
        free(copy);
        off += n > 0 ? (size_t)n : 1;
    }
    return 0;
}
