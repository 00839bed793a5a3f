/* h2_server: one HTTP/2 client connection (nghttp2's server session) on
 * the worker loop; its streams go to proxy sessions over lanes
 * (h2_bridge.c).
 *
 *   client <─sio (plain or TLS)─> h2_conn ──nghttp2 callbacks──> lanes
 *            io watcher, tick      │ out (frames not yet written)
 *                                  └─ per-second counters, GOAWAY
 *
 * nghttp2 1.52 has no mitigation of its own for the known HTTP/2 attacks,
 * so the callbacks count them (on_begin_frame sees every frame header,
 * CONTINUATION included) and end the connection with
 * GOAWAY(ENHANCE_YOUR_CALM), counted in weir_http2_attacks_total:
 *   rapid reset         more than max_resets RST_STREAM in a second
 *   CONTINUATION flood  more than max_continuations frames, or more than
 *                       2 x max_header_list bytes, in one header block
 *   header list / HPACK decoded fields over max_header_list in one block
 *   bomb
 *   SETTINGS / PING /   more than max_control of each in a second (PRIORITY
 *   empty DATA floods   and WINDOW_UPDATE: 10 x max_control)
 *   zero-window stall   a stream with an answer waiting on a zero window for
 *                       window_timeout is reset (counted, no GOAWAY); when
 *                       the connection's window is the zero one, GOAWAY
 * Streams over max_concurrent_streams are refused (RST_STREAM
 * REFUSED_STREAM, counted as refused_streams). A connection without
 * streams for timeouts.client_idle gets GOAWAY(NO_ERROR); the drain sends
 * a graceful GOAWAY and the connection closes when its streams are done. */
#include "http2/h2_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/proxy.h"
#include "http2/h2_internal.h"
#include "server/snapshot.h"
#include "tls/tls.h"

#define H2_CLOSING_MS 5000 /* a GOAWAY the client does not take: close anyway */

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#define H2_ATTACK_NAME(e, s) s,
static const char *const h2_attack_names[] = { H2_ATTACK_LIST(H2_ATTACK_NAME) };
#undef H2_ATTACK_NAME

static const struct metric_family h2_family_attacks = {
    .name = "weir_http2_attacks_total",
    .help = "HTTP/2 connections ended (or streams refused or reset) for an attack pattern, by kind.",
    .type = METRIC_COUNTER,
    .labels = { "listener" },
    .cells_label = "kind",
    .cells = h2_attack_names,
    .n_cells = H2_ATTACK_COUNT,
};

static const struct metric_family h2_family_streams = {
    .name = "weir_http2_streams_total",
    .help = "HTTP/2 streams opened by clients.",
    .type = METRIC_COUNTER,
    .labels = { "listener" },
};

static struct h2_worker *h2_worker_get(struct wctx *wc)
{
    void **slot = proxy_h2_slot(wc);
    if (!slot)
        return NULL;
    if (!*slot)
        *slot = calloc(1, sizeof(struct h2_worker));
    return *slot;
}

/* The listener's series, kept by the worker (a series without holders
 * stops being exported). */
static struct h2_lst_metrics *h2_metrics_for(struct h2_worker *w, const char *name)
{
    for (size_t i = 0; i < w->n_m; i++)
        if (strcmp(w->m[i].name, name) == 0)
            return &w->m[i];
    struct h2_lst_metrics *m = realloc(w->m, (w->n_m + 1) * sizeof(*m));
    if (!m)
        return NULL;
    w->m = m;
    m = &w->m[w->n_m];
    const char *v[] = { name };
    m->name = strdup(name);
    m->attacks = metrics_series_get(&h2_family_attacks, v);
    m->streams = metrics_series_get(&h2_family_streams, v);
    if (!m->name) {
        metrics_series_put(m->attacks);
        metrics_series_put(m->streams);
        return NULL;
    }
    w->n_m++;
    return m;
}

int h2_server_detect(const struct sio *s, const char *p, size_t n)
{
    if (tls_is_tls(s))
        return tls_alpn_is_h2(s);
    size_t m = n < sizeof(h2_preface) - 1 ? n : sizeof(h2_preface) - 1;
    if (memcmp(p, h2_preface, m) != 0)
        return 0;
    return n >= sizeof(h2_preface) - 1 ? 1 : -EAGAIN;
}

/* ---- attacks ------------------------------------------------------------- */

void h2_conn_attack(struct h2_conn *hc, enum h2_attack kind)
{
    metrics_add(hc->m_attacks, kind, 1);
    if (kind == H2_ATTACK_STREAMS)
        return;
    log_info("http2: client %s on listener %s: %s, sending GOAWAY", hc->client_ip, hc->lst->name,
             h2_attack_names[kind]);
    if (hc->closing)
        return;
    nghttp2_session_terminate_session(hc->ng, NGHTTP2_ENHANCE_YOUR_CALM);
    hc->closing = 1;
    hc->closing_since = ev_now(hc->wc->worker.loop);
}

/* Counts one frame of `kind` in the current second; an attack past limit. */
static void h2_conn_count(struct h2_conn *hc, enum h2_attack kind, uint32_t limit)
{
    ev_tstamp now = ev_now(hc->wc->worker.loop);
    if (now - hc->win_start >= 1.0) {
        memset(hc->win, 0, sizeof(hc->win));
        hc->win_start = now;
    }
    if (++hc->win[kind] > limit)
        h2_conn_attack(hc, kind);
}

/* ---- nghttp2 callbacks --------------------------------------------------- */

static int h2_on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
    (void)ng;
    struct h2_conn *hc = user;
    const struct h2_cfg *c = hc->cfg;
    if (hc->closing)
        return 0;
    switch (hd->type) {
    case NGHTTP2_HEADERS:
        hc->block_frames = 0;
        hc->block_bytes = hd->length;
        if (hd->length == 0 && !(hd->flags & (NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM)))
            h2_conn_count(hc, H2_ATTACK_EMPTY, c->max_control);
        break;
    case NGHTTP2_CONTINUATION:
        hc->block_bytes += hd->length;
        if (++hc->block_frames > c->max_continuations || hc->block_bytes > 2ull * c->max_header_list)
            h2_conn_attack(hc, H2_ATTACK_CONTINUATION);
        else if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_HEADERS))
            h2_conn_count(hc, H2_ATTACK_EMPTY, c->max_control);
        break;
    case NGHTTP2_DATA:
        if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM))
            h2_conn_count(hc, H2_ATTACK_EMPTY, c->max_control);
        break;
    case NGHTTP2_RST_STREAM:
        h2_conn_count(hc, H2_ATTACK_RAPID_RESET, c->max_resets);
        break;
    case NGHTTP2_SETTINGS:
        if (!(hd->flags & NGHTTP2_FLAG_ACK))
            h2_conn_count(hc, H2_ATTACK_SETTINGS, c->max_control);
        break;
    case NGHTTP2_PING:
        if (!(hd->flags & NGHTTP2_FLAG_ACK))
            h2_conn_count(hc, H2_ATTACK_PING, c->max_control);
        break;
    case NGHTTP2_WINDOW_UPDATE:
        if (hc->wu_credit > 0) { /* a client giving back the window our DATA used */
            hc->wu_credit--;
            break;
        }
        h2_conn_count(hc, H2_ATTACK_CONTROL, 10 * c->max_control);
        break;
    case NGHTTP2_PRIORITY:
        h2_conn_count(hc, H2_ATTACK_CONTROL, 10 * c->max_control);
        break;
    default:
        break;
    }
    return 0;
}

static int h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2_conn *hc = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST || hc->closing)
        return 0;
    metrics_add(hc->m_streams, 0, 1);
    struct h2_lane *l = NULL;
    if (hc->n_active < hc->cfg->max_concurrent_streams && !hc->draining)
        l = h2_lane_get(hc, f->hd.stream_id);
    if (!l) {
        if (!hc->draining)
            h2_conn_attack(hc, H2_ATTACK_STREAMS);
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, l);
    return 0;
}

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                        const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)flags;
    struct h2_conn *hc = user;
    if (hc->closing)
        return 0;
    struct h2_lane *l = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    uint64_t *total = l ? &l->hdr_total : &hc->block_bytes;
    *total += nlen + vlen + 32; /* RFC 9113 6.5.2's size of a field */
    if (*total > hc->cfg->max_header_list) {
        h2_conn_attack(hc, H2_ATTACK_HEADER_LIST);
        return 0;
    }
    if (l && f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_HEADERS)
        return h2_lane_trailer(l, name, nlen, value, vlen);
    if (!l || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* refused streams */
    return h2_lane_header(l, name, nlen, value, vlen);
}

static int h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2_conn *hc = user;
    if (hc->closing || f->hd.stream_id == 0)
        return 0;
    struct h2_lane *l = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!l)
        return 0;
    int rc = 0;
    int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        rc = h2_lane_request_head(l, end);
    else if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && end)
        rc = h2_lane_request_end(l);
    if (rc < 0) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                  rc == -EPROTO ? NGHTTP2_REFUSED_STREAM : NGHTTP2_INTERNAL_ERROR);
        h2_lane_close(l, 0);
    }
    return 0;
}

static int h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                            void *user)
{
    (void)flags;
    struct h2_conn *hc = user;
    struct h2_lane *l = nghttp2_session_get_stream_user_data(ng, sid);
    if (!l || hc->closing) {
        if (nghttp2_session_consume(ng, sid, len) != 0)
            nghttp2_session_consume_connection(ng, len);
        return 0;
    }
    if (h2_lane_request_data(l, data, len) < 0) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_INTERNAL_ERROR);
        h2_lane_close(l, 0);
    }
    return 0;
}

static int h2_on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *user)
{
    (void)user;
    struct h2_lane *l = nghttp2_session_get_stream_user_data(ng, sid);
    if (l)
        h2_lane_stream_closed(l, error_code);
    return 0;
}

static nghttp2_session_callbacks *h2_cbs; /* made once, shared by the workers (read only) */
static pthread_once_t h2_cbs_once = PTHREAD_ONCE_INIT;

static void h2_callbacks_make(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return;
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, h2_on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_stream_close);
    h2_cbs = cbs;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
    pthread_once(&h2_cbs_once, h2_callbacks_make);
    return h2_cbs;
}

/* ---- the connection ------------------------------------------------------ */

static void h2_conn_free(struct h2_conn *hc)
{
    struct h2_worker *w = *proxy_h2_slot(hc->wc);
    struct ev_loop *loop = hc->wc->worker.loop;
    while (hc->lanes)
        h2_lane_close(hc->lanes, 0);
    if (loop) {
        ev_io_stop(loop, &hc->io);
        ev_timer_stop(loop, &hc->tick);
        ev_prepare_stop(loop, &hc->flush); /* drops a fed event */
    }
    nghttp2_session_del(hc->ng);
    sio_close(&hc->sio);
    h2_bytes_free(&hc->out);
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        w->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    server_conn_close(hc->wc, hc->wl);
    snapshot_unref(hc->snap);
    free(hc);
}

/* Reads once and feeds nghttp2: 1 progress, 0 none. */
static int h2_conn_read(struct h2_conn *hc)
{
    char buf[16384];
    ssize_t n = sio_read(&hc->sio, buf, sizeof(buf));
    if (n == -EAGAIN) {
        hc->readable = 0;
        return 0;
    }
    if (n <= 0) {
        hc->dead = 1;
        return 0;
    }
    metrics_add(hc->wl->m_bytes_in, 0, (uint64_t)n);
    ssize_t rv = nghttp2_session_mem_recv(hc->ng, (const uint8_t *)buf, (size_t)n);
    if (rv < 0) {
        log_debug("http2: client %s: %s", hc->client_ip, nghttp2_strerror((int)rv));
        if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC || rv == NGHTTP2_ERR_FLOODED) {
            if (rv == NGHTTP2_ERR_FLOODED)
                metrics_add(hc->m_attacks, H2_ATTACK_CONTROL, 1);
            hc->dead = 1;
            return 0;
        }
        metrics_add(hc->m_attacks, H2_ATTACK_PROTOCOL, 1);
        nghttp2_session_terminate_session(hc->ng, NGHTTP2_PROTOCOL_ERROR);
        hc->closing = 1;
        hc->closing_since = ev_now(hc->wc->worker.loop);
    }
    return 1;
}

/* Moves frames from nghttp2 to out and out to the client: 1 progress. */
static int h2_conn_flush(struct h2_conn *hc)
{
    int progress = 0;
    while (h2_bytes_size(&hc->out) < H2_OUT_HWM) {
        const uint8_t *d;
        ssize_t n = nghttp2_session_mem_send(hc->ng, &d);
        if (n < 0) {
            hc->dead = 1;
            return 0;
        }
        if (n == 0)
            break;
        if (h2_bytes_add(&hc->out, d, (size_t)n)) {
            hc->dead = 1;
            return 0;
        }
    }
    while (hc->writable && h2_bytes_size(&hc->out) > 0) {
        ssize_t n = sio_write(&hc->sio, h2_bytes_data(&hc->out), h2_bytes_size(&hc->out));
        if (n == -EAGAIN) {
            hc->writable = 0;
            break;
        }
        if (n < 0) {
            hc->dead = 1;
            return 0;
        }
        metrics_add(hc->wl->m_bytes_out, 0, (uint64_t)n);
        h2_bytes_take(&hc->out, (size_t)n);
        progress = 1;
    }
    return progress;
}

static void h2_conn_watch(struct h2_conn *hc)
{
    int rd = !hc->closing && h2_bytes_size(&hc->out) < H2_OUT_HWM && nghttp2_session_want_read(hc->ng);
    int wr = h2_bytes_size(&hc->out) > 0 && !hc->writable;
    int ev = sio_events(&hc->sio, rd, wr);
    struct ev_loop *loop = hc->wc->worker.loop;
    if (ev_is_active(&hc->io) && (hc->io.events & (EV_READ | EV_WRITE)) == ev)
        return;
    ev_io_stop(loop, &hc->io);
    if (ev) {
        ev_io_set(&hc->io, hc->sio.fd, ev);
        ev_io_start(loop, &hc->io);
    }
}

void h2_conn_pump(struct h2_conn *hc)
{
    if (hc->in_pump)
        return;
    hc->in_pump = 1;
    int round;
    for (round = 0; round < 64 && !hc->dead; round++) {
        int progress = 0;
        if (hc->readable && !hc->closing && h2_bytes_size(&hc->out) < H2_OUT_HWM)
            progress |= h2_conn_read(hc);
        if (!hc->dead)
            progress |= h2_conn_flush(hc);
        if (!progress)
            break;
    }
    hc->in_pump = 0;
    if (!hc->dead && h2_bytes_size(&hc->out) == 0 && !nghttp2_session_want_write(hc->ng) &&
        (hc->closing || !nghttp2_session_want_read(hc->ng)))
        hc->dead = 1;
    if (hc->dead) {
        h2_conn_free(hc);
        return;
    }
    if (round == 64 && hc->readable) /* fairness: come back on the next loop turn */
        ev_feed_event(hc->wc->worker.loop, &hc->io, EV_READ);
    h2_conn_watch(hc);
}

static void h2_conn_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    h2_conn_pump(w->data);
}

/* hc->flush is never started: an event fed to it at the lowest priority
 * runs once the sessions and lanes woken on this loop turn have run (libev
 * invokes higher priorities first, and again after each feed). */
void h2_conn_schedule(struct h2_conn *hc)
{
    ev_feed_event(hc->wc->worker.loop, &hc->flush, EV_CUSTOM);
}

static void h2_conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct h2_conn *hc = w->data;
    if (revents & hc->sio.rd_want)
        hc->readable = 1;
    if (revents & hc->sio.wr_want)
        hc->writable = 1;
    h2_conn_pump(hc);
}

/* Resets the streams whose answer waits on a zero window too long. */
static void h2_conn_check_stalls(struct h2_conn *hc, ev_tstamp now)
{
    double limit = (double)hc->cfg->window_timeout_ms / 1000.0;
    int conn_zero = nghttp2_session_get_remote_window_size(hc->ng) <= 0;
    struct h2_lane *next;
    for (struct h2_lane *l = hc->lanes; l; l = next) {
        next = l->next;
        if (!l->sid || !h2_lane_pending(l) ||
            (!conn_zero && nghttp2_session_get_stream_remote_window_size(hc->ng, l->sid) > 0)) {
            if (l->sid)
                l->stall_since = 0;
            continue;
        }
        if (l->stall_since == 0) {
            l->stall_since = now;
            continue;
        }
        if (now - l->stall_since < limit)
            continue;
        if (conn_zero) {
            h2_conn_attack(hc, H2_ATTACK_ZERO_WINDOW);
            return;
        }
        metrics_add(hc->m_attacks, H2_ATTACK_ZERO_WINDOW, 1);
        log_info("http2: client %s: stream %d stalled on a zero window, resetting", hc->client_ip, l->sid);
        int32_t sid = l->sid;
        h2_lane_close(l, 0);
        nghttp2_submit_rst_stream(hc->ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_ENHANCE_YOUR_CALM);
    }
}

static void h2_conn_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct h2_conn *hc = w->data;
    ev_tstamp now = ev_now(loop);
    if (hc->closing) {
        if (now - hc->closing_since > H2_CLOSING_MS / 1000.0)
            hc->dead = 1;
    } else if (hc->n_active == 0 && now - hc->idle_since >= (double)hc->lst->idle_timeout_ms / 1000.0) {
        nghttp2_session_terminate_session(hc->ng, NGHTTP2_NO_ERROR);
        hc->closing = 1;
        hc->closing_since = now;
    } else {
        h2_conn_check_stalls(hc, now);
    }
    h2_conn_pump(hc);
}

int h2_conn_session(struct h2_conn *hc)
{
    const struct h2_cfg *c = hc->cfg;
    nghttp2_option *opt;
    nghttp2_session_callbacks *cbs = h2_callbacks();
    if (!cbs || nghttp2_option_new(&opt) != 0)
        return -ENOMEM;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    int rv = nghttp2_session_server_new2(&hc->ng, cbs, hc, opt);
    nghttp2_option_del(opt);
    if (rv != 0)
        return -ENOMEM;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->max_concurrent_streams },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->window },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->max_header_list },
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
    };
    uint32_t conn_window = c->window > (1u << 29) ? (1u << 31) - 1 : 4 * c->window;
    if (nghttp2_submit_settings(hc->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(hc->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_window) != 0)
        return -ENOMEM;
    return 0;
}

int h2_server_adopt(struct wctx *wc, struct wlistener *wl, struct snapshot *snap,
                    const struct cfg_listener *lst, struct sio *s, const char *client_ip,
                    const char *p, size_t n)
{
    struct h2_worker *w = h2_worker_get(wc);
    struct h2_lst_metrics *m = w ? h2_metrics_for(w, lst->name) : NULL;
    struct h2_conn *hc = m ? calloc(1, sizeof(*hc)) : NULL;
    if (!hc) {
        sio_close(s);
        return -ENOMEM;
    }
    hc->wc = wc;
    hc->wl = wl;
    hc->snap = snap;
    snapshot_ref(snap);
    hc->lst = lst;
    hc->cfg = lst->http2;
    hc->sio = *s;
    sio_init_closed(s);
    hc->m_attacks = m->attacks;
    hc->m_streams = m->streams;
    snprintf(hc->client_ip, sizeof(hc->client_ip), "%s", client_ip);
    hc->readable = hc->writable = 1;
    struct ev_loop *loop = wc->worker.loop;
    hc->idle_since = hc->win_start = ev_now(loop);
    ev_io_init(&hc->io, h2_conn_io_cb, hc->sio.fd, EV_READ);
    hc->io.data = hc;
    double tick = (double)hc->cfg->window_timeout_ms / 4000.0;
    tick = tick > 1.0 ? 1.0 : tick < 0.05 ? 0.05 : tick;
    ev_timer_init(&hc->tick, h2_conn_tick_cb, tick, tick);
    hc->tick.data = hc;
    ev_prepare_init(&hc->flush, h2_conn_flush_cb);
    ev_set_priority(&hc->flush, EV_MINPRI);
    hc->flush.data = hc;
    hc->next = w->conns;
    if (w->conns)
        w->conns->prev = hc;
    w->conns = hc;
    server_conn_open(wc, wl);
    if (h2_conn_session(hc) != 0) {
        hc->dead = 1;
        h2_conn_pump(hc);
        return -ENOMEM;
    }
    ev_timer_start(loop, &hc->tick);
    if (n > 0 && nghttp2_session_mem_recv(hc->ng, (const uint8_t *)p, n) < 0)
        hc->dead = 1;
    h2_conn_pump(hc);
    return 0;
}

void h2_server_drain(struct wctx *wc)
{
    void **slot = proxy_h2_slot(wc);
    struct h2_worker *w = slot ? *slot : NULL;
    struct h2_conn *next;
    for (struct h2_conn *hc = w ? w->conns : NULL; hc; hc = next) {
        next = hc->next;
        if (hc->draining || hc->closing)
            continue;
        hc->draining = 1;
        nghttp2_submit_goaway(hc->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(hc->ng),
                              NGHTTP2_NO_ERROR, NULL, 0);
        h2_conn_pump(hc);
    }
}

void h2_server_worker_free(struct wctx *wc)
{
    void **slot = proxy_h2_slot(wc);
    struct h2_worker *w = slot ? *slot : NULL;
    if (!w)
        return;
    while (w->conns)
        h2_conn_free(w->conns);
    for (size_t i = 0; i < w->n_m; i++) {
        free(w->m[i].name);
        metrics_series_put(w->m[i].attacks);
        metrics_series_put(w->m[i].streams);
    }
    free(w->m);
    free(w);
    *slot = NULL;
}
