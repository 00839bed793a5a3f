/* sqs: the SQS listener's connections, one state machine each, on the
 * worker that accepted them.
 *
 *            bytes            whole request            reply built
 *   READING ------> parse ---------------> dispatch -----------------> WRITING --> READING
 *      ^    (http_parser.c)    |   |                                     ^
 *      |                       |   `-- send/delete under fsync always: SYNCING (one
 *      |                       |       fdatasync per loop turn for every such reply
 *      |                       |       of the worker, in the ev_prepare callback)
 *      |                       |-- a queue kept in Redis: CALLING until the store
 *      |                       |   answers (qredis.c), then as below
 *      |                       `-- ReceiveMessage with nothing to take: WAITING
 *      |                           (parked on the queue; woken by a send on any
 *      |                           thread through the worker's ev_async, or by the
 *      |                           deadline timer) --> receive again --> WRITING
 *
 * Requests are HTTP/1.1 POSTs with a Content-Length body (the SDKs send
 * no other); the head goes through the proxy's parser with the listener's
 * limits. One request at a time per connection: pipelined bytes wait in
 * `in` until the reply is written.
 *
 * The broker (queue.c) belongs to the snapshots: the first snapshot with a
 * data_dir opens it, later ones share it, the last one closes it; every
 * connection holds its snapshot, so the broker outlives them all.
 *
 * Never: free a connection parked on a queue before queue_unwait(); write
 * a reply to a send before its record is as durable as the queue asks. */
#include "queue/sqs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "queue/push.h"
#include "queue/queue_metrics.h"
#include "queue/sqs_internal.h"
#include "queue/topic.h"
#include "server/server.h"

#define SQS_READ_CHUNK 65536

#define SQS_ERR_INFO(e, type, code, status) [e] = { type, code, status },
const struct sqs_error_info sqs_errors[SQS_ERR_COUNT] = { SQS_ERROR_LIST(SQS_ERR_INFO) };
#undef SQS_ERR_INFO

/* ---- the broker, shared by the snapshots ---- */

static pthread_mutex_t sqs_broker_mu = PTHREAD_MUTEX_INITIALIZER;
static struct qbroker *sqs_the_broker;
static unsigned sqs_broker_refs;

int sqs_snapshot_init(struct snapshot *snap)
{
    const struct cfg *cfg = snap->cfg;
    char err[512];
    int rc = 0;

    if (cfg->data_dir == NULL)
        return 0;
    pthread_mutex_lock(&sqs_broker_mu);
    if (sqs_the_broker == NULL) {
        rc = qbroker_open(cfg->data_dir, &sqs_the_broker, err, sizeof(err));
    } else if (strcmp(sqs_the_broker->dir, cfg->data_dir) != 0) {
        log_warn("queues: data_dir changed to %s; weir keeps using %s until it restarts",
                 cfg->data_dir, sqs_the_broker->dir);
    }
    if (rc == 0 && (rc = qbroker_configure(sqs_the_broker, cfg, err, sizeof(err))) == 0)
        rc = topic_configure(sqs_the_broker, cfg, err, sizeof(err));
    if (rc < 0 && sqs_the_broker != NULL &&
        sqs_broker_refs == 0) {
        qbroker_close(sqs_the_broker);
        sqs_the_broker = NULL;
    }
    if (rc == 0 && sqs_broker_refs == 0 && queue_metrics_attach(sqs_the_broker) < 0)
        log_warn("queues: out of memory: weir_queue_messages will not be exposed");
    if (rc == 0) {
        sqs_broker_refs++;
        snap->proto[CFG_PROTOCOL_SQS] = sqs_the_broker;
    }
    pthread_mutex_unlock(&sqs_broker_mu);
    if (rc < 0)
        log_error("queues: %s", err);
    return rc < 0 ? -1 : 0;
}

void sqs_snapshot_free(struct snapshot *snap)
{
    if (snap->proto[CFG_PROTOCOL_SQS] == NULL)
        return;
    pthread_mutex_lock(&sqs_broker_mu);
    if (--sqs_broker_refs == 0) {
        queue_metrics_detach(sqs_the_broker);
        qbroker_close(sqs_the_broker);
        sqs_the_broker = NULL;
    }
    pthread_mutex_unlock(&sqs_broker_mu);
    snap->proto[CFG_PROTOCOL_SQS] = NULL;
}

struct qbroker *sqs_snapshot_broker(const struct snapshot *snap)
{
    return snap->proto[CFG_PROTOCOL_SQS];
}

struct qbroker *sqs_broker(const struct sqs_conn *c)
{
    return sqs_snapshot_broker(c->snap);
}

/* ---- connections: lifetime ---- */

static void sqs_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void sqs_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void sqs_process(struct sqs_conn *c);

void sqs_unpark(struct sqs_conn *c)
{
    struct sqs_worker *sw = c->sw;
    if (c->wait_q == NULL)
        return;
    queue_unwait(c->wait_q, &c->waiter);
    pthread_mutex_lock(&sw->mu);
    if (c->woken) {
        struct sqs_conn **pp = &sw->woken;
        while (*pp != c)
            pp = &(*pp)->woken_next;
        *pp = c->woken_next;
        c->woken = 0;
    }
    pthread_mutex_unlock(&sw->mu);
    queue_put(c->wait_q);
    c->wait_q = NULL;
    json_decref(c->wait_req);
    c->wait_req = NULL;
}

static void sqs_unsync(struct sqs_conn *c)
{
    struct sqs_conn **pp = &c->sw->syncing;
    while (*pp && *pp != c)
        pp = &(*pp)->sync_next;
    if (*pp)
        *pp = c->sync_next;
    json_decref(c->pending);
    c->pending = NULL;
}

static void sqs_close(struct sqs_conn *c)
{
    struct sqs_worker *sw = c->sw;
    sqs_call_end(c);
    sqs_unpark(c);
    queue_put(c->sent_q);
    if (c->state == SQS_SYNCING)
        sqs_unsync(c);
    ev_io_stop(sw->loop, &c->io);
    ev_timer_stop(sw->loop, &c->timer);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        sw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->in);
    free(c->out);
    server_conn_close(sw->wc, c->wl);
    snapshot_unref(c->snap);
    free(c);
}

static void sqs_timer_set(struct sqs_conn *c, double seconds)
{
    ev_timer_stop(c->sw->loop, &c->timer);
    ev_timer_set(&c->timer, seconds, 0);
    ev_timer_start(c->sw->loop, &c->timer);
}

void sqs_accept(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer)
{
    struct sqs_worker *sw = wc->proto[CFG_PROTOCOL_SQS];
    struct sqs_conn *c = sw ? calloc(1, sizeof(*c)) : NULL;
    if (c == NULL || sqs_snapshot_broker(wc->snap) == NULL) {
        free(c);
        close(fd);
        return;
    }
    c->sw = sw;
    c->wl = wl;
    c->fd = fd;
    c->snap = wc->snap;
    snapshot_ref(c->snap);
    c->lst = &wc->snap->cfg->listeners[wl->index];
    c->state = SQS_READING;
    c->next = sw->conns;
    if (sw->conns)
        sw->conns->prev = c;
    sw->conns = c;
    server_conn_open(wc, wl);
    ev_io_init(&c->io, sqs_io_cb, fd, EV_READ);
    c->io.data = c;
    ev_init(&c->timer, sqs_timer_cb);
    c->timer.data = c;
    ev_io_start(sw->loop, &c->io);
    sqs_timer_set(c, (double)c->lst->header_timeout_ms / 1000.0);
}

/* ---- replies ---- */

static int sqs_out_reserve(struct sqs_conn *c, size_t n)
{
    char *p = realloc(c->out, n);
    if (p == NULL)
        return -ENOMEM;
    c->out = p;
    return 0;
}

/* Writes the whole reply (head + body) into c->out and starts writing. */
static void sqs_send_raw(struct sqs_conn *c, int status, const char *query_error,
                         const char *body, size_t body_len)
{
    char head[512];
    char qe[160] = "";
    if (c->sent_q) { /* a send's answer: it is durable now (or failed) */
        if (status == 200)
            queue_metrics_send_done(c->sent_q, c->start_ns);
        queue_put(c->sent_q);
        c->sent_q = NULL;
    }
    if (query_error)
        snprintf(qe, sizeof(qe), "x-amzn-query-error: %s;%s\r\n", query_error,
                 status >= 500 ? "Receiver" : "Sender");
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nx-amzn-RequestId: %08llx-0000-4000-8000-%012llx\r\n"
                     "Content-Type: application/x-amz-json-1.0\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, http_status_reason(status),
                     (unsigned long long)(uintptr_t)c->sw & 0xffffffffULL,
                     (unsigned long long)++c->sw->request_seq, body_len, qe,
                     c->keep_alive && !c->closing ? "" : "Connection: close\r\n");
    if (sqs_out_reserve(c, (size_t)n + body_len) < 0) {
        c->closing = 1;
        c->out_len = c->out_off = 0;
    } else {
        memcpy(c->out, head, (size_t)n);
        memcpy(c->out + n, body, body_len);
        c->out_len = (size_t)n + body_len;
        c->out_off = 0;
    }
    c->state = SQS_WRITING;
    ev_timer_stop(c->sw->loop, &c->timer);
    ev_io_stop(c->sw->loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_READ | EV_WRITE);
    ev_io_start(c->sw->loop, &c->io);
}

void sqs_reply(struct sqs_conn *c, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (body && text == NULL) {
        sqs_reply_error(c, SQS_ERR_INTERNAL, "out of memory");
        return;
    }
    sqs_send_raw(c, 200, NULL, text ? text : "{}", text ? strlen(text) : 2);
    free(text);
}

void sqs_reply_error(struct sqs_conn *c, enum sqs_error e, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char type[128];
    snprintf(type, sizeof(type), "com.amazonaws.sqs#%s", sqs_errors[e].type);
    json_t *j = json_pack("{s:s, s:s}", "__type", type, "message", msg);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL) {
        c->closing = 1;
        sqs_send_raw(c, 500, "InternalFailure", "{}", 2);
        return;
    }
    sqs_send_raw(c, sqs_errors[e].status, sqs_errors[e].code, text, strlen(text));
    free(text);
}

void sqs_reply_errno(struct sqs_conn *c, int rc)
{
    switch (rc) {
    case -ENOENT:
        sqs_reply_error(c, SQS_ERR_NO_QUEUE, "The specified queue does not exist.");
        return;
    case -ENOSPC:
    case -EDQUOT:
        sqs_reply_error(c, SQS_ERR_UNAVAILABLE, "weir: the disk holding the queue log is full; "
                        "nothing was stored");
        return;
    case -EIO:
        sqs_reply_error(c, SQS_ERR_UNAVAILABLE, "weir: the queue log failed (I/O error); see "
                        "weir's log");
        return;
    case -EAGAIN:
        sqs_reply_error(c, SQS_ERR_UNAVAILABLE, "weir: the queue's Redis store is unavailable "
                        "or did not answer in time; a send may not have been stored");
        return;
    default:
        sqs_reply_error(c, SQS_ERR_INTERNAL, "weir: %s", strerror(-rc));
    }
}

void sqs_reply_durable(struct sqs_conn *c, struct queue *q, uint64_t pos, json_t *body)
{
    sqs_reply_synced(c, q->attrs.fsync == QUEUE_FSYNC_ALWAYS ? pos : 0, body);
}

void sqs_reply_synced(struct sqs_conn *c, uint64_t pos, json_t *body)
{
    if (pos == 0) {
        sqs_reply(c, body);
        return;
    }
    if (c->state == SQS_SYNCING) { /* a batch: one sync for the highest position */
        if (pos > c->sync_pos)
            c->sync_pos = pos;
        json_decref(c->pending);
        c->pending = body;
        return;
    }
    c->state = SQS_SYNCING;
    c->pending = body;
    c->sync_pos = pos;
    c->sync_next = c->sw->syncing;
    c->sw->syncing = c;
}

void sqs_reply_sent(struct sqs_conn *c, struct queue *q, uint64_t pos, json_t *body)
{
    if (c->sent_q == NULL) {
        queue_get(q);
        c->sent_q = q;
    }
    sqs_reply_durable(c, q, pos, body);
}

/* Before the loop sleeps: one fdatasync for every reply of this worker
 * waiting for one, then the replies. */
static void sqs_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct sqs_worker *sw = w->data;
    struct sqs_conn *list = sw->syncing, *c, *next;
    uint64_t pos = 0;
    if (list == NULL)
        return;
    sw->syncing = NULL;
    for (c = list; c; c = c->sync_next)
        if (c->sync_pos > pos)
            pos = c->sync_pos;
    int rc = qlog_sync(sqs_broker(list)->log, pos);
    for (c = list; c; c = next) {
        next = c->sync_next;
        json_t *body = c->pending;
        c->pending = NULL;
        c->state = SQS_READING;
        if (rc < 0) {
            json_decref(body);
            sqs_reply_errno(c, rc);
        } else {
            sqs_reply(c, body);
        }
    }
}

/* ---- long polls ---- */

static void sqs_waiter_wake(struct queue_waiter *w)
{
    struct sqs_conn *c = (struct sqs_conn *)((char *)w - offsetof(struct sqs_conn, waiter));
    struct sqs_worker *sw = c->sw;
    pthread_mutex_lock(&sw->mu);
    if (!c->woken) {
        c->woken = 1;
        c->woken_next = sw->woken;
        sw->woken = c;
    }
    pthread_mutex_unlock(&sw->mu);
    ev_async_send(sw->loop, &sw->async);
}

void sqs_park(struct sqs_conn *c, struct queue *q, json_t *req, double wait_s)
{
    queue_get(q);
    c->wait_q = q;
    c->wait_req = json_incref(req);
    c->waiter.wake = sqs_waiter_wake;
    c->state = SQS_WAITING;
    sqs_timer_set(c, wait_s);
    int rc = queue_wait(q, &c->waiter);
    if (rc != 0) /* messages came meanwhile, or the queue went */
        sqs_waiter_wake(&c->waiter);
}

static void sqs_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct sqs_worker *sw = w->data;
    pthread_mutex_lock(&sw->mu);
    struct sqs_conn *list = sw->woken, *c, *next;
    sw->woken = NULL;
    for (c = list; c; c = c->woken_next)
        c->woken = 0;
    pthread_mutex_unlock(&sw->mu);
    for (c = list; c; c = next) {
        next = c->woken_next;
        if (c->state == SQS_WAITING)
            sqs_receive_retry(c, 0);
    }
}

/* ---- reading and writing ---- */

static void sqs_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sqs_conn *c = w->data;
    if (c->state == SQS_WAITING || c->state == SQS_CALLING) { /* a long poll's deadline */
        sqs_receive_retry(c, 1);
        return;
    }
    sqs_close(c); /* header or idle timeout */
}

/* The reply is out: drop the request's bytes and go on with the next. */
static void sqs_reply_done(struct sqs_conn *c)
{
    if (c->closing || !c->keep_alive) {
        sqs_close(c);
        return;
    }
    memmove(c->in, c->in + c->req_len, c->in_len - c->req_len);
    c->in_len -= c->req_len;
    c->req_len = 0;
    c->out_len = c->out_off = 0;
    c->state = SQS_READING;
    ev_io_stop(c->sw->loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_READ);
    ev_io_start(c->sw->loop, &c->io);
    sqs_timer_set(c, (double)(c->in_len ? c->lst->header_timeout_ms : c->lst->idle_timeout_ms) /
                         1000.0);
    if (c->in_len)
        sqs_process(c);
}

static void sqs_write(struct sqs_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            sqs_close(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    sqs_reply_done(c);
}

/* Reads what is there. Returns 0, or -1 when c was closed. */
static int sqs_read(struct sqs_conn *c)
{
    uint64_t max = c->lst->max_body_bytes ? c->lst->max_body_bytes : SQS_DEFAULT_MAX_BODY;
    max += c->lst->max_header_bytes;
    for (;;) {
        if (c->in_cap - c->in_len < SQS_READ_CHUNK) {
            if (c->in_cap >= max + SQS_READ_CHUNK) {
                /* full of pipelined requests behind the one in progress: read
                 * again once its reply is out (sqs_send_raw re-arms) */
                ev_io_stop(c->sw->loop, &c->io);
                return 0;
            }
            size_t cap = c->in_cap ? c->in_cap * 2 : SQS_READ_CHUNK * 2;
            char *p = realloc(c->in, cap);
            if (p == NULL) {
                sqs_close(c);
                return -1;
            }
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            sqs_close(c);
            return -1;
        }
        c->in_len += (size_t)n;
    }
}

static void sqs_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sqs_conn *c = w->data;
    if ((revents & EV_WRITE) && c->state == SQS_WRITING) {
        sqs_write(c);
        return;
    }
    if (!(revents & EV_READ))
        return;
    if (sqs_read(c) < 0)
        return;
    if (c->state == SQS_READING)
        sqs_process(c);
}

/* Answers a request that cannot be served as an SQS call, then closes. */
static void sqs_reject(struct sqs_conn *c, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"__type\":\"com.amazonaws.sqs#InvalidRequest\","
                     "\"message\":\"%s\"}", why);
    c->closing = 1;
    c->req_len = c->in_len;
    sqs_send_raw(c, status, "InvalidRequest", body, (size_t)n);
}

/* The request head is parsed: checks it, keeps what the reply needs.
 * Returns the request's total length, 0 when the body is incomplete, or
 * -1 when it was rejected. */
static long sqs_check_head(struct sqs_conn *c, size_t head_len)
{
    struct http_msg *m = &c->msg;
    uint64_t max = c->lst->max_body_bytes ? c->lst->max_body_bytes : SQS_DEFAULT_MAX_BODY;
    if (m->body_kind == HTTP_BODY_CHUNKED) {
        sqs_reject(c, 411, "weir's SQS listener needs a Content-Length");
        return -1;
    }
    uint64_t body = m->body_kind == HTTP_BODY_LENGTH ? m->content_length : 0;
    if (body > max) {
        sqs_reject(c, 413, "request body too large");
        return -1;
    }
    if (m->method != HTTP_METHOD_POST) {
        sqs_reject(c, 405, "use POST with X-Amz-Target: AmazonSQS.<Action>");
        return -1;
    }
    if (c->in_len < head_len + body)
        return 0;
    return (long)(head_len + body);
}

/* Handles the request at the start of `in` if it is whole. */
static void sqs_process(struct sqs_conn *c)
{
    struct http_limits lim = { c->lst->max_request_line, c->lst->max_header_bytes,
                               c->lst->max_headers };
    http_msg_init(&c->msg);
    int head = http_parse_request(c->in, c->in_len, &c->msg, &lim);
    if (head == HTTP_PARSE_PARTIAL) {
        if (c->in_len > 0)
            sqs_timer_set(c, (double)c->lst->header_timeout_ms / 1000.0);
        return;
    }
    if (head == HTTP_PARSE_ERROR) {
        sqs_reject(c, c->msg.error_status, c->msg.error);
        return;
    }
    long total = sqs_check_head(c, (size_t)head);
    if (total <= 0)
        return;
    c->req_len = (size_t)total;
    c->keep_alive = c->msg.keep_alive;
    size_t hl = c->msg.host.len < sizeof(c->host) ? c->msg.host.len : sizeof(c->host) - 1;
    memcpy(c->host, c->msg.host.p, hl);
    c->host[hl] = 0;
    ev_timer_stop(c->sw->loop, &c->timer);
    int t = http_msg_find(&c->msg, "x-amz-target");
    static const char prefix[] = "AmazonSQS.";
    if (t < 0 || c->msg.headers[t].value.len <= sizeof(prefix) - 1 ||
        memcmp(c->msg.headers[t].value.p, prefix, sizeof(prefix) - 1) != 0) {
        sqs_reply_error(c, SQS_ERR_ACTION, "X-Amz-Target must be AmazonSQS.<Action> (weir "
                        "speaks the SQS JSON protocol)");
        return;
    }
    json_error_t jerr;
    size_t body_len = (size_t)total - (size_t)head;
    if (sqs_auth_check(c, c->in + head, body_len) < 0)
        return;
    json_t *in = body_len ? json_loadb(c->in + head, body_len, 0, &jerr) : json_object();
    if (!json_is_object(in)) {
        json_decref(in);
        sqs_reply_error(c, SQS_ERR_SERIAL, "the body is not a JSON object");
        return;
    }
    c->start_ns = queue_metrics_now_ns();
    sqs_dispatch(c, c->msg.headers[t].value.p + sizeof(prefix) - 1,
                 c->msg.headers[t].value.len - (sizeof(prefix) - 1), in);
    json_decref(in);
}

/* ---- worker hooks ---- */

int sqs_worker_init(struct wctx *wc)
{
    struct sqs_worker *sw = calloc(1, sizeof(*sw));
    if (sw == NULL) {
        log_error("sqs: out of memory starting worker %u", wc->worker.id);
        return -ENOMEM;
    }
    sw->wc = wc;
    sw->loop = wc->worker.loop;
    pthread_mutex_init(&sw->mu, NULL);
    ev_async_init(&sw->async, sqs_async_cb);
    sw->async.data = sw;
    ev_async_start(sw->loop, &sw->async);
    ev_prepare_init(&sw->prepare, sqs_prepare_cb);
    sw->prepare.data = sw;
    ev_prepare_start(sw->loop, &sw->prepare);
    ev_unref(sw->loop); /* neither keeps the loop alive */
    ev_unref(sw->loop);
    wc->proto[CFG_PROTOCOL_SQS] = sw;
    if (wc->worker.id == 0)
        sw->push = push_start(wc); /* one pusher for the instance */
    return 0;
}

void sqs_drain(struct wctx *wc)
{
    struct sqs_worker *sw = wc->proto[CFG_PROTOCOL_SQS];
    struct sqs_conn *c, *next;
    for (c = sw ? sw->conns : NULL; c; c = next) {
        next = c->next;
        c->closing = 1;
        if (c->state == SQS_WAITING || c->state == SQS_CALLING)
            sqs_receive_retry(c, 1);
        else if (c->state == SQS_READING && c->in_len == 0)
            sqs_close(c);
    }
}

void sqs_worker_stop(struct wctx *wc)
{
    struct sqs_worker *sw = wc->proto[CFG_PROTOCOL_SQS];
    if (sw == NULL)
        return;
    push_stop(sw->push);
    ev_ref(sw->loop);
    ev_ref(sw->loop);
    ev_async_stop(sw->loop, &sw->async);
    ev_prepare_stop(sw->loop, &sw->prepare);
}

void sqs_worker_free(struct wctx *wc)
{
    struct sqs_worker *sw = wc->proto[CFG_PROTOCOL_SQS];
    if (sw == NULL)
        return;
    while (sw->conns) {
        struct sqs_conn *c = sw->conns;
        sqs_call_end(c);
        sqs_unpark(c);
        if (c->state == SQS_SYNCING)
            sqs_unsync(c);
        close(c->fd);
        sw->conns = c->next;
        free(c->in);
        free(c->out);
        server_conn_close(wc, c->wl);
        snapshot_unref(c->snap);
        free(c);
    }
    push_free(sw->push);
    pthread_mutex_destroy(&sw->mu);
    free(sw);
    wc->proto[CFG_PROTOCOL_SQS] = NULL;
}
