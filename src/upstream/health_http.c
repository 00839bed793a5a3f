/* health_http: the http and tcp rows of the health check types
 * (health.c drives them). An HTTP check sends its request (inside TLS when
 * the cluster has tls:) and passes when the status is in expect_status
 * and, if set, expect_body occurs in the first HEALTH_READ_MAX bytes of
 * the reply; it judges as soon as it can. The endpoints of a cluster with
 * protocol h2/h2c get the same check as one HTTP/2 request (stream 1 of a
 * fresh connection; health_h2.c makes and reads the bytes), with ALPN h2
 * over TLS. A tcp check passes once
 * connected (and, with TLS, once the handshake succeeded). */
#include "upstream/health_internal.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tls/tls.h"
#include "upstream/health_h2.h"

/* Content-Length of the head in buf (NUL-terminated), or -1. */
static long health_content_length(const char *head)
{
    for (const char *p = strchr(head, '\n'); p; p = strchr(p + 1, '\n'))
        if (strncasecmp(p + 1, "content-length:", 15) == 0)
            return strtol(p + 16, NULL, 10);
    return -1;
}

/* Judges the reply read so far, as soon as it can: the status as soon as
 * the head is in, the body text as soon as it shows up or the announced
 * body (or the connection) ended. Returns 1 once a verdict was given. */
static int health_judge_http(struct health_probe *p, int eof)
{
    p->buf[p->got] = 0;
    int full = eof || p->got == HEALTH_READ_MAX;
    char *hend = strstr(p->buf, "\r\n\r\n");
    if (!hend) {
        if (full)
            health_verdict(p, 0, "incomplete response head");
        return full;
    }
    int status = 0;
    if (sscanf(p->buf, "HTTP/1.%*1[01] %3d", &status) != 1) {
        health_verdict(p, 0, "not an HTTP/1.x status line");
        return 1;
    }
    if (!cfg_status_in(&p->cfg->expect_status, status)) {
        char why[64];
        snprintf(why, sizeof(why), "status %d", status);
        health_verdict(p, 0, why);
        return 1;
    }
    const char *body = hend + 4;
    if (!p->cfg->expect_body || strstr(body, p->cfg->expect_body)) {
        health_verdict(p, 1, "ok");
        return 1;
    }
    long cl = health_content_length(p->buf);
    if (full || (cl >= 0 && (long)(p->got - (size_t)(body - p->buf)) >= cl)) {
        health_verdict(p, 0, "expected body text not found");
        return 1;
    }
    return 0;
}

/* type: tcp is done once connected (and, with TLS, once the handshake
 * succeeded). */
static void health_tcp_step(struct health_probe *p)
{
    int r = tls_handshake(&p->sio);
    if (r == -EAGAIN)
        health_watch(p, p->sio.rd_want);
    else
        health_verdict(p, r == 0, r == 0 ? "connected" : "TLS handshake failed");
}

/* Sends the HTTP request (the TLS handshake on the way). */
static void health_http_send(struct health_probe *p)
{
    while (p->sent < p->req_len) {
        ssize_t n = sio_write(&p->sio, p->req + p->sent, p->req_len - p->sent);
        if (n == -EAGAIN) {
            health_watch(p, p->sio.wr_want);
            return;
        }
        if (n <= 0) {
            health_verdict(p, 0,
                           n == -EPROTO ? "TLS handshake failed" : strerror(n ? (int)-n : EPIPE));
            return;
        }
        p->sent += (size_t)n;
    }
    p->phase = HP_READING;
    health_watch(p, EV_READ);
}

/* The answer of HTTP/2 endpoints so far, judged by the rules of
 * health_judge_http: the answer to stream 1. Returns 1 once a verdict was
 * given. */
static int health_judge_h2(struct health_probe *p, int eof)
{
    int full = eof || p->got == HEALTH_READ_MAX;
    if (p->tls && !tls_alpn_is_h2(&p->sio)) {
        health_verdict(p, 0, "the server did not choose h2 in ALPN");
        return 1;
    }
    static char body[HEALTH_READ_MAX + 1]; /* the main thread's only */
    const struct cfg_health_check *c = p->cfg;
    struct health_h2_req r = { c->method, c->path, c->host ? c->host : p->ep->name, p->tls != NULL };
    int status;
    size_t blen;
    int ended = health_h2_answer(&r, (const uint8_t *)p->buf, p->got, &status, body, HEALTH_READ_MAX, &blen);
    if (ended < 0) {
        health_verdict(p, 0, "HTTP/2 protocol error");
        return 1;
    }
    if (!status) {
        if (full || ended)
            health_verdict(p, 0, ended ? "stream reset before an answer" : "incomplete HTTP/2 answer");
        return full || ended;
    }
    if (!cfg_status_in(&c->expect_status, status)) {
        char why[64];
        snprintf(why, sizeof(why), "status %d", status);
        health_verdict(p, 0, why);
        return 1;
    }
    body[blen] = 0;
    if (!c->expect_body || strstr(body, c->expect_body)) {
        health_verdict(p, 1, "ok");
        return 1;
    }
    if (full || ended) {
        health_verdict(p, 0, "expected body text not found");
        return 1;
    }
    return 0;
}

/* Sends the request, then reads the reply and judges it with judge. */
static void health_http_exchange(struct health_probe *p, int (*judge)(struct health_probe *, int))
{
    if (p->phase == HP_SENDING) {
        health_http_send(p);
        return;
    }
    for (;;) { /* a TLS record may hold more than the socket shows */
        ssize_t n = sio_read(&p->sio, p->buf + p->got, HEALTH_READ_MAX - p->got);
        if (n == -EAGAIN) {
            health_watch(p, p->sio.rd_want);
            return;
        }
        if (n < 0) {
            health_verdict(p, 0, strerror((int)-n));
            return;
        }
        p->got += (size_t)n;
        if (judge(p, n == 0) || n == 0)
            return;
    }
}

static void health_http_step(struct health_probe *p)
{
    health_http_exchange(p, health_judge_http);
}

static void health_http2_step(struct health_probe *p)
{
    health_http_exchange(p, health_judge_h2);
}

static void health_http_prepare(struct health_probe *p)
{
    const struct cfg_health_check *c = p->cfg;
    int n = snprintf(p->req, sizeof(p->req),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weir-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     c->method, c->path, c->host ? c->host : p->ep->name);
    p->req_len = n > 0 && (size_t)n < sizeof(p->req) ? (size_t)n : 0;
}

const struct health_type health_type_http = {
    .prepare = health_http_prepare,
    .step = health_http_step,
};

/* The check's bytes: the client preface, SETTINGS and stream 1's HEADERS. */
static void health_http2_prepare(struct health_probe *p)
{
    const struct cfg_health_check *c = p->cfg;
    struct health_h2_req r = { c->method, c->path, c->host ? c->host : p->ep->name, p->tls != NULL };
    ssize_t n = health_h2_request(&r, p->req, sizeof(p->req));
    p->req_len = n > 0 ? (size_t)n : 0;
}

static const unsigned char health_alpn_h2[] = { 2, 'h', '2' };

const struct health_type health_type_http2 = {
    .alpn = health_alpn_h2,
    .alpn_len = sizeof(health_alpn_h2),
    .prepare = health_http2_prepare,
    .step = health_http2_step,
};

const struct health_type health_type_tcp = {
    .step = health_tcp_step,
};
