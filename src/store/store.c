/* store: weir's asynchronous Redis / Redis Cluster client (hiredis async API
 * with its libev adapter), one instance per worker loop, no locks.
 *
 *   store_command()
 *        |  copy args, start the command's timer (timeouts.command)
 *        v
 *   route: single Redis -> the link | cluster -> slot map -> owner's link
 *        |         (no map yet: store->wait, until CLUSTER SLOTS answers)
 *        v
 *   link READY? --no, connecting--> link->wait (max_pending) --ready--> send
 *        |       --no, backing off--> refused: NULL (UNAVAILABLE)
 *        v yes
 *   hiredis (its own FIFO of callbacks) --reply--> MOVED: fix slot, refresh
 *        |                                  |        map, resend (bounded)
 *        |                                  `-----> ASK: ASKING + resend once
 *        +--reply--> callback(OK, reply)
 *        +--NULL (connection lost / freed)--> callback(UNAVAILABLE)
 *   timer fires first --> callback(TIMEOUT); the late reply is dropped
 *
 * A link is one connection to one node: IDLE -> CONNECTING (TCP) ->
 * HANDSHAKE (AUTH, SELECT) -> READY; a failed attempt -> BACKOFF for
 * base*2^n (capped at max, jittered in [d/2, d]) -> CONNECTING. A READY link
 * that is lost reconnects at once (with the backoff if it was up less than a
 * second), so commands submitted meanwhile queue; during BACKOFF they are
 * refused, so callers learn "unavailable" promptly. A link that keeps
 * commands waiting three command timeouts without any reply is dropped.
 *
 * Memory: a command (struct store_cmd) is freed when three things are true:
 * its caller is done with it (called back or cancelled), hiredis holds no
 * callback pointing at it (refs == 0: hiredis calls each callback exactly
 * once, with NULL when the connection goes), and it is on no wait list. So a
 * cancelled or timed-out command stays valid for hiredis's late callback.
 * Commands moved between lists are detached into a local list first, so a
 * callback that submits or cancels never changes a list being walked.
 *
 * hiredis rules kept here: its context is never freed inside its connect
 * callback (that failure is deferred to a timer); a context we drop has its
 * `data` cleared first, so its last callbacks know they are stale.
 *
 * Bounds: max_pending queued commands, STORE_MAX_INFLIGHT sent ones,
 * STORE_MAX_LINKS nodes, STORE_MAX_ARGS / STORE_MAX_COMMAND_BYTES per
 * command, max_redirects per command, every wait under a timer. */
#include "store/store.h"

#include <errno.h>
#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/rcluster.h"

#define STORE_MAGIC 0x73746f72u
#define STORE_CMD_MAGIC 0x636d6421u
#define STORE_MAX_LINKS 512       /* cluster nodes (seeds and primaries) per store */
#define STORE_MAX_INFLIGHT 100000 /* sent and unanswered commands per store */
#define STORE_MAX_ARGS 65536
#define STORE_MAX_COMMAND_BYTES (64u << 20)
#define STORE_STALL_TIMEOUTS 3 /* command timeouts without a reply: drop the link */
#define STORE_STABLE_S 1.0     /* a link up this long reconnects without delay */

#define STORE_LINK_STATE_LIST(X)                                                                   \
    X(STORE_LINK_IDLE, "idle")                                                                     \
    X(STORE_LINK_CONNECTING, "connecting")                                                         \
    X(STORE_LINK_HANDSHAKE, "handshake")                                                           \
    X(STORE_LINK_READY, "ready")                                                                   \
    X(STORE_LINK_BACKOFF, "backoff")
#define STORE_ENUM_MEMBER(e, s) e,
enum store_link_state { STORE_LINK_STATE_LIST(STORE_ENUM_MEMBER) };
#undef STORE_ENUM_MEMBER

#define STORE_ENUM_NAME(e, s) s,
static const char *const store_result_names[] = {STORE_RESULT_LIST(STORE_ENUM_NAME)};
#undef STORE_ENUM_NAME

struct store_list {
    struct store_cmd *head, *tail;
};

struct store_link {
    struct store *store;
    size_t index; /* in store->links */
    char host[RCLUSTER_HOST_MAX];
    int port;
    char addr[RCLUSTER_HOST_MAX + 8]; /* "host:port", "[v6]:port" for logs */
    redisAsyncContext *ac;         /* NULL unless CONNECTING, HANDSHAKE or READY */
    enum store_link_state state;
    ev_timer connect_timer; /* connect + handshake deadline; also a deferred failure */
    ev_timer retry_timer;   /* reconnect delay */
    uint32_t failures;      /* consecutive failed attempts (backoff exponent) */
    int handshake_left;     /* AUTH / SELECT replies awaited */
    int down_logged;        /* a failure was logged; log the recovery */
    struct store_list wait; /* commands waiting for READY */
    size_t inflight;        /* sent, callback not yet back */
    size_t n_slots;         /* slots it owns in the map (cluster) */
    ev_tstamp ready_at, last_reply, busy_since;
};

struct store_cmd {
    uint32_t magic;
    struct store *store;
    store_cb cb;
    void *arg;
    int done;       /* called back or cancelled: no more callbacks */
    int refs;       /* hiredis callbacks still to come */
    int internal;   /* the store's own (CLUSTER SLOTS): not counted as pending */
    int asking;     /* send ASKING first (an ASK redirection) */
    int waited_map; /* already waited for a slot map refresh */
    int has_slot;
    unsigned slot;
    uint32_t redirects;
    struct store_list *list; /* the wait list it is on, or NULL */
    struct store_cmd *prev, *next;
    struct store_link *link; /* where it was last sent */
    ev_timer timer;
    int argc;
    const char **argv; /* into the same allocation */
    size_t *argvlen;
};

struct store {
    uint32_t magic;
    struct ev_loop *loop;
    char name[64];
    int cluster;
    int freeing;
    ev_tstamp connect_timeout, command_timeout;
    uint64_t backoff_base_ms, backoff_max_ms;
    char *username, *password;
    uint32_t database, max_pending, max_redirects;
    uint64_t rng;
    struct store_link *links[STORE_MAX_LINKS];
    size_t n_links;
    size_t pending; /* queued on any wait list (not internal) */
    size_t inflight;
    /* cluster only: */
    uint16_t *slots;   /* RCLUSTER_SLOTS entries: link index + 1, 0 = unknown */
    int map_known;     /* a CLUSTER SLOTS answer was applied once */
    int refreshing;    /* a CLUSTER SLOTS is in flight */
    int refresh_again; /* asked again while refreshing */
    size_t refresh_next, refresh_tries;
    uint32_t refresh_failures;
    int refresh_logged;
    ev_timer refresh_timer; /* starts a refresh: soon, or after a backoff */
    struct store_list wait; /* commands waiting for the slot map */
};

static void store_link_connect_cb(EV_P_ ev_timer *w, int revents);
static void store_link_deadline_cb(EV_P_ ev_timer *w, int revents);
static void store_refresh_soon(struct store *s);
static void store_link_lost(struct store_link *l, const char *why);
static int store_route(struct store_cmd *c);

const char *store_result_name(enum store_result r)
{
    return (unsigned)r < STORE_RESULT_COUNT ? store_result_names[r] : "?";
}

/* ---- wait lists ---- */

static void store_list_push(struct store *s, struct store_list *list, struct store_cmd *c)
{
    ASSERT(c->list == NULL);
    c->list = list;
    c->next = NULL;
    c->prev = list->tail;
    if (list->tail != NULL)
        list->tail->next = c;
    else
        list->head = c;
    list->tail = c;
    if (!c->internal)
        s->pending++;
}

static void store_list_unlink(struct store_cmd *c)
{
    struct store_list *list = c->list;

    if (list == NULL)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        list->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        list->tail = c->prev;
    c->list = NULL;
    c->prev = c->next = NULL;
    if (!c->internal)
        c->store->pending--;
}

/* Moves every command of `from` to the empty local list `to`. */
static void store_list_take(struct store_list *from, struct store_list *to)
{
    *to = *from;
    from->head = from->tail = NULL;
    for (struct store_cmd *c = to->head; c != NULL; c = c->next)
        c->list = to;
}

/* ---- commands ---- */

static void store_cmd_maybe_free(struct store_cmd *c)
{
    if (!c->done || c->refs > 0 || c->list != NULL)
        return;
    c->magic = 0;
    free(c);
}

/* Calls the command back once with `result` and releases what it holds. */
static void store_cmd_finish(struct store_cmd *c, enum store_result result, redisReply *reply)
{
    if (c->done)
        return;
    c->done = 1;
    ev_timer_stop(c->store->loop, &c->timer);
    store_list_unlink(c);
    c->cb(c->arg, result, reply);
    store_cmd_maybe_free(c);
}

/* Fails every command of `list` with `result` (the list may be refilled by
 * callbacks meanwhile; those stay for later). */
static void store_list_fail(struct store_list *list, enum store_result result)
{
    struct store_list local;
    struct store_cmd *c;

    store_list_take(list, &local);
    while ((c = local.head) != NULL)
        store_cmd_finish(c, result, NULL);
}

static struct store_cmd *store_cmd_new(struct store *s, int argc, const char **argv,
                                       const size_t *argvlen)
{
    size_t bytes = 0;

    for (int i = 0; i < argc; i++) {
        if (argvlen[i] > STORE_MAX_COMMAND_BYTES - bytes)
            return NULL;
        bytes += argvlen[i];
    }
    size_t size = sizeof(struct store_cmd) + (size_t)argc * (sizeof(char *) + sizeof(size_t)) +
                  bytes + (size_t)argc;
    struct store_cmd *c = calloc(1, size);
    if (c == NULL)
        return NULL;
    c->magic = STORE_CMD_MAGIC;
    c->store = s;
    c->argc = argc;
    c->argv = (const char **)(c + 1);
    c->argvlen = (size_t *)(c->argv + argc);
    char *p = (char *)(c->argvlen + argc);
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i], argvlen[i]);
        p[argvlen[i]] = '\0';
        c->argv[i] = p;
        c->argvlen[i] = argvlen[i];
        p += argvlen[i] + 1;
    }
    return c;
}

/* Commands whose replies hiredis would not match one to one. */
static int store_cmd_allowed(const char *name, size_t len)
{
    static const char *const refused[] = {"subscribe",   "psubscribe",   "ssubscribe",
                                          "unsubscribe", "punsubscribe", "sunsubscribe",
                                          "monitor"};

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (strlen(refused[i]) == len && strncasecmp(name, refused[i], len) == 0)
            return 0;
    return 1;
}

static void store_cmd_timeout_cb(EV_P_ ev_timer *w, int revents)
{
    struct store_cmd *c = w->data;
    struct store_link *l = c->link;
    struct store *s = c->store;

    ASSERT(c->magic == STORE_CMD_MAGIC);
    int sent = c->list == NULL && c->refs > 0;
    store_cmd_finish(c, STORE_TIMEOUT, NULL);
    if (!sent || l == NULL || l->state != STORE_LINK_READY || l->inflight == 0)
        return;
    ev_tstamp quiet_since = l->last_reply > l->busy_since ? l->last_reply : l->busy_since;
    if (ev_now(s->loop) - quiet_since >= STORE_STALL_TIMEOUTS * s->command_timeout)
        store_link_lost(l, "no reply within three command timeouts");
}

/* ---- links: replies ---- */

static void store_redirect(struct store_cmd *c, redisReply *r);

/* hiredis's callback for a command: the reply, or NULL when the connection
 * went before it. */
static void store_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct store_cmd *c = privdata;
    struct store_link *l = c->link;
    struct store *s = c->store;
    redisReply *r = reply;

    ASSERT(c->magic == STORE_CMD_MAGIC);
    c->refs--;
    l->inflight--;
    s->inflight--;
    if (r != NULL)
        l->last_reply = ev_now(s->loop);
    if (c->done) {
        store_cmd_maybe_free(c);
        return;
    }
    if (r == NULL) {
        store_cmd_finish(c, STORE_UNAVAILABLE, NULL);
        return;
    }
    if (s->cluster && r->type == REDIS_REPLY_ERROR &&
        (strncmp(r->str, "MOVED ", 6) == 0 || strncmp(r->str, "ASK ", 4) == 0)) {
        store_redirect(c, r);
        return;
    }
    store_cmd_finish(c, STORE_OK, r);
}

/* Hands the command to hiredis on a READY link. Returns 0 or -EAGAIN. */
static int store_link_send(struct store_link *l, struct store_cmd *c)
{
    struct store *s = l->store;

    ASSERT(l->state == STORE_LINK_READY && l->ac != NULL);
    if (c->asking && redisAsyncCommand(l->ac, NULL, NULL, "ASKING") != REDIS_OK)
        return -EAGAIN;
    if (redisAsyncCommandArgv(l->ac, store_reply_cb, c, c->argc, c->argv, c->argvlen) != REDIS_OK)
        return -EAGAIN;
    c->asking = 0;
    c->refs++;
    c->link = l;
    if (l->inflight++ == 0)
        l->busy_since = ev_now(s->loop);
    s->inflight++;
    return 0;
}

/* Sends, queues or refuses `c` on link `l`. Returns 0 (sent or queued) or
 * -EAGAIN (unavailable: the caller fails or frees the command). */
static int store_link_submit(struct store_link *l, struct store_cmd *c)
{
    struct store *s = l->store;

    switch (l->state) {
    case STORE_LINK_READY:
        return store_link_send(l, c);
    case STORE_LINK_BACKOFF:
        return -EAGAIN;
    case STORE_LINK_IDLE:
        l->state = STORE_LINK_CONNECTING;
        ev_timer_set(&l->retry_timer, 0, 0);
        ev_timer_start(s->loop, &l->retry_timer);
        break;
    default:
        break;
    }
    if (!c->internal && s->pending >= s->max_pending)
        return -EAGAIN;
    store_list_push(s, &l->wait, c);
    return 0;
}

/* ---- links: connecting ---- */

static uint64_t store_random(struct store *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

/* The reconnect delay after `failures` failed attempts, in seconds. */
static ev_tstamp store_backoff(struct store *s, uint32_t failures)
{
    uint64_t d = s->backoff_base_ms;

    for (uint32_t i = 1; i < failures && d < s->backoff_max_ms; i++)
        d *= 2;
    if (d > s->backoff_max_ms)
        d = s->backoff_max_ms;
    d = d / 2 + store_random(s) % (d / 2 + 1);
    return (ev_tstamp)d / 1000.0;
}

/* Whether a down link should reconnect by itself. */
static int store_link_wanted(const struct store_link *l)
{
    return !l->store->cluster || l->wait.head != NULL || l->n_slots > 0;
}

/* Drops the hiredis context, if any, so that its last callbacks are stale. */
static void store_link_close(struct store_link *l)
{
    redisAsyncContext *ac = l->ac;

    ev_timer_stop(l->store->loop, &l->connect_timer);
    if (ac == NULL)
        return;
    l->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac); /* sent commands are called back with NULL: UNAVAILABLE */
}

/* A connect or handshake attempt failed: back off, fail the waiters. */
static void store_link_failed(struct store_link *l, const char *why)
{
    struct store *s = l->store;

    l->state = STORE_LINK_BACKOFF;
    store_link_close(l);
    l->failures++;
    ev_tstamp delay = store_backoff(s, l->failures);
    if (!l->down_logged && !s->freeing)
        log_warn("store %s: cannot connect to %s: %s; retrying in %.0fms (then with backoff up "
                 "to %llums); commands fail as unavailable meanwhile",
                 s->name, l->addr, why, delay * 1000, (unsigned long long)s->backoff_max_ms);
    l->down_logged = 1;
    ev_timer_stop(s->loop, &l->retry_timer);
    ev_timer_set(&l->retry_timer, delay, 0);
    ev_timer_start(s->loop, &l->retry_timer);
    store_list_fail(&l->wait, STORE_UNAVAILABLE);
    if (s->cluster)
        store_refresh_soon(s);
}

/* A READY link went away (or was dropped): reconnect, at once if it had
 * been up a while. Commands in flight were called back UNAVAILABLE. */
static void store_link_lost(struct store_link *l, const char *why)
{
    struct store *s = l->store;

    if (!s->freeing)
        log_warn("store %s: connection to %s lost: %s; reconnecting", s->name, l->addr, why);
    l->down_logged = 1;
    l->state = STORE_LINK_CONNECTING;
    store_link_close(l);
    ev_tstamp delay = 0;
    if (ev_now(s->loop) - l->ready_at < STORE_STABLE_S)
        delay = store_backoff(s, ++l->failures);
    ev_timer_stop(s->loop, &l->retry_timer);
    ev_timer_set(&l->retry_timer, delay, 0);
    ev_timer_start(s->loop, &l->retry_timer);
    if (s->cluster)
        store_refresh_soon(s);
}

static void store_link_ready(struct store_link *l)
{
    struct store *s = l->store;
    struct store_list local;
    struct store_cmd *c;

    ev_timer_stop(s->loop, &l->connect_timer);
    l->state = STORE_LINK_READY;
    l->ready_at = l->last_reply = ev_now(s->loop);
    if (l->down_logged)
        log_info("store %s: connected to %s", s->name, l->addr);
    l->down_logged = 0;
    store_list_take(&l->wait, &local);
    while ((c = local.head) != NULL) {
        store_list_unlink(c);
        if (l->state != STORE_LINK_READY || store_link_send(l, c) < 0)
            store_cmd_finish(c, STORE_UNAVAILABLE, NULL);
    }
    if (l->state == STORE_LINK_READY)
        l->failures = 0;
}

/* Replies to AUTH and SELECT. */
static void store_handshake_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct store_link *l = privdata;
    redisReply *r = reply;
    char why[160];

    if (ac->data != l || r == NULL)
        return; /* a dropped context, or a lost connection: the disconnect callback acts */
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%s", r->str);
        if (!l->down_logged)
            log_error("store %s: %s refused the handshake (check password/username/database): "
                      "%s",
                      l->store->name, l->addr, why);
        l->down_logged = 1;
        store_link_failed(l, why);
        return;
    }
    if (--l->handshake_left == 0)
        store_link_ready(l);
}

static int store_handshake_send(struct store_link *l)
{
    struct store *s = l->store;
    char db[16];
    int rc = REDIS_OK;

    l->handshake_left = 0;
    if (s->password != NULL && s->username != NULL)
        rc =
            redisAsyncCommand(l->ac, store_handshake_cb, l, "AUTH %s %s", s->username, s->password);
    else if (s->password != NULL)
        rc = redisAsyncCommand(l->ac, store_handshake_cb, l, "AUTH %s", s->password);
    l->handshake_left += s->password != NULL;
    if (rc == REDIS_OK && s->database != 0) {
        snprintf(db, sizeof(db), "%u", s->database);
        rc = redisAsyncCommand(l->ac, store_handshake_cb, l, "SELECT %s", db);
        l->handshake_left++;
    }
    return rc == REDIS_OK ? 0 : -EIO;
}

static void store_connect_cb(const redisAsyncContext *ac, int status)
{
    struct store_link *l = ac->data;

    if (l == NULL)
        return;
    if (status != REDIS_OK) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        l->ac = NULL; /* hiredis frees it after this returns */
        store_link_failed(l, why);
        return;
    }
    l->state = STORE_LINK_HANDSHAKE;
    if (store_handshake_send(l) < 0) {
        /* hiredis must not be freed inside its connect callback: fail from the timer */
        ev_timer_stop(l->store->loop, &l->connect_timer);
        ev_timer_set(&l->connect_timer, 0, 0);
        ev_timer_start(l->store->loop, &l->connect_timer);
        return;
    }
    if (l->handshake_left == 0)
        store_link_ready(l);
}

static void store_disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct store_link *l = ac->data;

    if (l == NULL)
        return;
    l->ac = NULL; /* hiredis frees it after this returns */
    if (l->state == STORE_LINK_READY)
        store_link_lost(l, ac->err ? ac->errstr : "closed by the server");
    else
        store_link_failed(l, ac->err ? ac->errstr : "closed by the server");
}

/* The reconnect timer: start a connection attempt. */
static void store_link_connect_cb(EV_P_ ev_timer *w, int revents)
{
    struct store_link *l = w->data;
    struct store *s = l->store;

    if (!store_link_wanted(l)) {
        l->state = STORE_LINK_IDLE;
        return;
    }
    l->state = STORE_LINK_CONNECTING;
    redisAsyncContext *ac = redisAsyncConnect(l->host, l->port);
    if (ac == NULL) {
        store_link_failed(l, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        store_link_failed(l, why);
        return;
    }
    ac->data = l;
    l->ac = ac;
    if (redisLibevAttach(s->loop, ac) != REDIS_OK) {
        store_link_failed(l, "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, store_connect_cb);
    redisAsyncSetDisconnectCallback(ac, store_disconnect_cb);
    ev_timer_set(&l->connect_timer, s->connect_timeout, 0);
    ev_timer_start(s->loop, &l->connect_timer);
}

/* The connect deadline (or a deferred handshake failure). */
static void store_link_deadline_cb(EV_P_ ev_timer *w, int revents)
{
    struct store_link *l = w->data;
    store_link_failed(l, l->state == STORE_LINK_HANDSHAKE && l->handshake_left > 0
                             ? "handshake timed out or failed"
                             : "connect timed out");
}

/* Returns the link to host:port, adding it (IDLE) when new; NULL when
 * STORE_MAX_LINKS are in use or out of memory. */
static struct store_link *store_link_get(struct store *s, const char *host, int port)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (s->links[i]->port == port && strcmp(s->links[i]->host, host) == 0)
            return s->links[i];
    if (s->n_links == STORE_MAX_LINKS || strlen(host) >= RCLUSTER_HOST_MAX)
        return NULL;
    struct store_link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->store = s;
    l->index = s->n_links;
    snprintf(l->host, sizeof(l->host), "%s", host);
    l->port = port;
    snprintf(l->addr, sizeof(l->addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    ev_timer_init(&l->connect_timer, store_link_deadline_cb, 0, 0);
    l->connect_timer.data = l;
    ev_timer_init(&l->retry_timer, store_link_connect_cb, 0, 0);
    l->retry_timer.data = l;
    s->links[s->n_links++] = l;
    return l;
}

/* ---- cluster: slot map ---- */

static void store_slots_set(struct store *s, unsigned slot, struct store_link *l)
{
    uint16_t old = s->slots[slot];

    if (old != 0)
        s->links[old - 1]->n_slots--;
    s->slots[slot] = (uint16_t)(l->index + 1);
    l->n_slots++;
}

struct store_map_build {
    struct store *store;
    uint16_t *slots; /* the new map */
};

static int store_map_range(void *arg, unsigned first, unsigned last,
                           const struct rcluster_node *nodes, size_t n)
{
    struct store_map_build *b = arg;
    struct store_link *l = store_link_get(b->store, nodes[0].host, nodes[0].port);

    if (l == NULL)
        return 0; /* too many nodes: these slots stay unknown, their commands fail */
    for (unsigned i = first; i <= last; i++)
        b->slots[i] = (uint16_t)(l->index + 1);
    return 0;
}

/* Applies a CLUSTER SLOTS reply from `from`. Returns 0 or -EPROTO. */
static int store_map_apply(struct store *s, struct store_link *from, const redisReply *r)
{
    struct store_map_build b = {s, calloc(RCLUSTER_SLOTS, sizeof(uint16_t))};

    if (b.slots == NULL)
        return -ENOMEM;
    int rc = rcluster_slots_walk(r, from->host, store_map_range, &b);
    if (rc >= 0) {
        for (size_t i = 0; i < s->n_links; i++)
            s->links[i]->n_slots = 0;
        memcpy(s->slots, b.slots, RCLUSTER_SLOTS * sizeof(uint16_t));
        for (unsigned i = 0; i < RCLUSTER_SLOTS; i++)
            if (s->slots[i] != 0)
                s->links[s->slots[i] - 1]->n_slots++;
    }
    free(b.slots);
    return rc < 0 ? rc : 0;
}

static void store_refresh_try(struct store *s);

/* Routes the commands that waited for the map. */
static void store_map_dispatch(struct store *s)
{
    struct store_list local;
    struct store_cmd *c;

    store_list_take(&s->wait, &local);
    while ((c = local.head) != NULL) {
        store_list_unlink(c);
        c->waited_map = 1;
        if (store_route(c) < 0)
            store_cmd_finish(c, STORE_UNAVAILABLE, NULL);
    }
}

static void store_refresh_done(struct store *s, int ok)
{
    s->refreshing = 0;
    if (ok) {
        s->refresh_failures = 0;
        s->map_known = 1;
        if (s->refresh_logged)
            log_info("store %s: cluster slot map read", s->name);
        s->refresh_logged = 0;
        store_map_dispatch(s);
        if (s->refresh_again) {
            s->refresh_again = 0;
            store_refresh_soon(s);
        }
        return;
    }
    ev_tstamp delay = store_backoff(s, ++s->refresh_failures);
    if (!s->refresh_logged)
        log_warn("store %s: no cluster node answered CLUSTER SLOTS; retrying in %.0fms", s->name,
                 delay * 1000);
    s->refresh_logged = 1;
    s->refresh_again = 0;
    ev_timer_stop(s->loop, &s->refresh_timer);
    ev_timer_set(&s->refresh_timer, delay, 0);
    ev_timer_start(s->loop, &s->refresh_timer);
    if (!s->map_known)
        store_list_fail(&s->wait, STORE_UNAVAILABLE);
    else
        store_map_dispatch(s);
}

static void store_slots_cb(void *arg, enum store_result result, redisReply *r)
{
    struct store_link *l = arg;
    struct store *s = l->store;

    if (s->freeing)
        return;
    if (result == STORE_OK && store_map_apply(s, l, r) == 0) {
        store_refresh_done(s, 1);
        return;
    }
    if (result == STORE_OK)
        log_warn("store %s: %s answered CLUSTER SLOTS with an unusable reply%s%s", s->name, l->addr,
                 r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    store_refresh_try(s);
}

/* Asks the next node for the slot map; every node once, then back off. */
static void store_refresh_try(struct store *s)
{
    static const char *argv[] = {"CLUSTER", "SLOTS"};
    static const size_t argvlen[] = {7, 5};

    while (s->refresh_tries < s->n_links) {
        struct store_link *l = s->links[s->refresh_next++ % s->n_links];
        s->refresh_tries++;
        if (l->state == STORE_LINK_BACKOFF)
            continue;
        struct store_cmd *c = store_cmd_new(s, 2, argv, argvlen);
        if (c == NULL)
            break;
        c->internal = 1;
        c->cb = store_slots_cb;
        c->arg = l;
        ev_timer_init(&c->timer, store_cmd_timeout_cb, s->connect_timeout + s->command_timeout, 0);
        c->timer.data = c;
        if (store_link_submit(l, c) < 0) {
            c->done = 1;
            store_cmd_maybe_free(c);
            continue;
        }
        ev_timer_start(s->loop, &c->timer);
        return;
    }
    store_refresh_done(s, 0);
}

static void store_refresh_cb(EV_P_ ev_timer *w, int revents)
{
    struct store *s = w->data;

    if (s->refreshing) {
        s->refresh_again = 1;
        return;
    }
    s->refreshing = 1;
    s->refresh_tries = 0;
    store_refresh_try(s);
}

/* Reads the slot map again soon (coalescing requests within a loop turn). */
static void store_refresh_soon(struct store *s)
{
    if (s->freeing)
        return;
    if (s->refreshing) {
        s->refresh_again = 1;
        return;
    }
    if (ev_is_active(&s->refresh_timer))
        return; /* already due, or backing off */
    ev_timer_set(&s->refresh_timer, 0, 0);
    ev_timer_start(s->loop, &s->refresh_timer);
}

/* A MOVED or ASK reply to `c`: resend where it points, within max_redirects. */
static void store_redirect(struct store_cmd *c, redisReply *r)
{
    struct store *s = c->store;
    struct rcluster_redirect rd;

    if (rcluster_redirect_parse(r->str, r->len, &rd) < 0 || c->redirects >= s->max_redirects) {
        store_cmd_finish(c, STORE_ERROR, r);
        return;
    }
    c->redirects++;
    if (rd.host[0] == '\0')
        snprintf(rd.host, sizeof(rd.host), "%s", c->link->host);
    struct store_link *to = store_link_get(s, rd.host, rd.port);
    if (to == NULL) {
        store_cmd_finish(c, STORE_ERROR, r);
        return;
    }
    if (rd.ask) {
        c->asking = 1;
    } else {
        c->asking = 0;
        store_slots_set(s, rd.slot, to);
        store_refresh_soon(s);
    }
    if (store_link_submit(to, c) < 0)
        store_cmd_finish(c, STORE_UNAVAILABLE, NULL);
}

/* ---- routing ---- */

/* A link for a keyless command: a READY owner of slots, else any owner. */
static struct store_link *store_any_link(struct store *s)
{
    struct store_link *fallback = NULL;

    for (size_t i = 0; i < s->n_links; i++) {
        struct store_link *l = s->links[i];
        if (l->n_slots == 0)
            continue;
        if (l->state == STORE_LINK_READY)
            return l;
        if (fallback == NULL)
            fallback = l;
    }
    return fallback;
}

/* Sends or queues `c` where it belongs. Returns 0 or -EAGAIN (unavailable). */
static int store_route(struct store_cmd *c)
{
    struct store *s = c->store;
    struct store_link *l = NULL;

    if (!s->cluster)
        return store_link_submit(s->links[0], c);
    if (s->map_known)
        l = c->has_slot ? (s->slots[c->slot] ? s->links[s->slots[c->slot] - 1] : NULL)
                        : store_any_link(s);
    if (l != NULL)
        return store_link_submit(l, c);
    if (c->waited_map ||
        (!s->refreshing && ev_is_active(&s->refresh_timer) && s->refresh_failures > 0))
        return -EAGAIN; /* no owner after a refresh, or backing off without a map */
    if (s->pending >= s->max_pending)
        return -EAGAIN;
    store_list_push(s, &s->wait, c);
    store_refresh_soon(s);
    return 0;
}

struct store_cmd *store_command(struct store *s, const char *key, size_t keylen, int argc,
                                const char **argv, const size_t *argvlen, store_cb cb, void *arg)
{
    ASSERT(s != NULL && s->magic == STORE_MAGIC);
    if (s->freeing || argc < 1 || argc > STORE_MAX_ARGS || cb == NULL ||
        !store_cmd_allowed(argv[0], argvlen[0]) || s->inflight >= STORE_MAX_INFLIGHT)
        return NULL;
    struct store_cmd *c = store_cmd_new(s, argc, argv, argvlen);
    if (c == NULL)
        return NULL;
    c->cb = cb;
    c->arg = arg;
    if (key != NULL) {
        c->has_slot = 1;
        c->slot = rcluster_slot(key, keylen);
    }
    ev_timer_init(&c->timer, store_cmd_timeout_cb, s->command_timeout, 0);
    c->timer.data = c;
    if (store_route(c) < 0) {
        c->done = 1;
        store_cmd_maybe_free(c);
        return NULL;
    }
    /* started after routing: a refused command never had a timer running */
    ev_timer_start(s->loop, &c->timer);
    return c;
}

void store_cancel(struct store_cmd *c)
{
    if (c == NULL || c->done)
        return;
    ASSERT(c->magic == STORE_CMD_MAGIC);
    c->done = 1;
    ev_timer_stop(c->store->loop, &c->timer);
    store_list_unlink(c);
    store_cmd_maybe_free(c);
}

/* ---- lifetime ---- */

/* Numeric host text of a parsed config address, for hiredis. */
static int store_host_of(const struct cfg_store_server *sv, char *host, int *port)
{
    char serv[8];

    if (getnameinfo((const struct sockaddr *)&sv->addr, sv->addrlen, host, RCLUSTER_HOST_MAX, serv,
                    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return -EINVAL;
    *port = atoi(serv);
    return 0;
}

static int store_copy_cfg(struct store *s, const struct cfg_store *cfg)
{
    snprintf(s->name, sizeof(s->name), "%s", cfg->name);
    s->cluster = cfg->cluster;
    s->connect_timeout = (ev_tstamp)cfg->connect_timeout_ms / 1000.0;
    s->command_timeout = (ev_tstamp)cfg->command_timeout_ms / 1000.0;
    s->backoff_base_ms = cfg->reconnect_base_ms;
    s->backoff_max_ms = cfg->reconnect_max_ms;
    s->database = cfg->database;
    s->max_pending = cfg->max_pending;
    s->max_redirects = cfg->max_redirects;
    if (cfg->password != NULL && (s->password = strdup(cfg->password)) == NULL)
        return -ENOMEM;
    if (cfg->username != NULL && (s->username = strdup(cfg->username)) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_servers; i++) {
        char host[RCLUSTER_HOST_MAX];
        int port;
        if (store_host_of(&cfg->servers[i], host, &port) < 0)
            return -EINVAL;
        if (store_link_get(s, host, port) == NULL)
            return -ENOMEM;
    }
    return 0;
}

struct store *store_new(struct ev_loop *loop, const struct cfg_store *cfg)
{
    struct store *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->magic = STORE_MAGIC;
    s->loop = loop;
    s->rng = ((uint64_t)(uintptr_t)s ^ (uint64_t)(ev_time() * 1e6)) | 1;
    ev_timer_init(&s->refresh_timer, store_refresh_cb, 0, 0);
    s->refresh_timer.data = s;
    if (store_copy_cfg(s, cfg) < 0)
        goto fail;
    if (s->cluster) {
        if ((s->slots = calloc(RCLUSTER_SLOTS, sizeof(uint16_t))) == NULL)
            goto fail;
        store_refresh_soon(s);
    } else {
        struct store_link *l = s->links[0];
        l->state = STORE_LINK_CONNECTING;
        ev_timer_start(loop, &l->retry_timer);
    }
    return s;
fail:
    store_free(s);
    return NULL;
}

void store_free(struct store *s)
{
    if (s == NULL)
        return;
    ASSERT(s->magic == STORE_MAGIC);
    s->freeing = 1;
    ev_timer_stop(s->loop, &s->refresh_timer);
    for (size_t i = 0; i < s->n_links; i++) {
        struct store_link *l = s->links[i];
        ev_timer_stop(s->loop, &l->retry_timer);
        l->state = STORE_LINK_BACKOFF; /* callbacks submitting now are refused */
        store_list_fail(&l->wait, STORE_UNAVAILABLE);
        store_link_close(l);
    }
    store_list_fail(&s->wait, STORE_UNAVAILABLE);
    for (size_t i = 0; i < s->n_links; i++)
        free(s->links[i]);
    free(s->slots);
    free(s->password);
    free(s->username);
    s->magic = 0;
    free(s);
}
