/* health_grpc: health_check type: grpc, the standard health-checking
 * protocol (grpc.health.v1.Health/Check) over HTTP/2.
 *
 *   connect ─> [TLS, ALPN h2] ─> nghttp2 client session
 *      out: preface, SETTINGS, HEADERS POST /grpc.health.v1.Health/Check,
 *           DATA [0][len:4][HealthCheckRequest{service}] END_STREAM
 *      in:  HEADERS :status 200 ─> DATA [0][len:4][HealthCheckResponse]
 *           ─> HEADERS (trailers) grpc-status: 0            END_STREAM
 *           or one HEADERS with grpc-status (Trailers-Only) END_STREAM
 *
 * Passes only on :status 200, grpc-status 0 and a response whose status is
 * SERVING; anything else (another serving status, NOT_FOUND for a service
 * the server does not know, a reset stream, a GOAWAY, the connection
 * ending first) fails, with the reason logged. h2c on a plain cluster
 * (prior knowledge, RFC 9113 3.3), TLS with ALPN h2 when the cluster has
 * tls:. The protobuf messages are two fields; they are written and read
 * by hand, bounded by what was received. Everything a server sends is
 * bounded per check: header bytes, the message, the bytes read; the
 * check's timeout bounds the time. Never blocks: the session is driven
 * with mem_send / mem_recv from the probe's readiness events. */
#include "upstream/health_grpc.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"
#include "upstream/health_internal.h"

#define HEALTH_GRPC_PATH "/grpc.health.v1.Health/Check"

_Static_assert(HEALTH_GRPC_REQ_MAX >= 5 + 3 + CFG_HC_SERVICE_MAX,
               "the request buffer holds the longest service the configuration takes");

struct health_grpc {
    nghttp2_session *session;
    int32_t stream_id;
    enum health_grpc_verdict verdict;
    int http_status;       /* :status, 0 before the head */
    int grpc_status;       /* grpc-status, -1 until seen */
    char grpc_message[48]; /* grpc-message, printable bytes only */
    size_t header_bytes, in_bytes;
    const uint8_t *out; /* what mem_send gave, not yet sent */
    size_t out_len;
    size_t req_len, req_sent;
    uint8_t req[HEALTH_GRPC_REQ_MAX];
    size_t msg_len;
    uint8_t msg[HEALTH_GRPC_MSG_MAX];
    char reason[160];
};

/* ---- protobuf, by hand (https://protobuf.dev/programming-guides/encoding/) ---- */

size_t health_grpc_encode_request(const char *service, uint8_t *out, size_t cap)
{
    size_t n = strlen(service);
    if (n > 16383)
        return 0;
    /* proto3 leaves a default (empty) string out: an empty message */
    size_t body = n ? 1 + (n < 128 ? 1 : 2) + n : 0;
    if (cap < 5 + body)
        return 0;
    out[0] = 0; /* not compressed */
    out[1] = (uint8_t)(body >> 24);
    out[2] = (uint8_t)(body >> 16);
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    size_t i = 5;
    if (n) {
        out[i++] = (1 << 3) | 2; /* field 1, length-delimited */
        if (n < 128) {
            out[i++] = (uint8_t)n;
        } else {
            out[i++] = (uint8_t)(0x80 | (n & 0x7f));
            out[i++] = (uint8_t)(n >> 7);
        }
        memcpy(out + i, service, n);
        i += n;
    }
    return i;
}

/* A varint at msg[*i..len): 0 with *v, or -1 (truncated, over 10 bytes). */
static int health_grpc_varint(const uint8_t *msg, size_t len, size_t *i, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*i >= len)
            return -1;
        uint8_t b = msg[(*i)++];
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int health_grpc_decode_response(const uint8_t *msg, size_t len, uint64_t *status)
{
    *status = HEALTH_GRPC_UNKNOWN;
    size_t i = 0;
    while (i < len) {
        uint64_t key, v;
        if (health_grpc_varint(msg, len, &i, &key) < 0 || key >> 3 == 0 || key >> 3 > 0x1fffffff)
            return -1;
        switch (key & 7) {
        case 0: /* varint */
            if (health_grpc_varint(msg, len, &i, &v) < 0)
                return -1;
            if (key >> 3 == 1)
                *status = v;
            break;
        case 1: /* 64-bit */
            if (len - i < 8)
                return -1;
            i += 8;
            break;
        case 2: /* length-delimited */
            if (health_grpc_varint(msg, len, &i, &v) < 0 || v > len - i)
                return -1;
            i += (size_t)v;
            break;
        case 5: /* 32-bit */
            if (len - i < 4)
                return -1;
            i += 4;
            break;
        default: /* groups (3, 4) are not in proto3; 6 and 7 do not exist */
            return -1;
        }
    }
    return 0;
}

/* ---- the HTTP/2 exchange ---- */

static const char *const health_grpc_status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *const health_grpc_serving_names[] = {
    "UNKNOWN",
    "SERVING",
    "NOT_SERVING",
    "SERVICE_UNKNOWN",
};

__attribute__((format(printf, 2, 3))) static void health_grpc_fail(struct health_grpc *g,
                                                                   const char *fmt, ...)
{
    if (g->verdict != HEALTH_GRPC_PENDING)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->reason, sizeof(g->reason), fmt, ap);
    va_end(ap);
    g->verdict = HEALTH_GRPC_FAIL;
}

/* The server ended its side of the stream: judge what came. */
static void health_grpc_judge(struct health_grpc *g)
{
    if (g->http_status != 200) {
        health_grpc_fail(g, "HTTP status %d", g->http_status);
        return;
    }
    if (g->grpc_status < 0) {
        health_grpc_fail(g, "no grpc-status");
        return;
    }
    if (g->grpc_status != 0) {
        int n = (int)(sizeof(health_grpc_status_names) / sizeof(health_grpc_status_names[0]));
        health_grpc_fail(g, "grpc-status %d (%s)%s%s", g->grpc_status,
                         g->grpc_status < n ? health_grpc_status_names[g->grpc_status] : "?",
                         g->grpc_message[0] ? ": " : "", g->grpc_message);
        return;
    }
    uint32_t len = g->msg_len >= 5 ? (uint32_t)g->msg[1] << 24 | (uint32_t)g->msg[2] << 16 |
                                         (uint32_t)g->msg[3] << 8 | g->msg[4]
                                   : 0;
    if (g->msg_len < 5 || len != g->msg_len - 5) {
        health_grpc_fail(g, "not one gRPC message in the response (%zu bytes)", g->msg_len);
        return;
    }
    if (g->msg[0] != 0) {
        health_grpc_fail(g, "compressed response (none was asked for)");
        return;
    }
    uint64_t st;
    if (health_grpc_decode_response(g->msg + 5, len, &st) < 0) {
        health_grpc_fail(g, "malformed HealthCheckResponse");
        return;
    }
    if (st != HEALTH_GRPC_SERVING) {
        health_grpc_fail(g, "serving status %s",
                         st < 4 ? health_grpc_serving_names[st] : "out of range");
        return;
    }
    g->verdict = HEALTH_GRPC_PASS;
    snprintf(g->reason, sizeof(g->reason), "SERVING");
}

static int health_grpc_on_header(nghttp2_session *s, const nghttp2_frame *frame,
                                 const uint8_t *name, size_t namelen, const uint8_t *value,
                                 size_t valuelen, uint8_t flags, void *user_data)
{
    struct health_grpc *g = user_data;
    if (frame->hd.stream_id != g->stream_id)
        return 0;
    g->header_bytes += namelen + valuelen;
    if (g->header_bytes > HEALTH_GRPC_HEADERS_MAX) {
        health_grpc_fail(g, "response headers over %d bytes", HEALTH_GRPC_HEADERS_MAX);
        return 0;
    }
    int digits = 1;
    int v = 0;
    for (size_t i = 0; i < valuelen && i < 6; i++) {
        if (value[i] < '0' || value[i] > '9')
            digits = 0;
        else
            v = v * 10 + (value[i] - '0');
    }
    digits = digits && valuelen > 0 && valuelen < 6;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        g->http_status = digits ? v : -1;
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        g->grpc_status = digits ? v : 99999; /* unparsable: not OK */
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        size_t n = 0;
        for (size_t i = 0; i < valuelen && n + 1 < sizeof(g->grpc_message); i++)
            if (value[i] >= ' ' && value[i] < 0x7f)
                g->grpc_message[n++] = (char)value[i];
        g->grpc_message[n] = 0;
    }
    return 0;
}

static int health_grpc_on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                               const uint8_t *data, size_t len, void *user_data)
{
    struct health_grpc *g = user_data;
    if (stream_id != g->stream_id)
        return 0;
    if (len > sizeof(g->msg) - g->msg_len) {
        health_grpc_fail(g, "response message over %d bytes", HEALTH_GRPC_MSG_MAX);
        return 0;
    }
    memcpy(g->msg + g->msg_len, data, len);
    g->msg_len += len;
    return 0;
}

static int health_grpc_on_frame(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
    struct health_grpc *g = user_data;
    if (frame->hd.stream_id == g->stream_id && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA))
        health_grpc_judge(g);
    else if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.last_stream_id < g->stream_id)
        health_grpc_fail(g, "GOAWAY before the answer (code %u)", frame->goaway.error_code);
    return 0;
}

static int health_grpc_on_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code,
                                void *user_data)
{
    struct health_grpc *g = user_data;
    if (stream_id == g->stream_id)
        health_grpc_fail(g, "stream closed before the answer (%s)",
                         nghttp2_http2_strerror(error_code));
    return 0;
}

static ssize_t health_grpc_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf,
                                     size_t length, uint32_t *data_flags,
                                     nghttp2_data_source *source, void *user_data)
{
    struct health_grpc *g = user_data;
    size_t n = g->req_len - g->req_sent;
    if (n > length)
        n = length;
    memcpy(buf, g->req + g->req_sent, n);
    g->req_sent += n;
    if (g->req_sent == g->req_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define HEALTH_GRPC_NV(n, v, vlen)                                                                 \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NO_COPY_NAME        \
    }

static int health_grpc_submit(struct health_grpc *g, const char *authority, int https,
                              uint64_t timeout_ms)
{
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HEALTH_GRPC_HEADERS_MAX},
    };
    if (nghttp2_submit_settings(g->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0)
        return -ENOMEM;
    char tmo[24];
    /* grpc-timeout: at most 8 digits (gRPC over HTTP/2, "Timeout") */
    int tlen = snprintf(tmo, sizeof(tmo), "%llum",
                        (unsigned long long)(timeout_ms > 99999999 ? 99999999 : timeout_ms));
    const char *scheme = https ? "https" : "http";
    nghttp2_nv nva[] = {
        HEALTH_GRPC_NV(":method", "POST", 4),
        HEALTH_GRPC_NV(":scheme", scheme, strlen(scheme)),
        HEALTH_GRPC_NV(":path", HEALTH_GRPC_PATH, sizeof(HEALTH_GRPC_PATH) - 1),
        HEALTH_GRPC_NV(":authority", authority, strlen(authority)),
        HEALTH_GRPC_NV("content-type", "application/grpc", 16),
        HEALTH_GRPC_NV("te", "trailers", 8),
        HEALTH_GRPC_NV("user-agent", "weir-health-check", 17),
        HEALTH_GRPC_NV("grpc-timeout", tmo, (size_t)tlen),
    };
    size_t nv = sizeof(nva) / sizeof(nva[0]) - (timeout_ms ? 0 : 1);
    nghttp2_data_provider body = {.read_callback = health_grpc_read_body};
    g->stream_id = nghttp2_submit_request(g->session, NULL, nva, nv, &body, NULL);
    return g->stream_id < 0 ? -ENOMEM : 0;
}

struct health_grpc *health_grpc_new(const char *service, const char *authority, int https,
                                    uint64_t timeout_ms)
{
    struct health_grpc *g = calloc(1, sizeof(*g));
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    if (!g)
        return NULL;
    g->grpc_status = -1;
    g->req_len = health_grpc_encode_request(service, g->req, sizeof(g->req));
    if (!g->req_len)
        goto fail;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail;
    if (nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_header_callback(cbs, health_grpc_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, health_grpc_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, health_grpc_on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, health_grpc_on_close);
    /* a server flooding SETTINGS or PING gets its acks queued only so far */
    nghttp2_option_set_max_outbound_ack(opt, 100);
    nghttp2_option_set_max_settings(opt, 32);
    if (nghttp2_session_client_new2(&g->session, cbs, g, opt) != 0)
        goto fail;
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (health_grpc_submit(g, authority, https, timeout_ms) < 0) {
        health_grpc_free(g);
        return NULL;
    }
    return g;
fail:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    free(g);
    return NULL;
}

void health_grpc_free(struct health_grpc *g)
{
    if (!g)
        return;
    nghttp2_session_del(g->session);
    free(g);
}

size_t health_grpc_output(struct health_grpc *g, const uint8_t **out)
{
    if (g->verdict != HEALTH_GRPC_PENDING)
        return 0;
    if (!g->out_len) {
        ssize_t n = nghttp2_session_mem_send(g->session, &g->out);
        if (n < 0) {
            health_grpc_fail(g, "HTTP/2: %s", nghttp2_strerror((int)n));
            return 0;
        }
        g->out_len = (size_t)n;
        /* a connection error (RFC 9113 5.4.1): nghttp2 queued a GOAWAY of
         * its own, and once it is taken, reads no more */
        if (!nghttp2_session_want_read(g->session)) {
            health_grpc_fail(g, "not an HTTP/2 server, or an HTTP/2 connection error");
            return 0;
        }
    }
    *out = g->out;
    return g->out_len;
}

void health_grpc_consumed(struct health_grpc *g, size_t n)
{
    if (n > g->out_len)
        n = g->out_len;
    g->out += n;
    g->out_len -= n;
}

enum health_grpc_verdict health_grpc_input(struct health_grpc *g, const uint8_t *in, size_t len)
{
    if (g->verdict != HEALTH_GRPC_PENDING)
        return g->verdict;
    if (len == 0) {
        health_grpc_fail(g, "connection closed before the answer");
        return g->verdict;
    }
    g->in_bytes += len;
    if (g->in_bytes > HEALTH_GRPC_IN_MAX) {
        health_grpc_fail(g, "over %d bytes received without an answer", HEALTH_GRPC_IN_MAX);
        return g->verdict;
    }
    ssize_t n = nghttp2_session_mem_recv(g->session, in, len);
    if (n < 0)
        health_grpc_fail(g, "HTTP/2: %s", nghttp2_strerror((int)n));
    return g->verdict;
}

enum health_grpc_verdict health_grpc_verdict(const struct health_grpc *g, const char **reason)
{
    if (reason)
        *reason = g->reason;
    return g->verdict;
}

/* ---- the check's row (upstream/health.c) ---- */

#define HEALTH_GRPC_ROUNDS 64 /* reads and writes per readiness event, then back to the loop */

/* The handshake (TLS: with ALPN h2 chosen), then the session. Returns the
 * session, or NULL when waiting or after a verdict. */
static struct health_grpc *health_grpc_open(struct health_probe *p)
{
    int r = tls_handshake(&p->sio);
    if (r == -EAGAIN) {
        health_watch(p, p->sio.rd_want);
        return NULL;
    }
    if (r < 0) {
        health_verdict(p, 0, "TLS handshake failed");
        return NULL;
    }
    if (p->tls && !tls_alpn_is_h2(&p->sio)) {
        health_verdict(p, 0, "the server did not choose h2 in ALPN");
        return NULL;
    }
    const struct cfg_health_check *c = p->cfg;
    p->state =
        health_grpc_new(c->service ? c->service : "", c->authority ? c->authority : p->ep->name,
                        p->tls != NULL, c->timeout_ms);
    if (!p->state)
        health_verdict(p, 0, "out of memory");
    return p->state;
}

/* Ends the check with g's verdict (its reason copied: the verdict frees g). */
static void health_grpc_done(struct health_probe *p, struct health_grpc *g)
{
    const char *why;
    char reason[sizeof(g->reason)];
    int ok = health_grpc_verdict(g, &why) == HEALTH_GRPC_PASS;
    snprintf(reason, sizeof(reason), "%s", why);
    health_verdict(p, ok, reason);
}

static void health_grpc_step(struct health_probe *p)
{
    struct health_grpc *g = p->state ? p->state : health_grpc_open(p);
    if (!g)
        return;
    for (int round = 0; round < HEALTH_GRPC_ROUNDS; round++) {
        const uint8_t *out;
        int write_blocked = 0;
        size_t n = health_grpc_output(g, &out);
        if (n) {
            ssize_t w = sio_write(&p->sio, out, n);
            if (w > 0) {
                health_grpc_consumed(g, (size_t)w);
                continue;
            }
            if (w != -EAGAIN) {
                health_verdict(p, 0, strerror(w ? (int)-w : EPIPE));
                return;
            }
            write_blocked = 1;
        }
        if (health_grpc_verdict(g, NULL) != HEALTH_GRPC_PENDING) {
            health_grpc_done(p, g);
            return;
        }
        ssize_t r = sio_read(&p->sio, p->buf, HEALTH_READ_MAX);
        if (r == -EAGAIN) {
            health_watch(p, p->sio.rd_want | (write_blocked ? p->sio.wr_want : 0));
            return;
        }
        if (r < 0) {
            health_verdict(p, 0, strerror((int)-r));
            return;
        }
        if (health_grpc_input(g, (const uint8_t *)p->buf, (size_t)r) != HEALTH_GRPC_PENDING) {
            health_grpc_done(p, g);
            return;
        }
    }
    health_watch(p, EV_READ | EV_WRITE); /* more to do: after the loop's other events */
}

static void health_grpc_reset(struct health_probe *p)
{
    health_grpc_free(p->state);
    p->state = NULL;
}

static const unsigned char health_grpc_alpn[] = {2, 'h', '2'};

const struct health_type health_type_grpc = {
    .alpn = health_grpc_alpn,
    .alpn_len = sizeof(health_grpc_alpn),
    .step = health_grpc_step,
    .reset = health_grpc_reset,
};
