/* Unit tests for queue/qlog: record encode/decode, frames (a flipped byte
 * anywhere is caught), replay of segments in order, a torn tail cut off, a
 * corrupt stretch skipped, segments removed from the oldest end only once
 * nothing in them is live, and the lock on the directory. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue/qlog.h"

static char err[512];

static struct qlog_record send_rec(uint64_t queue, uint64_t seq, const char *body)
{
    struct qlog_record r = { .type = QLOG_SEND, .queue_id = queue, .seq = seq, .sent_ms = 1000 + seq,
                             .visible_ms = 2000 + seq };
    r.id = (struct qlog_blob){ "id-1", 4 };
    r.body = (struct qlog_blob){ body, (uint32_t)strlen(body) };
    r.attrs = (struct qlog_blob){ "{}", 2 };
    r.group = (struct qlog_blob){ "g", 1 };
    r.origin = (struct qlog_blob){ "src", 3 };
    return r;
}

static void test_encode_decode(void **state)
{
    unsigned char buf[256];
    struct qlog_record r = send_rec(7, 42, "hello"), d;
    const void *body;
    size_t body_len;

    long n = qlog_record_encode(&r, buf, sizeof(buf));
    assert_int_equal(n, QLOG_FRAME_HEADER + qlog_record_size(&r));
    assert_int_equal(qlog_frame_check(buf, (size_t)n, &body, &body_len), n);
    assert_int_equal(qlog_record_decode(body, body_len, &d), 0);
    assert_int_equal(d.type, QLOG_SEND);
    assert_int_equal(d.queue_id, 7);
    assert_int_equal(d.seq, 42);
    assert_int_equal(d.sent_ms, 1042);
    assert_int_equal(d.visible_ms, 2042);
    assert_int_equal(d.body.len, 5);
    assert_memory_equal(d.body.p, "hello", 5);
    assert_int_equal(d.id.len, 4);
    assert_int_equal(d.attrs.len, 2);
    assert_int_equal(d.group.len, 1);
    assert_int_equal(d.dedup.len, 0);
    assert_int_equal(d.origin.len, 3);
    assert_memory_equal(d.origin.p, "src", 3);
    /* too small a buffer */
    assert_int_equal(qlog_record_encode(&r, buf, (size_t)n - 1), -ENOSPC);
    /* a delete is short */
    struct qlog_record del = { .type = QLOG_DELETE, .queue_id = 7, .seq = 42 };
    n = qlog_record_encode(&del, buf, sizeof(buf));
    assert_int_equal(n, QLOG_FRAME_HEADER + 17);
    assert_int_equal(qlog_frame_check(buf, (size_t)n, &body, &body_len), n);
    assert_int_equal(qlog_record_decode(body, body_len, &d), 0);
    assert_int_equal(d.type, QLOG_DELETE);
    assert_int_equal(d.seq, 42);
}

static void test_frame_every_flip_caught(void **state)
{
    unsigned char buf[256];
    struct qlog_record r = send_rec(1, 2, "payload");
    const void *body;
    size_t body_len;
    long n = qlog_record_encode(&r, buf, sizeof(buf));

    for (long i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (unsigned char)(1 << bit);
            long got = qlog_frame_check(buf, (size_t)n, &body, &body_len);
            assert_true(got == QLOG_FRAME_CORRUPT || got == QLOG_FRAME_PARTIAL);
            buf[i] ^= (unsigned char)(1 << bit);
        }
    }
    /* every prefix is partial */
    for (long i = 0; i < n; i++)
        assert_int_equal(qlog_frame_check(buf, (size_t)i, &body, &body_len), QLOG_FRAME_PARTIAL);
}

static void test_decode_rejects(void **state)
{
    struct qlog_record d;
    unsigned char b[40] = { 9 };
    assert_int_equal(qlog_record_decode(b, 17, &d), -EINVAL); /* unknown type */
    b[0] = QLOG_DELETE;
    assert_int_equal(qlog_record_decode(b, 16, &d), -EINVAL); /* short */
    assert_int_equal(qlog_record_decode(b, 18, &d), -EINVAL); /* trailing */
    assert_int_equal(qlog_record_decode(b, 17, &d), 0);
    b[0] = QLOG_SEND;
    assert_int_equal(qlog_record_decode(b, 40, &d), -EINVAL); /* blobs missing */
}

/* ---- on disk ---- */

struct seen {
    size_t n;
    uint64_t seq[64];
    uint64_t seg[64];
    int hold;
    struct qlog *log;
};

static void collect(void *arg, const struct qlog_record *rec, uint64_t seg)
{
    struct seen *s = arg;
    if (s->n < 64) {
        s->seq[s->n] = rec->seq;
        s->seg[s->n] = seg;
        s->n++;
    }
    if (s->hold)
        qlog_seg_hold(s->log, seg);
}

static char dir[64];

static int setup_dir(void **state)
{
    strcpy(dir, "/tmp/test_qlog.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

/* Opens and replays the log; hold: the replay keeps every record live. */
static struct qlog *open_replay_hold(struct seen *s, uint64_t seg_bytes, int hold)
{
    struct qlog *log;
    assert_int_equal(qlog_open(dir, seg_bytes, &log, err, sizeof(err)), 0);
    memset(s, 0, sizeof(*s));
    s->log = log;
    s->hold = hold;
    assert_int_equal(qlog_replay(log, collect, s, err, sizeof(err)), 0);
    return log;
}

static struct qlog *open_replay(struct seen *s, uint64_t seg_bytes)
{
    return open_replay_hold(s, seg_bytes, 0);
}

static void append_n(struct qlog *log, uint64_t from, uint64_t n, int sync)
{
    for (uint64_t i = from; i < from + n; i++) {
        struct qlog_record r = send_rec(1, i, "body of a message");
        uint64_t pos, seg;
        assert_int_equal(qlog_append(log, &r, &pos, &seg), 0);
        if (sync)
            assert_int_equal(qlog_sync(log, pos), 0);
    }
}

static off_t seg_size(uint64_t id)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%016llx.wlog", dir, (unsigned long long)id);
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_replay_in_order(void **state)
{
    struct seen s;
    struct qlog *log = open_replay(&s, 0);
    assert_int_equal(s.n, 0);
    append_n(log, 1, 5, 1);
    qlog_close(log);
    log = open_replay(&s, 0);
    assert_int_equal(s.n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(s.seq[i], i + 1);
        assert_int_equal(s.seg[i], 1);
    }
    /* nothing held: segment 1 is gone, segment 2 is the active one */
    assert_int_equal(seg_size(1), -1);
    assert_int_equal(seg_size(2), 0);
    qlog_close(log);
}

static void test_second_open_refused(void **state)
{
    struct seen s;
    struct qlog *log = open_replay(&s, 0), *other;
    assert_int_equal(qlog_open(dir, 0, &other, err, sizeof(err)), -EWOULDBLOCK);
    assert_non_null(strstr(err, "in use"));
    qlog_close(log);
}

static void corrupt_at(uint64_t seg, off_t off, int truncate_there)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%016llx.wlog", dir, (unsigned long long)seg);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (truncate_there) {
        assert_int_equal(ftruncate(fd, off), 0);
    } else {
        unsigned char c;
        assert_int_equal(pread(fd, &c, 1, off), 1);
        c ^= 0x10;
        assert_int_equal(pwrite(fd, &c, 1, off), 1);
    }
    close(fd);
}

static void test_torn_tail_cut(void **state)
{
    struct seen s;
    struct qlog *log = open_replay(&s, 0);
    append_n(log, 1, 3, 1);
    qlog_close(log);
    off_t full = seg_size(1);
    corrupt_at(1, full - 5, 1); /* the last record lost its end */
    log = open_replay_hold(&s, 0, 1);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.seq[1], 2);
    assert_int_equal(seg_size(1), full / 3 * 2); /* cut at the last whole record */
    qlog_close(log);
}

static void test_flipped_byte(void **state)
{
    struct seen s;
    struct qlog *log = open_replay(&s, 0);
    append_n(log, 1, 4, 1);
    qlog_close(log);
    off_t full = seg_size(1), rec = full / 4;
    /* a byte in the body of record 2: it is skipped, 3 and 4 are kept */
    corrupt_at(1, rec + rec / 2, 0);
    log = open_replay(&s, 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.seq[0], 1);
    assert_int_equal(s.seq[1], 3);
    assert_int_equal(s.seq[2], 4);
    qlog_close(log);
}

static void test_flipped_last_record_is_tail(void **state)
{
    struct seen s;
    struct qlog *log = open_replay(&s, 0);
    append_n(log, 1, 3, 1);
    qlog_close(log);
    off_t full = seg_size(1);
    corrupt_at(1, full - 3, 0); /* a flipped byte in the last record: a torn tail */
    log = open_replay_hold(&s, 0, 1);
    assert_int_equal(s.n, 2);
    assert_int_equal(seg_size(1), full / 3 * 2);
    qlog_close(log);
}

static void test_segments_removed_oldest_first(void **state)
{
    struct seen s;
    /* small segments: about two records each */
    struct qlog *log = open_replay(&s, 150);
    uint64_t segs[6];
    for (uint64_t i = 0; i < 6; i++) {
        struct qlog_record r = send_rec(1, i, "body of a message");
        uint64_t pos;
        assert_int_equal(qlog_append(log, &r, &pos, &segs[i]), 0);
        qlog_seg_hold(log, segs[i]);
    }
    assert_int_equal(segs[0], 1);
    assert_true(segs[5] > segs[0] + 1);
    /* releasing a later segment first keeps it: an older one still lives */
    for (uint64_t i = 2; i < 6; i++)
        if (segs[i] != segs[0] && segs[i] != segs[5])
            qlog_seg_release(log, segs[i]);
    assert_true(seg_size(segs[2]) > 0);
    /* releasing the oldest drops it and every empty one after it */
    qlog_seg_release(log, segs[0]);
    qlog_seg_release(log, segs[1]);
    assert_int_equal(seg_size(segs[0]), -1);
    assert_int_equal(seg_size(segs[2]), -1);
    assert_true(seg_size(segs[5]) > 0); /* still held, and active */
    qlog_close(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_decode),
        cmocka_unit_test(test_frame_every_flip_caught),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test_setup_teardown(test_replay_in_order, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_second_open_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flipped_byte, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_flipped_last_record_is_tail, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_segments_removed_oldest_first, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
