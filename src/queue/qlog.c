/* qlog: the segmented append-only log of the durable queues (qlog.h).
 *
 *   DIR/LOCK                       flock'd while weir runs
 *   DIR/0000000000000001.wlog      oldest segment ... removed once nothing in it is live
 *   DIR/0000000000000007.wlog      active segment: appends go here
 *
 * A frame (little endian):
 *
 *   +--------+--------+--------+---------------------------------+
 *   | magic  | length | crc32c | body: length bytes              |
 *   | WQL1   | u32    | u32    | type u8, then the type's fields |
 *   +--------+--------+--------+---------------------------------+
 *
 * The CRC covers the length field and the body, so a flipped length is
 * caught as surely as a flipped body byte. Fields: u64 numbers, blobs as
 * u32 length + bytes; a send carries queue, seq, sent, visible, id, body,
 * attributes, group, dedup, origin; a delete and a purge carry queue and seq.
 *
 * Appends are one pwrite at the end of the active segment; a short or
 * failed write (disk full) is cut off again with ftruncate, so the file
 * never holds half a record that a later record follows. When a record does
 * not fit the segment a new one is started (the old one fdatasync'd first,
 * the directory too), so a sync needs only the active file.
 *
 * Replay reads each segment whole. A bad frame starts a search for the next
 * good one (magic, sane length, CRC); what lies between is skipped and
 * logged. With no good frame after it, the rest is a torn tail: cut off
 * (ftruncate) in the last segment, logged in any other. Appends after a
 * replay start a fresh segment.
 *
 * Segments are dropped from the oldest end only: a delete record may sit in
 * a later segment than its send, so dropping a later segment first could
 * bring a deleted message back. */
#include "queue/qlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "core/log.h"

#define QLOG_MAGIC 0x314c5157u /* "WQL1" read as little endian */
#define QLOG_SEG_SUFFIX ".wlog"
#define QLOG_SEG_NAME_LEN 22 /* 16 hex digits + ".wlog" + NUL */

/* ---- encoding ---- */

static void qlog_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void qlog_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t qlog_get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t qlog_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

size_t qlog_record_size(const struct qlog_record *rec)
{
    size_t n = 1 + 8 + 8;
    if (rec->type != QLOG_SEND)
        return n;
    return n + 8 + 8 + 6 * 4 + (size_t)rec->id.len + rec->body.len + rec->attrs.len +
           rec->group.len + rec->dedup.len + rec->origin.len;
}

static unsigned char *qlog_put_blob(unsigned char *p, struct qlog_blob b)
{
    qlog_put32(p, b.len);
    if (b.len)
        memcpy(p + 4, b.p, b.len);
    return p + 4 + b.len;
}

long qlog_record_encode(const struct qlog_record *rec, void *out, size_t cap)
{
    size_t body_len = qlog_record_size(rec);
    unsigned char *o = out, *p;

    if (body_len > QLOG_MAX_RECORD)
        return -EINVAL;
    if (cap < QLOG_FRAME_HEADER + body_len)
        return -ENOSPC;
    p = o + QLOG_FRAME_HEADER;
    *p++ = (unsigned char)rec->type;
    qlog_put64(p, rec->queue_id);
    qlog_put64(p + 8, rec->seq);
    p += 16;
    if (rec->type == QLOG_SEND) {
        qlog_put64(p, rec->sent_ms);
        qlog_put64(p + 8, rec->visible_ms);
        p += 16;
        p = qlog_put_blob(p, rec->id);
        p = qlog_put_blob(p, rec->body);
        p = qlog_put_blob(p, rec->attrs);
        p = qlog_put_blob(p, rec->group);
        p = qlog_put_blob(p, rec->dedup);
        p = qlog_put_blob(p, rec->origin);
    }
    qlog_put32(o, QLOG_MAGIC);
    qlog_put32(o + 4, (uint32_t)body_len);
    qlog_put32(o + 8, crc32c_update(crc32c_update(0, o + 4, 4), o + QLOG_FRAME_HEADER, body_len));
    return (long)(QLOG_FRAME_HEADER + body_len);
}

/* Reads a blob at *p (bounded by end); returns 0 or -EINVAL. */
static int qlog_get_blob(const unsigned char **p, const unsigned char *end, struct qlog_blob *b)
{
    if (end - *p < 4)
        return -EINVAL;
    uint32_t n = qlog_get32(*p);
    if ((size_t)(end - *p - 4) < n)
        return -EINVAL;
    b->p = *p + 4;
    b->len = n;
    *p += 4 + (size_t)n;
    return 0;
}

int qlog_record_decode(const void *body, size_t len, struct qlog_record *out)
{
    const unsigned char *p = body, *end = p + len;

    memset(out, 0, sizeof(*out));
    if (len < 17)
        return -EINVAL;
    out->type = (enum qlog_type)p[0];
    if (p[0] < QLOG_SEND || p[0] > QLOG_PURGE)
        return -EINVAL;
    out->queue_id = qlog_get64(p + 1);
    out->seq = qlog_get64(p + 9);
    p += 17;
    if (out->type == QLOG_SEND) {
        if (end - p < 16)
            return -EINVAL;
        out->sent_ms = qlog_get64(p);
        out->visible_ms = qlog_get64(p + 8);
        p += 16;
        if (qlog_get_blob(&p, end, &out->id) || qlog_get_blob(&p, end, &out->body) ||
            qlog_get_blob(&p, end, &out->attrs) || qlog_get_blob(&p, end, &out->group) ||
            qlog_get_blob(&p, end, &out->dedup) || qlog_get_blob(&p, end, &out->origin))
            return -EINVAL;
    }
    return p == end ? 0 : -EINVAL;
}

long qlog_frame_check(const void *buf, size_t avail, const void **body, size_t *body_len)
{
    const unsigned char *p = buf;

    if (avail < 4)
        return avail == 0 || memcmp(p, "WQL1", avail) == 0 ? QLOG_FRAME_PARTIAL
                                                            : QLOG_FRAME_CORRUPT;
    if (qlog_get32(p) != QLOG_MAGIC)
        return QLOG_FRAME_CORRUPT;
    if (avail < QLOG_FRAME_HEADER)
        return QLOG_FRAME_PARTIAL;
    uint32_t len = qlog_get32(p + 4);
    if (len > QLOG_MAX_RECORD || len < 17)
        return QLOG_FRAME_CORRUPT;
    if (avail - QLOG_FRAME_HEADER < len)
        return QLOG_FRAME_PARTIAL;
    uint32_t crc = crc32c_update(crc32c_update(0, p + 4, 4), p + QLOG_FRAME_HEADER, len);
    if (crc != qlog_get32(p + 8))
        return QLOG_FRAME_CORRUPT;
    *body = p + QLOG_FRAME_HEADER;
    *body_len = len;
    return (long)(QLOG_FRAME_HEADER + len);
}

/* ---- segments ---- */

static void qlog_seg_name(char *buf, uint64_t id)
{
    snprintf(buf, QLOG_SEG_NAME_LEN, "%016" PRIx64 QLOG_SEG_SUFFIX, id);
}

static int qlog_seg_add(struct qlog *log, uint64_t id)
{
    if (log->n_segs == log->cap_segs) {
        size_t cap = log->cap_segs ? log->cap_segs * 2 : 16;
        struct qlog_seg *s = realloc(log->segs, cap * sizeof(*s));
        if (s == NULL)
            return -ENOMEM;
        log->segs = s;
        log->cap_segs = cap;
    }
    log->segs[log->n_segs++] = (struct qlog_seg){ .id = id };
    return 0;
}

static struct qlog_seg *qlog_seg_find(struct qlog *log, uint64_t id)
{
    size_t lo = 0, hi = log->n_segs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (log->segs[mid].id == id)
            return &log->segs[mid];
        if (log->segs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Drops leading segments that hold nothing, never the active (last) one.
 * Called with mu held. */
static void qlog_trim(struct qlog *log)
{
    size_t n = 0;
    char name[QLOG_SEG_NAME_LEN];

    while (n + 1 < log->n_segs && log->segs[n].live == 0) {
        qlog_seg_name(name, log->segs[n].id);
        if (unlinkat(log->dir_fd, name, 0) == -1 && errno != ENOENT) {
            log_warn("queue log: cannot remove %s/%s: %s", log->dir, name, strerror(errno));
            break;
        }
        log_debug("queue log: removed %s/%s, nothing in it is live", log->dir, name);
        n++;
    }
    if (n == 0)
        return;
    memmove(log->segs, log->segs + n, (log->n_segs - n) * sizeof(*log->segs));
    log->n_segs -= n;
}

void qlog_seg_hold(struct qlog *log, uint64_t seg)
{
    pthread_mutex_lock(&log->mu);
    struct qlog_seg *s = qlog_seg_find(log, seg);
    if (s)
        s->live++;
    pthread_mutex_unlock(&log->mu);
}

void qlog_seg_release(struct qlog *log, uint64_t seg)
{
    pthread_mutex_lock(&log->mu);
    struct qlog_seg *s = qlog_seg_find(log, seg);
    if (s && s->live > 0 && --s->live == 0 && s == &log->segs[0])
        qlog_trim(log);
    pthread_mutex_unlock(&log->mu);
}

/* Starts segment `id` as the active one (after syncing the one before).
 * Called with mu held (or before any thread shares the log). */
static int qlog_rotate(struct qlog *log, uint64_t id)
{
    char name[QLOG_SEG_NAME_LEN];

    if (log->fd >= 0) {
        if (fdatasync(log->fd) == -1) {
            log->failed = -errno;
            return log->failed;
        }
        close(log->fd);
        log->fd = -1;
    }
    qlog_seg_name(name, id);
    int fd = openat(log->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1)
        return -errno;
    int rc = qlog_seg_add(log, id);
    if (rc == 0 && fsync(log->dir_fd) == -1)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        unlinkat(log->dir_fd, name, 0);
        if (rc != -ENOMEM && log->n_segs && log->segs[log->n_segs - 1].id == id)
            log->n_segs--;
        return rc;
    }
    log->fd = fd;
    log->active_size = 0;
    return 0;
}

/* ---- open, replay ---- */

int qlog_open(const char *dir, uint64_t segment_bytes, struct qlog **out, char *err,
              size_t err_size)
{
    struct qlog *log = calloc(1, sizeof(*log));
    if (log == NULL || (log->dir = strdup(dir)) == NULL) {
        free(log);
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    log->fd = log->lock_fd = log->dir_fd = -1;
    log->segment_bytes = segment_bytes ? segment_bytes : QLOG_DEFAULT_SEGMENT_BYTES;
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->sync_mu, NULL);
    int rc;
    if (mkdir(dir, 0700) == -1 && errno != EEXIST)
        goto fail_errno;
    if ((log->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
        goto fail_errno;
    log->lock_fd = openat(log->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (log->lock_fd == -1)
        goto fail_errno;
    if (flock(log->lock_fd, LOCK_EX | LOCK_NB) == -1) {
        rc = -errno;
        snprintf(err, err_size, "queue log %s is in use by another process", dir);
        goto fail;
    }
    *out = log;
    return 0;
fail_errno:
    rc = -errno;
    snprintf(err, err_size, "queue log %s: %s", dir, strerror(errno));
fail:
    qlog_close(log);
    return rc;
}

static int qlog_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment ids in the directory, sorted, into log->segs. */
static int qlog_list(struct qlog *log)
{
    int fd = dup(log->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    rewinddir(d);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char *end;
        if (strlen(e->d_name) != QLOG_SEG_NAME_LEN - 1 ||
            strcmp(e->d_name + 16, QLOG_SEG_SUFFIX) != 0)
            continue;
        uint64_t id = strtoull(e->d_name, &end, 16);
        if (end == e->d_name + 16 && id > 0)
            rc = qlog_seg_add(log, id);
    }
    closedir(d);
    if (rc == 0 && log->n_segs > 1)
        qsort(log->segs, log->n_segs, sizeof(*log->segs), qlog_cmp_u64);
    return rc;
}

static int qlog_read_file(int dir_fd, const char *name, unsigned char **data, size_t *len)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd == -1)
        return -errno;
    if (fstat(fd, &st) == -1) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *len = (size_t)st.st_size;
    *data = malloc(*len ? *len : 1);
    size_t got = 0;
    while (*data && got < *len) {
        ssize_t n = read(fd, *data + got, *len - got);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (*data == NULL)
        return -ENOMEM;
    *len = got;
    return 0;
}

/* The offset of the next good frame at or after `from`, or len. */
static size_t qlog_resync(const unsigned char *data, size_t len, size_t from)
{
    for (size_t off = from; off + QLOG_FRAME_HEADER <= len; off++) {
        const void *body;
        size_t body_len;
        if (data[off] == 'W' && qlog_frame_check(data + off, len - off, &body, &body_len) > 0)
            return off;
    }
    return len;
}

/* Replays one segment's bytes; returns where its good data ends (the cut
 * point of a torn tail). */
static size_t qlog_replay_data(struct qlog *log, const char *name, uint64_t seg,
                               const unsigned char *data, size_t len, qlog_replay_fn fn, void *arg)
{
    size_t off = 0;
    while (off < len) {
        const void *body;
        size_t body_len;
        struct qlog_record rec;
        long n = qlog_frame_check(data + off, len - off, &body, &body_len);
        if (n > 0 && qlog_record_decode(body, body_len, &rec) == 0) {
            fn(arg, &rec, seg);
            off += (size_t)n;
            continue;
        }
        size_t next = qlog_resync(data, len, off + 1);
        if (next == len)
            return off;
        log_error("queue log: %s/%s: skipped %zu corrupt bytes at offset %zu (records there are "
                  "lost)", log->dir, name, next - off, off);
        off = next;
    }
    return len;
}

int qlog_replay(struct qlog *log, qlog_replay_fn fn, void *arg, char *err, size_t err_size)
{
    char name[QLOG_SEG_NAME_LEN];
    int rc = qlog_list(log);
    if (rc < 0) {
        snprintf(err, err_size, "queue log %s: cannot list: %s", log->dir, strerror(-rc));
        return rc;
    }
    for (size_t i = 0; i < log->n_segs; i++) {
        unsigned char *data = NULL;
        size_t len = 0;
        qlog_seg_name(name, log->segs[i].id);
        if ((rc = qlog_read_file(log->dir_fd, name, &data, &len)) < 0) {
            snprintf(err, err_size, "queue log %s/%s: %s", log->dir, name, strerror(-rc));
            return rc;
        }
        size_t good = qlog_replay_data(log, name, log->segs[i].id, data, len, fn, arg);
        free(data);
        if (good == len)
            continue;
        if (i + 1 < log->n_segs) {
            log_error("queue log: %s/%s: %zu bytes after offset %zu are not records; left as "
                      "they are", log->dir, name, len - good, good);
            continue;
        }
        log_warn("queue log: %s/%s: cut off a torn tail of %zu bytes at offset %zu", log->dir,
                 name, len - good, good);
        int fd = openat(log->dir_fd, name, O_WRONLY | O_CLOEXEC);
        if (fd == -1 || ftruncate(fd, (off_t)good) == -1 || fsync(fd) == -1) {
            rc = -errno;
            snprintf(err, err_size, "queue log %s/%s: cannot cut the torn tail: %s", log->dir,
                     name, strerror(errno));
            if (fd >= 0)
                close(fd);
            return rc;
        }
        close(fd);
    }
    uint64_t next = log->n_segs ? log->segs[log->n_segs - 1].id + 1 : 1;
    if ((rc = qlog_rotate(log, next)) < 0) {
        snprintf(err, err_size, "queue log %s: cannot start a segment: %s", log->dir,
                 strerror(-rc));
        return rc;
    }
    qlog_trim(log);
    return 0;
}

/* ---- append, sync ---- */

/* Writes buf at the end of the active segment, all or nothing. */
static int qlog_write(struct qlog *log, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(log->fd, (const char *)buf + done, len - done,
                           (off_t)(log->active_size + done));
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0) {
            int rc = n == 0 ? -ENOSPC : -errno;
            if (done > 0 && ftruncate(log->fd, (off_t)log->active_size) == -1)
                log->failed = -EIO; /* half a record we cannot remove: stop here */
            return rc;
        }
        done += (size_t)n;
    }
    log->active_size += len;
    log->written += len;
    return 0;
}

int qlog_append(struct qlog *log, const struct qlog_record *rec, uint64_t *pos, uint64_t *seg)
{
    size_t size = QLOG_FRAME_HEADER + qlog_record_size(rec);
    if (size > QLOG_FRAME_HEADER + QLOG_MAX_RECORD)
        return -EINVAL;
    unsigned char stack[4096];
    unsigned char *buf = size <= sizeof(stack) ? stack : malloc(size);
    if (buf == NULL)
        return -ENOMEM;
    qlog_record_encode(rec, buf, size);
    pthread_mutex_lock(&log->mu);
    int rc = log->failed;
    if (rc == 0 && log->fd < 0)
        rc = -EBADF;
    if (rc == 0 && log->active_size > 0 && log->active_size + size > log->segment_bytes) {
        rc = qlog_rotate(log, log->segs[log->n_segs - 1].id + 1);
        if (rc == 0)
            qlog_trim(log);
    }
    if (rc == 0)
        rc = qlog_write(log, buf, size);
    if (rc == 0) {
        *pos = log->written;
        *seg = log->segs[log->n_segs - 1].id;
    }
    pthread_mutex_unlock(&log->mu);
    if (buf != stack)
        free(buf);
    return rc;
}

int qlog_sync(struct qlog *log, uint64_t pos)
{
    int rc = 0;
    pthread_mutex_lock(&log->sync_mu);
    if (log->synced >= pos)
        goto out;
    pthread_mutex_lock(&log->mu);
    uint64_t target = log->written;
    int fd = log->failed ? -1 : dup(log->fd);
    rc = log->failed ? log->failed : fd == -1 ? -errno : 0;
    pthread_mutex_unlock(&log->mu);
    if (rc < 0)
        goto out;
    if (fdatasync(fd) == -1) {
        /* After a failed fsync the kernel may have dropped the dirty pages:
         * nothing written since the last good sync can be promised. */
        rc = -errno;
        log_error("queue log %s: fdatasync failed: %s; the log takes no more messages",
                  log->dir, strerror(errno));
        pthread_mutex_lock(&log->mu);
        log->failed = -EIO;
        pthread_mutex_unlock(&log->mu);
    } else {
        log->synced = target;
    }
    close(fd);
out:
    pthread_mutex_unlock(&log->sync_mu);
    return rc;
}

int qlog_sync_all(struct qlog *log)
{
    pthread_mutex_lock(&log->mu);
    uint64_t pos = log->written;
    pthread_mutex_unlock(&log->mu);
    return qlog_sync(log, pos);
}

void qlog_close(struct qlog *log)
{
    if (log == NULL)
        return;
    if (log->fd >= 0) {
        if (log->failed == 0)
            fdatasync(log->fd);
        close(log->fd);
    }
    if (log->lock_fd >= 0)
        close(log->lock_fd);
    if (log->dir_fd >= 0)
        close(log->dir_fd);
    pthread_mutex_destroy(&log->mu);
    pthread_mutex_destroy(&log->sync_mu);
    free(log->segs);
    free(log->dir);
    free(log);
}
