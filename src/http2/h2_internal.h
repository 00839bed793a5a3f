/* h2_internal: what h2_server.c (the connection, nghttp2's callbacks) and
 * h2_bridge.c (the lanes: a stream re-serialised as HTTP/1.1 to a proxy
 * session and its HTTP/1.1 answer parsed back) share. */
#ifndef WEIR_HTTP2_H2_INTERNAL_H
#define WEIR_HTTP2_H2_INTERNAL_H

#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/metrics.h"
#include "core/sio.h"
#include "http/http_parser.h"
#include "http2/h2_cfg.h"
#include "server/server.h"

#define H2_LANE_HWM (64u << 10)   /* bytes buffered per lane direction before back-pressure */
#define H2_OUT_HWM (64u << 10)    /* frames buffered for the client before we stop reading */
#define H2_WU_CREDIT_MAX 4096u     /* WINDOW_UPDATEs owed at most (for DATA frames sent) */

/* The attacks counted in weir_http2_attacks_total{listener,kind}. */
#define H2_ATTACK_LIST(X)                                   \
    X(H2_ATTACK_RAPID_RESET, "rapid_reset")                 \
    X(H2_ATTACK_CONTINUATION, "continuation_flood")         \
    X(H2_ATTACK_HEADER_LIST, "header_list")                 \
    X(H2_ATTACK_SETTINGS, "settings_flood")                 \
    X(H2_ATTACK_PING, "ping_flood")                         \
    X(H2_ATTACK_EMPTY, "empty_frames")                      \
    X(H2_ATTACK_CONTROL, "control_flood")                   \
    X(H2_ATTACK_STREAMS, "refused_streams")                 \
    X(H2_ATTACK_ZERO_WINDOW, "zero_window")                 \
    X(H2_ATTACK_PROTOCOL, "protocol_error")
#define H2_ATTACK_ENUM(e, s) e,
enum h2_attack { H2_ATTACK_LIST(H2_ATTACK_ENUM) H2_ATTACK_COUNT };
#undef H2_ATTACK_ENUM

/* A growable byte run: data is p[off..len). */
struct h2_bytes {
    char *p;
    size_t off, len, cap;
};

static inline size_t h2_bytes_size(const struct h2_bytes *b)
{
    return b->len - b->off;
}

static inline const char *h2_bytes_data(const struct h2_bytes *b)
{
    return b->p ? b->p + b->off : "";
}

/* Appends n bytes; 0 or -ENOMEM. */
int h2_bytes_add(struct h2_bytes *b, const void *d, size_t n);
/* Drops n bytes from the front. */
void h2_bytes_take(struct h2_bytes *b, size_t n);
static inline void h2_bytes_clear(struct h2_bytes *b)
{
    b->off = b->len = 0;
}
void h2_bytes_free(struct h2_bytes *b);

struct h2_conn;

/* One lane: an in-memory stream whose other end is a proxy session (its
 * struct sio reads lane.out and appends to lane.in; no fd, no syscall).
 * Carries one stream at a time (sid), then waits (idle) for the next. */
struct h2_lane {
    struct h2_conn *hc;
    struct h2_lane *prev, *next;   /* hc->lanes */
    struct h2_lane *idle_next;     /* hc->idle_lanes, while idle */
    ev_io io;                      /* never started: the session feeds it events (its writes, reads, end) */
    void *session;                 /* the proxy session on the other end (NULL once it ended) */
    int32_t sid;                   /* the stream carried, 0: idle */
    struct h2_bytes out;           /* request bytes for the proxy session */
    struct h2_bytes in;            /* answer bytes read, not yet parsed */
    struct h2_bytes body;          /* decoded answer body waiting for DATA frames */
    struct h2_bytes tail;          /* chunked answer: framing bytes since the last data (trailers) */
    struct h2_bytes method, path, authority, cookie, fields; /* the request head as it comes */
    struct h2_bytes trailers;      /* the request's trailer fields, "name: value\r\n" each */
    struct http_chunked chunk;
    uint64_t resp_left;            /* HTTP_BODY_LENGTH: body bytes still to come */
    uint64_t hdr_total;            /* decoded header list bytes of this block */
    size_t unconsumed;             /* request DATA bytes not yet given back to the window */
    ev_tstamp stall_since;         /* data pending on a zero window since, 0: not */
    uint8_t resp_kind;             /* enum http_body_kind */
    unsigned has_cl : 1, req_chunked : 1, req_done : 1, head_sent : 1, resp_done : 1;
    unsigned eof : 1, deferred : 1, reusable : 1, is_head : 1;
    unsigned peer_eof : 1;         /* the session shut its side or ended: lane.in is all there is */
    unsigned sess_rd_wait : 1;     /* the session found lane.out empty: wake it on new bytes */
    unsigned sess_wr_wait : 1;     /* the session found lane.in full: wake it when it drains */
    unsigned closing : 1;          /* h2_lane_close is ending the session: it sends no events */
    unsigned idle : 1;             /* on hc->idle_lanes */
    unsigned trailers_over : 1;    /* the request's trailers exceeded HTTP_TRAILERS_MAX: none sent */
};

/* Per-listener series, kept by the worker while it runs. */
struct h2_lst_metrics {
    char *name;
    struct metric_series *attacks, *streams;
};

/* The worker's HTTP/2 state (proxy_h2_slot). */
struct h2_worker {
    struct h2_conn *conns;
    struct h2_lst_metrics *m;
    size_t n_m;
};

struct h2_conn {
    struct h2_conn *prev, *next;   /* h2_worker.conns */
    struct wctx *wc;
    struct wlistener *wl;
    struct snapshot *snap;         /* referenced: lst lives in it */
    const struct cfg_listener *lst;
    const struct h2_cfg *cfg;
    struct sio sio;
    ev_io io;
    ev_timer tick;
    ev_prepare flush;              /* never started: h2_conn_schedule feeds it (one pump per turn) */
    nghttp2_session *ng;
    struct h2_bytes out;           /* frames for the client, not yet written */
    struct h2_lane *lanes;
    struct h2_lane *idle_lanes;    /* lanes kept for the next streams, last kept first */
    unsigned n_lanes, n_active;
    uint8_t readable, writable;
    unsigned closing : 1;          /* GOAWAY queued: write it, then close */
    unsigned dead : 1;             /* close now */
    unsigned in_pump : 1, draining : 1;
    ev_tstamp idle_since, closing_since, win_start;
    uint32_t win[H2_ATTACK_COUNT]; /* frames of each kind in the current second */
    uint32_t block_frames;         /* CONTINUATION frames of the header block being read */
    uint32_t wu_credit;            /* WINDOW_UPDATEs owed for DATA we sent: not counted as control */
    uint64_t block_bytes;
    struct metric_series *m_attacks, *m_streams;
    char client_ip[48];
};

/* h2_server.c */
/* Counts an attack and ends the connection with GOAWAY(ENHANCE_YOUR_CALM). */
void h2_conn_attack(struct h2_conn *hc, enum h2_attack kind);
/* Reads, writes and closes as the connection's state says (not from
 * inside nghttp2's callbacks). */
void h2_conn_pump(struct h2_conn *hc);
/* Pumps hc once the other work of this loop turn is done: the answers the
 * lanes gave on it go out in one write. */
void h2_conn_schedule(struct h2_conn *hc);
/* Makes hc->ng (options, callbacks, SETTINGS queued). 0 or -ENOMEM. */
int h2_conn_session(struct h2_conn *hc);

/* h2_bridge.c */
/* An idle lane of hc, or a new one (with a proxy session on its other
 * end), for stream sid. NULL when none can be made. */
struct h2_lane *h2_lane_get(struct h2_conn *hc, int32_t sid);
/* One field of the request's trailing HEADERS: kept for the last-chunk
 * when allowed as a trailer (http_trailers.h), within HTTP_TRAILERS_MAX.
 * 0, or an nghttp2 error code. */
int h2_lane_trailer(struct h2_lane *l, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen);
/* One header field of the request block; 0 or an nghttp2 error code. */
int h2_lane_header(struct h2_lane *l, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen);
/* The request head is complete (end_stream: no body); 0 or negative. */
int h2_lane_request_head(struct h2_lane *l, int end_stream);
/* Request body bytes and its end. */
int h2_lane_request_data(struct h2_lane *l, const uint8_t *data, size_t len);
int h2_lane_request_end(struct h2_lane *l);
/* The stream of l ended (error_code: its RST code, or 0): the lane is
 * kept for the next stream when its exchange is complete, else closed. */
void h2_lane_stream_closed(struct h2_lane *l, uint32_t error_code);
/* Closes l (resetting its stream, if any, with INTERNAL_ERROR when rst). */
void h2_lane_close(struct h2_lane *l, int rst);
/* nghttp2 data source of an answer body. */
ssize_t h2_lane_data_cb(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length, uint32_t *flags,
                        nghttp2_data_source *src, void *user);
/* Parses what lane.in holds (answer head, then body into lane.body) and
 * tells nghttp2. 0 or negative when the answer is bad. */
int h2_lane_process(struct h2_lane *l);
/* The trailer fields in a chunked body's tail p[0..n) (from the CRLF after
 * the last data through the last-chunk line, the fields and the empty
 * line) as nghttp2 fields pointing into p, names lowercased in place,
 * connection-specific ones left out. Returns how many (<= max). */
size_t h2_trailer_fields(char *p, size_t n, nghttp2_nv *nv, size_t max);
/* Makes s the session's end of lane l: reads take lane.out, writes append
 * to lane.in up to H2_LANE_HWM (then -EAGAIN), shutdown and close are the
 * session's end of stream; each wakes the lane through lane.io. */
void h2_lane_sio_init(struct h2_lane *l, struct sio *s);
/* Whether data is waiting for the client's window (for the stall check). */
int h2_lane_pending(const struct h2_lane *l);

#endif
