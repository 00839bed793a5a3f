/* qlog: the durable queue log, one per weir instance, under `data_dir:`.
 *
 * An append-only sequence of segment files (DIR/0000000000000001.wlog, ...)
 * holding framed records (see qlog.c for the layout): a message sent, a
 * message deleted, a queue purged. Queue definitions are not in the log
 * (queue/broker.c keeps them in a small file of their own), so every
 * segment can be dropped on its own once nothing in it is live.
 *
 * Threads: qlog_append() and qlog_sync() may be called from any thread;
 * appends are serialised by the log's mutex, qlog_sync() groups the callers
 * waiting at the same time behind one fdatasync (group commit). */
#ifndef WEIR_QUEUE_QLOG_H
#define WEIR_QUEUE_QLOG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define QLOG_FRAME_HEADER 12            /* magic, length, CRC */
#define QLOG_MAX_RECORD (16u << 20)     /* a longer length field is corruption */
#define QLOG_DEFAULT_SEGMENT_BYTES (64u << 20)

#define QLOG_TYPE_LIST(X) \
    X(QLOG_SEND, 1, "send") \
    X(QLOG_DELETE, 2, "delete") \
    X(QLOG_PURGE, 3, "purge")
#define QLOG_TYPE_MEMBER(e, v, s) e = v,
enum qlog_type { QLOG_TYPE_LIST(QLOG_TYPE_MEMBER) };
#undef QLOG_TYPE_MEMBER

struct qlog_blob {
    const void *p;
    uint32_t len;
};

/* One record, decoded: the blobs point into the buffer it was decoded from. */
struct qlog_record {
    enum qlog_type type;
    uint64_t queue_id;                 /* the queue's incarnation (broker.c) */
    uint64_t seq;                      /* send, delete: the message; purge: every seq <= this */
    uint64_t sent_ms;                  /* send: wall clock, ms */
    uint64_t visible_ms;               /* send: first visible (DelaySeconds) */
    struct qlog_blob id;               /* send: the MessageId */
    struct qlog_blob body;             /* send */
    struct qlog_blob attrs;            /* send: message attributes, JSON as received */
    struct qlog_blob group;            /* send: FIFO MessageGroupId (may be empty) */
    struct qlog_blob dedup;            /* send: FIFO MessageDeduplicationId (may be empty) */
    struct qlog_blob origin;           /* send: the queue a dead letter came from (may be empty) */
};

/* Bytes the encoded body of rec takes (without the frame header). */
size_t qlog_record_size(const struct qlog_record *rec);

/* Writes the frame (header + body) of rec into out[0..cap). Returns the
 * bytes written, or -ENOSPC when cap is too small, -EINVAL when rec is too
 * large. */
long qlog_record_encode(const struct qlog_record *rec, void *out, size_t cap);

/* Decodes a record body (what a frame holds). Returns 0 with *out pointing
 * into body, or -EINVAL (unknown type, truncated or trailing bytes). */
int qlog_record_decode(const void *body, size_t len, struct qlog_record *out);

#define QLOG_FRAME_PARTIAL (-2)        /* buf ends inside a frame that may be whole later */
#define QLOG_FRAME_CORRUPT (-1)        /* bad magic, length or CRC */

/* Checks the frame at buf[0..avail). Returns its total size with *body and
 * *body_len set, QLOG_FRAME_PARTIAL or QLOG_FRAME_CORRUPT. */
long qlog_frame_check(const void *buf, size_t avail, const void **body, size_t *body_len);

struct qlog_seg {
    uint64_t id;
    uint64_t live;                     /* records the owner holds (qlog_seg_hold) */
};

struct qlog {
    char *dir;
    int dir_fd;
    int lock_fd;                       /* flock'd: one weir per data_dir */
    uint64_t segment_bytes;
    pthread_mutex_t mu;                /* everything below */
    int fd;                            /* the active segment, -1 before qlog_replay() */
    uint64_t active_size;
    uint64_t written;                  /* bytes appended since open: the position of an append */
    int failed;                        /* a negative errno once an fsync failed: no more appends */
    struct qlog_seg *segs;             /* oldest first; the last is the active one */
    size_t n_segs, cap_segs;
    pthread_mutex_t sync_mu;           /* one fdatasync at a time */
    uint64_t synced;                   /* written up to here is on disk */
};

/* Opens (creating it if missing) the log directory `dir`. Returns 0 with
 * *out owned by the caller (qlog_close()), or a negative errno with err
 * filled (-EWOULDBLOCK: another process holds it). */
int qlog_open(const char *dir, uint64_t segment_bytes, struct qlog **out, char *err,
              size_t err_size);

/* Called for every valid record in log order; `seg` is its segment. The
 * callee calls qlog_seg_hold(log, seg) for each record it keeps live. */
typedef void (*qlog_replay_fn)(void *arg, const struct qlog_record *rec, uint64_t seg);

/* Replays every segment through fn, cutting off a torn or corrupt tail of
 * the last segment and skipping corrupt stretches elsewhere (both logged),
 * then starts a new active segment and drops leading segments that hold
 * nothing. Once, before any append. Returns 0 or a negative errno (err). */
int qlog_replay(struct qlog *log, qlog_replay_fn fn, void *arg, char *err, size_t err_size);

/* Appends rec. Returns 0 with *pos (what qlog_sync() waits for) and *seg
 * (the segment that holds it: the caller holds it once if the record stays
 * live) or a negative errno: -ENOSPC/-EDQUOT (disk full, nothing written),
 * -EIO (the log failed), -EINVAL (too large). The record is in the kernel,
 * not necessarily on disk. */
int qlog_append(struct qlog *log, const struct qlog_record *rec, uint64_t *pos, uint64_t *seg);

/* Makes everything appended up to pos durable (fdatasync, shared with any
 * concurrent caller). Returns 0 or a negative errno (the log then fails). */
int qlog_sync(struct qlog *log, uint64_t pos);

/* Makes everything appended so far durable if anything is pending. */
int qlog_sync_all(struct qlog *log);

/* A live record in segment seg is held / no longer held. Releasing the
 * last hold of the oldest segments removes them (never the active one). */
void qlog_seg_hold(struct qlog *log, uint64_t seg);
void qlog_seg_release(struct qlog *log, uint64_t seg);

/* Syncs and closes; NULL is a no-op. */
void qlog_close(struct qlog *log);

#endif
