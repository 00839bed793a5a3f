/* fuzz_h2: libFuzzer harness for the HTTP/2 server side (http2/).
 *
 * 1. The input follows the client preface into an nghttp2 server session
 *    with weir's callbacks and options (h2_server.c), fed in three pieces
 *    at split points derived from the input, the frames weir would send
 *    drained after each piece. The harness has no proxy worker, so every
 *    stream is refused: this covers the frame handling, the attack
 *    counters and the GOAWAYs, not the lanes' I/O.
 * 2. The same bytes, as the HTTP/1.1 answer a session writes to its lane,
 *    go through the lane's struct sio (h2_lane_sio_init: bounded by
 *    H2_LANE_HWM, EAGAIN when full) in pieces sized from the input, the
 *    answer parser and body decoder (h2_bridge.c) taking what each piece
 *    gave, then the session's end of stream; the body is drained and a
 *    chunked answer's trailer fields are read. */
#include <errno.h>
#include <ev.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http2/h2_internal.h"
#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct h2_cfg fuzz_cfg = {
    .max_concurrent_streams = 100, .max_header_list = 65536, .window = 262144, .max_resets = 200,
    .max_control = 100, .max_continuations = 5, .window_timeout_ms = 30000,
};

static void fuzz_drain(nghttp2_session *ng)
{
    const uint8_t *out;
    for (int i = 0; i < 64 && nghttp2_session_mem_send(ng, &out) > 0; i++)
        ;
}

static void fuzz_conn_init(struct h2_conn *hc, struct wctx *wc, struct cfg_listener *lst)
{
    static struct ev_loop *loop;
    if (!loop)
        loop = ev_loop_new(EVFLAG_AUTO);
    memset(wc, 0, sizeof(*wc));
    wc->worker.loop = loop;
    memset(lst, 0, sizeof(*lst));
    lst->name = "fuzz";
    lst->http2 = (struct h2_cfg *)&fuzz_cfg;
    lst->idle_timeout_ms = 60000;
    memset(hc, 0, sizeof(*hc));
    hc->wc = wc;
    hc->lst = lst;
    hc->cfg = &fuzz_cfg;
    strcpy(hc->client_ip, "127.0.0.1");
    if (h2_conn_session(hc) != 0)
        abort();
}

static void fuzz_frames(const uint8_t *data, size_t size)
{
    struct wctx wc;
    struct cfg_listener lst;
    struct h2_conn hc;
    fuzz_conn_init(&hc, &wc, &lst);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    nghttp2_session_mem_recv(hc.ng, (const uint8_t *)preface, sizeof(preface) - 1);
    size_t a = size ? data[0] % (size + 1) : 0;
    size_t b = size > 1 ? a + data[size - 1] % (size - a + 1) : size;
    size_t cuts[] = { 0, a, b, size };
    for (int i = 0; i < 3; i++) {
        if (nghttp2_session_mem_recv(hc.ng, data + cuts[i], cuts[i + 1] - cuts[i]) < 0)
            break;
        fuzz_drain(hc.ng);
    }
    nghttp2_session_del(hc.ng);
}

static void fuzz_answer(const uint8_t *data, size_t size, int head)
{
    struct wctx wc;
    struct cfg_listener lst;
    struct h2_conn hc;
    fuzz_conn_init(&hc, &wc, &lst);
    struct h2_lane l;
    memset(&l, 0, sizeof(l));
    l.hc = &hc;
    ev_init(&l.io, NULL); /* the lane's events are fed to it, never run here */
    l.sid = 1;
    l.is_head = (unsigned)head;
    l.reusable = 1;
    struct sio s;
    h2_lane_sio_init(&l, &s);
    size_t off = 0, piece = size ? 1u + data[0] % 193u : 1;
    int rc = 0;
    for (int i = 0; i < 4096 && off < size && rc == 0; i++) {
        size_t n = size - off < piece ? size - off : piece;
        struct iovec iov[2] = { { (void *)(data + off), n / 2 }, { (void *)(data + off + n / 2), n - n / 2 } };
        ssize_t w = sio_writev(&s, iov, 2);
        if (w > 0) {
            if ((size_t)w > n || h2_bytes_size(&l.in) > H2_LANE_HWM)
                abort();
            off += (size_t)w;
        } else if (w != -EAGAIN) {
            abort();
        }
        rc = h2_lane_process(&l);
        if (w == -EAGAIN && h2_bytes_size(&l.in) >= H2_LANE_HWM) { /* the client takes some body */
            if (!l.head_sent || h2_bytes_size(&l.body) == 0)
                break; /* a head or chunk line larger than the lane: the answer is stuck */
            h2_bytes_take(&l.body, h2_bytes_size(&l.body));
        }
    }
    sio_close(&s); /* the session's end: what it wrote is all there is */
    if (!l.peer_eof)
        abort();
    l.eof = 1;
    if (rc == 0 && h2_lane_process(&l) == 0 && l.head_sent) {
        for (int i = 0; i < 64 && (h2_bytes_size(&l.body) > 0 || h2_bytes_size(&l.in) > 0); i++) {
            size_t before = h2_bytes_size(&l.body) + h2_bytes_size(&l.in);
            h2_bytes_take(&l.body, h2_bytes_size(&l.body) < 4096 ? h2_bytes_size(&l.body) : 4096);
            if (h2_lane_process(&l) != 0 || h2_bytes_size(&l.body) + h2_bytes_size(&l.in) >= before)
                break;
        }
    }
    ev_io_stop(hc.wc->worker.loop, &l.io); /* drops the events the writes fed */
    if (l.resp_done && h2_bytes_size(&l.tail) > 0) {
        nghttp2_nv nv[HTTP_MAX_HEADERS_HARD];
        size_t n = h2_trailer_fields(l.tail.p + l.tail.off, h2_bytes_size(&l.tail), nv, HTTP_MAX_HEADERS_HARD);
        for (size_t i = 0; i < n; i++)
            if (nv[i].namelen == 0 || nv[i].name[0] == ':')
                abort();
    }
    h2_bytes_free(&l.in);
    h2_bytes_free(&l.body);
    h2_bytes_free(&l.tail);
    nghttp2_session_del(hc.ng);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_frames(data, size);
    fuzz_answer(data, size, 0);
    fuzz_answer(data, size, 1);
    return 0;
}
