/* health_h2: see health_h2.h. */
#include "upstream/health_h2.h"

#include <nghttp2/nghttp2.h>
#include <string.h>

struct health_h2_state {
    int status;
    int ended;
    char *body;
    size_t body_cap, body_len;
};

static int health_h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                               size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags,
                               void *user)
{
    struct health_h2_state *st = user;
    if (f->hd.stream_id != 1 || nlen != 7 || memcmp(name, ":status", 7) != 0 || vlen != 3)
        return 0;
    int s = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    if (s >= 200) /* an interim 1xx is not the answer */
        st->status = s;
    return 0;
}

static int health_h2_on_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                             size_t len, void *user)
{
    struct health_h2_state *st = user;
    size_t room = st->body_cap - st->body_len;
    if (sid == 1 && room) {
        size_t n = len < room ? len : room;
        memcpy(st->body + st->body_len, data, n);
        st->body_len += n;
    }
    return 0;
}

static int health_h2_on_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *user)
{
    if (sid == 1)
        ((struct health_h2_state *)user)->ended = 1;
    return 0;
}

/* A client session (callbacks reporting into st, when not NULL) that sent
 * r's request. 0 or -1. */
static int health_h2_session(const struct health_h2_req *r, struct health_h2_state *st,
                             nghttp2_session **out)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_header_callback(cbs, health_h2_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, health_h2_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, health_h2_on_close);
    int rv = nghttp2_session_client_new(out, cbs, st);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        return -1;
    const char *scheme = r->tls ? "https" : "http";
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)r->method, 7, strlen(r->method), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)scheme, 7, strlen(scheme), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)r->authority, 10, strlen(r->authority),
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)r->path, 5, strlen(r->path), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"user-agent", (uint8_t *)"weir-health-check", 10, 17, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    if (nghttp2_submit_settings(*out, NGHTTP2_FLAG_NONE, iv, 1) != 0 ||
        nghttp2_submit_request(*out, NULL, nv, sizeof(nv) / sizeof(nv[0]), NULL, NULL) != 1) {
        nghttp2_session_del(*out);
        return -1;
    }
    return 0;
}

ssize_t health_h2_request(const struct health_h2_req *r, char *out, size_t cap)
{
    nghttp2_session *ng;
    if (health_h2_session(r, NULL, &ng) < 0)
        return -1;
    size_t len = 0;
    for (;;) {
        const uint8_t *d;
        ssize_t n = nghttp2_session_mem_send(ng, &d);
        if (n <= 0 || len + (size_t)n > cap) {
            nghttp2_session_del(ng);
            return n == 0 ? (ssize_t)len : -1;
        }
        memcpy(out + len, d, (size_t)n);
        len += (size_t)n;
    }
}

int health_h2_answer(const struct health_h2_req *r, const uint8_t *in, size_t n, int *status,
                     char *body, size_t body_cap, size_t *body_len)
{
    struct health_h2_state st = {.body = body, .body_cap = body_cap};
    nghttp2_session *ng;
    if (health_h2_session(r, &st, &ng) < 0)
        return -1;
    const uint8_t *d;
    while (nghttp2_session_mem_send(ng, &d) > 0) /* what the check sent */
        ;
    ssize_t rv = nghttp2_session_mem_recv(ng, in, n);
    nghttp2_session_del(ng);
    *status = st.status;
    *body_len = st.body_len;
    if (rv < 0)
        return -1;
    return st.ended;
}
