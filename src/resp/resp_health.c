/* resp_health: see resp_health.h.
 *
 *   probe timer (every interval) --in flight still? fail it, close-->
 *     [connect] --> out: PING [INFO replication] | SENTINEL get-master-addr-by-name x n_shards
 *     --read--> in[] --resp_parse (reply mode)--> one verdict per reply, in order
 *
 * One probe per server of each shard (its primary and replicas) and one per
 * redis cluster that has sentinels (it asks one sentinel at a time, the
 * next one after a failure). A probe keeps its connection between rounds
 * and has at most one round in flight: a round not answered within one
 * interval fails and its connection is closed. This file lives in resp/
 * because it speaks RESP (it parses replies with resp_parser); it runs on
 * the main thread beside the HTTP checks of upstream/health.c and never
 * touches a worker's objects: its verdicts reach them through the state's
 * atomics. */
#include "resp/resp_health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "core/units.h"
#include "resp/resp_cmap.h"
#include "resp/resp_parser.h"
#include "upstream/endpoint.h"

#define RESP_PROBE_IN_MAX (16 * 1024)
#define RESP_PROBE_OUT_MAX 4096

/* ---- shared state ------------------------------------------------------- */

static void resp_health_slot_init(struct resp_health_slot *slot, const struct cfg_redis_server *cs)
{
    atomic_init(&slot->up, 1);
    atomic_init(&slot->lag_ok, 1);
    atomic_init(&slot->ewma_us, 0);
    atomic_init(&slot->last_ok_ms, 0);
    memcpy(&slot->addr, &cs->addr, cs->addrlen);
    slot->addrlen = cs->addrlen;
    slot->fails = 0;
}

static void resp_health_state_destroy(struct resp_health_state *st)
{
    if (st->shards)
        for (size_t i = 0; i < st->n_shards; i++)
            free(st->shards[i].replicas);
    free(st->shards);
    resp_cmap_unref(st->cmap);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static struct resp_health_state *resp_health_state_new(const struct cfg_redis_cluster *cc)
{
    struct resp_health_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    atomic_init(&st->refs, 1);
    atomic_init(&st->version, 1);
    pthread_mutex_init(&st->lock, NULL);
    st->cfg = cc;
    st->shards = calloc(cc->n_shards ? cc->n_shards : 1, sizeof(*st->shards));
    if (!st->shards)
        goto fail;
    st->n_shards = cc->n_shards;
    for (size_t i = 0; i < cc->n_shards; i++) {
        const struct cfg_redis_shard *sh = &cc->shards[i];
        struct resp_health_shard *hs = &st->shards[i];
        resp_health_slot_init(&hs->primary, &sh->primary);
        if (sh->n_replicas == 0)
            continue;
        hs->replicas = calloc(sh->n_replicas, sizeof(*hs->replicas));
        if (!hs->replicas)
            goto fail;
        hs->n_replicas = sh->n_replicas;
        for (size_t k = 0; k < sh->n_replicas; k++)
            resp_health_slot_init(&hs->replicas[k], &sh->replicas[k]);
    }
    return st;
fail:
    resp_health_state_destroy(st);
    return NULL;
}

int resp_health_states_new(const struct cfg *cfg, struct resp_health_state ***out)
{
    size_t n = cfg->n_redis_clusters;
    struct resp_health_state **states = calloc(n ? n : 1, sizeof(*states));
    if (!states)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(states[i] = resp_health_state_new(&cfg->redis_clusters[i]))) {
            resp_health_states_free(states, i);
            return -ENOMEM;
        }
    }
    *out = states;
    return 0;
}

void resp_health_states_free(struct resp_health_state **states, size_t n)
{
    if (!states)
        return;
    for (size_t i = 0; i < n; i++)
        resp_health_state_unref(states[i]);
    free(states);
}

void resp_health_state_ref(struct resp_health_state *st)
{
    atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
}

void resp_health_state_unref(struct resp_health_state *st)
{
    if (!st)
        return;
    int before = atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel);
    ASSERT(before >= 1);
    if (before == 1)
        resp_health_state_destroy(st);
}

/* The slot of `old` checking the same address as `slot`, or NULL. */
static const struct resp_health_slot *resp_health_find_slot(const struct resp_health_state *old,
                                                            const struct resp_health_slot *slot)
{
    for (size_t i = 0; i < old->n_shards; i++) {
        const struct resp_health_shard *hs = &old->shards[i];
        if (hs->primary.addrlen == slot->addrlen &&
            memcmp(&hs->primary.addr, &slot->addr, slot->addrlen) == 0)
            return &hs->primary;
        for (size_t k = 0; k < hs->n_replicas; k++)
            if (hs->replicas[k].addrlen == slot->addrlen &&
                memcmp(&hs->replicas[k].addr, &slot->addr, slot->addrlen) == 0)
                return &hs->replicas[k];
    }
    return NULL;
}

static void resp_health_copy_slot(struct resp_health_slot *to, const struct resp_health_state *old)
{
    const struct resp_health_slot *from = resp_health_find_slot(old, to);
    if (!from)
        return;
    atomic_store(&to->up, atomic_load(&from->up));
    atomic_store(&to->lag_ok, atomic_load(&from->lag_ok));
    atomic_store(&to->ewma_us, atomic_load(&from->ewma_us));
    atomic_store(&to->last_ok_ms, atomic_load(&from->last_ok_ms));
    to->fails = from->fails;
}

/* Shard i of st: takes the primary old's sentinel named for the same master. */
static void resp_health_inherit_sentinel(struct resp_health_state *st, size_t i,
                                         struct resp_health_state *old)
{
    const struct cfg_redis_cluster *cc = st->cfg, *oc = old->cfg;
    char addr[RESP_HEALTH_ADDR_MAX];
    if (!cc->sentinel_masters || !oc->sentinel_masters)
        return;
    for (size_t j = 0; j < oc->n_shards; j++) {
        if (strcmp(oc->sentinel_masters[j], cc->sentinel_masters[i]) != 0)
            continue;
        resp_health_sentinel_addr(old, j, addr, sizeof(addr));
        struct resp_health_slot *p = &st->shards[i].primary;
        if (!addr[0] || units_parse_addr(addr, &p->addr, &p->addrlen) < 0)
            return;
        /* only this thread writes the new state, and no worker reads it yet */
        snprintf(st->shards[i].sentinel_addr, sizeof(st->shards[i].sentinel_addr), "%s", addr);
        return;
    }
}

void resp_health_states_inherit(struct resp_health_state **states, size_t n,
                                struct resp_health_state *const *old, size_t old_n)
{
    for (size_t c = 0; c < n; c++) {
        struct resp_health_state *st = states[c], *prev = NULL;
        for (size_t j = 0; j < old_n && !prev; j++)
            if (strcmp(old[j]->cfg->name, st->cfg->name) == 0)
                prev = old[j];
        if (!prev)
            continue;
        if (st->cfg->n_seeds > 0 && prev->cfg->n_seeds > 0) /* the same Redis Cluster, surely */
            st->cmap = resp_cmap_get(prev);
        for (size_t i = 0; i < st->cfg->n_shards; i++) {
            resp_health_inherit_sentinel(st, i, prev);
            resp_health_copy_slot(&st->shards[i].primary, prev);
            for (size_t k = 0; k < st->cfg->shards[i].n_replicas; k++)
                resp_health_copy_slot(&st->shards[i].replicas[k], prev);
        }
    }
}

void resp_health_sentinel_addr(struct resp_health_state *st, size_t i, char *out, size_t size)
{
    pthread_mutex_lock(&st->lock);
    snprintf(out, size, "%s", st->shards[i].sentinel_addr);
    pthread_mutex_unlock(&st->lock);
}

int resp_health_usable(const struct resp_health_slot *slot, uint64_t failed_ms)
{
    if (!atomic_load_explicit(&slot->up, memory_order_relaxed))
        return 0;
    return failed_ms == 0 || atomic_load_explicit(&slot->last_ok_ms, memory_order_relaxed) > failed_ms;
}

/* ---- probes (main thread) ------------------------------------------------ */

enum resp_probe_kind { RESP_PROBE_SERVER, RESP_PROBE_SENTINEL };
enum resp_probe_phase { RESP_PROBE_CLOSED, RESP_PROBE_CONNECTING, RESP_PROBE_OPEN };

struct resp_probe {
    ev_timer timer;                /* every interval: a new round (failing one in flight) */
    ev_io io;
    int fd;
    uint8_t kind;                  /* enum resp_probe_kind */
    uint8_t phase;                 /* enum resp_probe_phase */
    uint8_t in_flight;             /* a round waits for replies */
    struct resp_health *h;
    struct resp_health_state *st;
    uint32_t shard;                /* server probe: its shard */
    int32_t replica;               /* server probe: replica index, -1 = the primary */
    struct resp_health_slot *slot; /* server probe: what it writes */
    uint32_t sentinel_next;        /* sentinel probe: index into cfg->sentinels */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char name[RESP_HEALTH_ADDR_MAX];
    uint32_t expect, answered;     /* replies of this round */
    ev_tstamp t_sent;
    size_t out_len, sent, got, parsed, reply_start;
    struct resp_parser parser;
    char out[RESP_PROBE_OUT_MAX];
    char in[RESP_PROBE_IN_MAX + 1];
};

struct resp_health {
    struct ev_loop *loop;
    struct resp_health_state **states; /* one reference each */
    size_t n_states;
    struct resp_probe **probes;
    size_t n_probes;
    struct resp_cmap_fetch **fetches; /* one per Redis Cluster backend */
    size_t n_fetches;
};

static const struct resp_limits resp_probe_limits = {
    .max_bulk_bytes = RESP_PROBE_IN_MAX,
    .max_array_len = 64,
    .max_depth = 4,
    .max_inline_bytes = RESP_PROBE_IN_MAX,
};

static const struct cfg_redis_cluster *resp_probe_cfg(const struct resp_probe *p)
{
    return p->st->cfg;
}

static void resp_probe_close(struct resp_probe *p)
{
    ev_io_stop(p->h->loop, &p->io);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->phase = RESP_PROBE_CLOSED;
    p->in_flight = 0;
}

static void resp_health_bump(struct resp_health_state *st)
{
    atomic_fetch_add_explicit(&st->version, 1, memory_order_release);
}

/* A server probe's round failed (why) or one of its PINGs was answered. */
static void resp_probe_ping_verdict(struct resp_probe *p, int ok, const char *why)
{
    struct resp_health_slot *s = p->slot;
    const struct cfg_redis_cluster *cc = resp_probe_cfg(p);
    if (ok) {
        uint64_t us = (uint64_t)((ev_now(p->h->loop) - p->t_sent) * 1e6) + 1;
        uint64_t e = atomic_load(&s->ewma_us);
        atomic_store(&s->ewma_us, e ? e - e / 8 + us / 8 : us);
        atomic_store(&s->last_ok_ms, endpoint_now_ms());
        s->fails = 0;
        if (!atomic_load(&s->up)) {
            log_info("redis cluster %s: server %s is up", cc->name, p->name);
            atomic_store(&s->up, 1);
            if (p->replica < 0)
                resp_health_bump(p->st);
        }
        return;
    }
    log_debug("redis cluster %s: health check of %s failed: %s", cc->name, p->name, why);
    if (++s->fails < cc->health_fall || !atomic_load(&s->up))
        return;
    log_warn("redis cluster %s: server %s is down: %s (%u consecutive checks failed)", cc->name,
             p->name, why, s->fails);
    atomic_store(&s->up, 0);
    if (p->replica < 0) {
        if (cc->auto_eject)
            log_warn("redis cluster %s: shard '%s' leaves the distribution (auto_eject): its keys "
                     "go to the other shards", cc->name, cc->shards[p->shard].name);
        resp_health_bump(p->st);
    }
}

/* Reads "field:value" out of an INFO text. Returns 0 or -ENOENT. */
static int resp_info_field(const char *text, const char *field, char *out, size_t size)
{
    size_t flen = strlen(field);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            const char *v = line + flen + 1;
            size_t n = strcspn(v, "\r\n");
            if (n >= size)
                n = size - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return 0;
        }
    }
    return -ENOENT;
}

/* A replica's INFO replication (NUL-terminated reply text). */
static void resp_probe_info_verdict(struct resp_probe *p, const char *text)
{
    const struct cfg_redis_cluster *cc = resp_probe_cfg(p);
    char link[32], io[32];
    int lag_ok = resp_info_field(text, "master_link_status", link, sizeof(link)) == 0 &&
                 strcmp(link, "up") == 0;
    if (lag_ok && resp_info_field(text, "master_last_io_seconds_ago", io, sizeof(io)) == 0 &&
        strtoll(io, NULL, 10) > (long long)cc->max_lag_s)
        lag_ok = 0;
    if (lag_ok != atomic_load(&p->slot->lag_ok))
        log_info("redis cluster %s: replica %s %s", cc->name, p->name,
                 lag_ok ? "is in sync again" : "is lagging or its link to the primary is down: "
                                               "reads skip it");
    atomic_store(&p->slot->lag_ok, lag_ok);
}

/* Reads "*2 $n ip $n port" into "ip:port" (IPv6 in brackets). Returns 0, or
 * -EINVAL for anything else (nil: the sentinel does not know the master). */
static int resp_sentinel_reply_addr(const char *text, size_t len, char *out, size_t size)
{
    const char *p = text, *part[2];
    char *end;
    size_t plen[2];
    if (len < 4 || strncmp(p, "*2\r\n", 4) != 0)
        return -EINVAL;
    p += 4;
    for (int i = 0; i < 2; i++) {
        if (*p != '$')
            return -EINVAL;
        unsigned long n = strtoul(p + 1, &end, 10);
        if (strncmp(end, "\r\n", 2) != 0 || n == 0 || n > 200 || (size_t)(end + 2 - text) + n > len)
            return -EINVAL;
        part[i] = end + 2;
        plen[i] = n;
        p = end + 2 + n + 2;
        if ((size_t)(p - text) > len)
            return -EINVAL;
    }
    int v6 = memchr(part[0], ':', plen[0]) != NULL;
    int n = snprintf(out, size, "%s%.*s%s:%.*s", v6 ? "[" : "", (int)plen[0], part[0],
                     v6 ? "]" : "", (int)plen[1], part[1]);
    return n > 0 && (size_t)n < size ? 0 : -EINVAL;
}

static struct resp_probe *resp_health_primary_probe(struct resp_health *h,
                                                    const struct resp_health_state *st, uint32_t shard)
{
    for (size_t i = 0; i < h->n_probes; i++) {
        struct resp_probe *p = h->probes[i];
        if (p->kind == RESP_PROBE_SERVER && p->st == st && p->shard == shard && p->replica < 0)
            return p;
    }
    return NULL;
}

/* Sentinel named `addr` as the primary of shard i: checks it from now on and
 * tells the workers. */
static void resp_health_switch_primary(struct resp_probe *sp, uint32_t i, const char *addr)
{
    struct resp_health_state *st = sp->st;
    const struct cfg_redis_cluster *cc = st->cfg;
    struct resp_health_slot *slot = &st->shards[i].primary;
    struct sockaddr_storage sa;
    socklen_t salen;
    char was[64];
    if (units_parse_addr(addr, &sa, &salen) < 0) {
        log_warn("redis cluster %s: sentinel %s gave master '%s' an address weir cannot use: %s",
                 cc->name, sp->name, cc->sentinel_masters[i], addr);
        return;
    }
    if (slot->addrlen == salen && memcmp(&slot->addr, &sa, salen) == 0)
        return;
    units_format_addr((const struct sockaddr *)&slot->addr, was, sizeof(was));
    log_warn("redis cluster %s: shard '%s' (master '%s') has a new primary %s (was %s), from "
             "sentinel %s", cc->name, cc->shards[i].name, cc->sentinel_masters[i], addr, was, sp->name);
    pthread_mutex_lock(&st->lock);
    snprintf(st->shards[i].sentinel_addr, sizeof(st->shards[i].sentinel_addr), "%s", addr);
    pthread_mutex_unlock(&st->lock);
    memcpy(&slot->addr, &sa, salen);
    slot->addrlen = salen;
    slot->fails = 0;
    atomic_store(&slot->ewma_us, 0);
    atomic_store(&slot->last_ok_ms, 0); /* the old primary's passes say nothing of this one */
    atomic_store(&slot->up, 1); /* as a new server: up until its checks fail */
    struct resp_probe *pp = resp_health_primary_probe(sp->h, st, i);
    if (pp) {
        resp_probe_close(pp);
        memcpy(&pp->addr, &sa, salen);
        pp->addrlen = salen;
        units_format_addr((const struct sockaddr *)&sa, pp->name, sizeof(pp->name));
    }
    resp_health_bump(st);
}

static void resp_probe_sentinel_verdict(struct resp_probe *p, uint32_t i, const char *text,
                                        size_t len, uint8_t type)
{
    const struct cfg_redis_cluster *cc = resp_probe_cfg(p);
    char addr[RESP_HEALTH_ADDR_MAX];
    if (resp_sentinel_reply_addr(text, len, addr, sizeof(addr)) == 0) {
        resp_health_switch_primary(p, i, addr);
        return;
    }
    if (type == '-' || type == '*' || type == '$')
        log_warn("redis cluster %s: sentinel %s does not know master '%s' (shard '%s')", cc->name,
                 p->name, cc->sentinel_masters[i], cc->shards[i].name);
}

/* The round failed: a server probe counts a failed check; a sentinel probe
 * asks the next sentinel next time. The connection is closed. */
static void resp_probe_fail(struct resp_probe *p, const char *why)
{
    resp_probe_close(p);
    if (p->kind == RESP_PROBE_SERVER) {
        resp_probe_ping_verdict(p, 0, why);
        return;
    }
    const struct cfg_redis_cluster *cc = resp_probe_cfg(p);
    log_warn("redis cluster %s: sentinel %s: %s; asking the next one", cc->name, p->name, why);
    p->sentinel_next = (p->sentinel_next + 1) % (uint32_t)cc->n_sentinels;
    const struct cfg_redis_server *next = &cc->sentinels[p->sentinel_next];
    memcpy(&p->addr, &next->addr, next->addrlen);
    p->addrlen = next->addrlen;
    snprintf(p->name, sizeof(p->name), "%s", next->address);
}

/* Reply number p->answered is in[reply_start..parsed) (type: its first
 * byte). Returns 0, or -1 after failing the round. */
static int resp_probe_reply(struct resp_probe *p, uint8_t type)
{
    char *text = p->in + p->reply_start;
    size_t len = p->parsed - p->reply_start;
    uint32_t k = p->answered++;
    char saved = p->in[p->parsed];
    p->in[p->parsed] = 0;
    if (p->kind == RESP_PROBE_SENTINEL) {
        resp_probe_sentinel_verdict(p, k, text, len, type);
    } else if (k == 0) {
        if (type == '-') {
            char why[96];
            snprintf(why, sizeof(why), "PING answered %.*s", (int)strcspn(text, "\r\n"), text);
            p->in[p->parsed] = saved;
            resp_probe_fail(p, why);
            return -1;
        }
        resp_probe_ping_verdict(p, 1, NULL);
    } else if (type == '$') {
        resp_probe_info_verdict(p, text);
    }
    p->in[p->parsed] = saved;
    return 0;
}

/* Parses what was read; gives each complete reply its verdict. */
static void resp_probe_process(struct resp_probe *p)
{
    while (p->parsed < p->got) {
        if (!p->in_flight || p->answered >= p->expect) {
            resp_probe_fail(p, "reply without a request");
            return;
        }
        ssize_t n = resp_parse(&p->parser, p->in + p->parsed, p->got - p->parsed);
        if (n < 0) {
            resp_probe_fail(p, resp_error_text((enum resp_error)p->parser.err));
            return;
        }
        p->parsed += (size_t)n;
        if (!p->parser.done)
            break;
        uint8_t type = p->parser.type;
        resp_parser_reset(&p->parser);
        if (resp_probe_reply(p, type) < 0)
            return;
        p->reply_start = p->parsed;
    }
    if (p->in_flight && p->answered == p->expect) {
        p->in_flight = 0;
        p->got = p->parsed = p->reply_start = 0;
    } else if (p->got == RESP_PROBE_IN_MAX) {
        resp_probe_fail(p, "reply too large");
    }
}

static void resp_probe_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct resp_probe *p = w->data;
    if (p->phase == RESP_PROBE_CONNECTING) {
        int r = net_connect_result(p->fd);
        if (r != 0) {
            resp_probe_fail(p, strerror(-r));
            return;
        }
        p->phase = RESP_PROBE_OPEN;
    }
    if (p->sent < p->out_len) {
        ssize_t n = send(p->fd, p->out + p->sent, p->out_len - p->sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            resp_probe_fail(p, strerror(errno));
            return;
        }
        if (n > 0)
            p->sent += (size_t)n;
        if (p->sent < p->out_len)
            return;
        ev_io_stop(loop, &p->io);
        ev_io_set(&p->io, p->fd, EV_READ);
        ev_io_start(loop, &p->io);
        return;
    }
    ssize_t n = read(p->fd, p->in + p->got, RESP_PROBE_IN_MAX - p->got);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            resp_probe_fail(p, strerror(errno));
        return;
    }
    if (n == 0) {
        if (p->in_flight)
            resp_probe_fail(p, "closed by the server");
        else
            resp_probe_close(p); /* an idle connection the server closed: reopened next round */
        return;
    }
    p->got += (size_t)n;
    resp_probe_process(p);
}

static int resp_probe_add_cmd(struct resp_probe *p, const char *a, const char *b, const char *c)
{
    const char *argv[3] = { a, b, c };
    int argc = c ? 3 : b ? 2 : 1;
    int n = snprintf(p->out + p->out_len, sizeof(p->out) - p->out_len, "*%d\r\n", argc);
    for (int i = 0; i < argc && n > 0 && p->out_len + (size_t)n < sizeof(p->out); i++)
        n += snprintf(p->out + p->out_len + n, sizeof(p->out) - p->out_len - (size_t)n,
                      "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    if (n <= 0 || p->out_len + (size_t)n >= sizeof(p->out))
        return -ENOSPC;
    p->out_len += (size_t)n;
    p->expect++;
    return 0;
}

/* Writes this round's commands into p->out. Returns 0 or -ENOSPC. */
static int resp_probe_build_round(struct resp_probe *p)
{
    const struct cfg_redis_cluster *cc = resp_probe_cfg(p);
    p->out_len = p->sent = 0;
    p->expect = p->answered = 0;
    if (p->kind == RESP_PROBE_SERVER) {
        if (resp_probe_add_cmd(p, "PING", NULL, NULL) < 0)
            return -ENOSPC;
        return p->replica >= 0 ? resp_probe_add_cmd(p, "INFO", "replication", NULL) : 0;
    }
    for (size_t i = 0; i < cc->n_shards; i++)
        if (resp_probe_add_cmd(p, "SENTINEL", "get-master-addr-by-name", cc->sentinel_masters[i]) < 0)
            return -ENOSPC;
    return 0;
}

static void resp_probe_start_round(struct resp_probe *p)
{
    if (resp_probe_build_round(p) < 0) {
        resp_probe_fail(p, "too many sentinel masters for one round");
        return;
    }
    p->got = p->parsed = p->reply_start = 0;
    resp_parser_reset(&p->parser);
    p->in_flight = 1;
    p->t_sent = ev_now(p->h->loop);
    ev_io_stop(p->h->loop, &p->io);
    if (p->fd < 0) {
        p->fd = net_connect((const struct sockaddr *)&p->addr, p->addrlen);
        if (p->fd < 0) {
            int err = -p->fd;
            p->fd = -1;
            resp_probe_fail(p, strerror(err));
            return;
        }
        p->phase = RESP_PROBE_CONNECTING;
    }
    ev_io_set(&p->io, p->fd, EV_WRITE);
    ev_io_start(p->h->loop, &p->io);
}

static void resp_probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resp_probe *p = w->data;
    if (p->in_flight)
        resp_probe_fail(p, p->phase == RESP_PROBE_CONNECTING ? "connect timeout"
                                                              : "no answer within the interval");
    resp_probe_start_round(p);
}

static struct resp_probe *resp_probe_new(struct resp_health *h, struct resp_health_state *st,
                                         enum resp_probe_kind kind, uint64_t interval_ms)
{
    struct resp_probe *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->h = h;
    p->st = st;
    p->kind = (uint8_t)kind;
    p->fd = -1;
    p->replica = -1;
    resp_parser_init(&p->parser, RESP_MODE_REPLY, &resp_probe_limits, NULL, 0);
    ev_init(&p->io, resp_probe_io_cb);
    p->io.data = p;
    /* the first round soon, then every interval */
    ev_timer_init(&p->timer, resp_probe_timer_cb, 0.05, (double)interval_ms / 1000.0);
    p->timer.data = p;
    return p;
}

static int resp_health_add(struct resp_health *h, struct resp_probe *p)
{
    if (!p)
        return -ENOMEM;
    struct resp_probe **grown = realloc(h->probes, (h->n_probes + 1) * sizeof(*grown));
    if (!grown) {
        free(p);
        return -ENOMEM;
    }
    h->probes = grown;
    h->probes[h->n_probes++] = p;
    return 0;
}

static int resp_health_add_server(struct resp_health *h, struct resp_health_state *st, uint32_t shard,
                                  int32_t replica)
{
    struct resp_probe *p = resp_probe_new(h, st, RESP_PROBE_SERVER, st->cfg->health_interval_ms);
    if (!p)
        return -ENOMEM;
    p->shard = shard;
    p->replica = replica;
    p->slot = replica < 0 ? &st->shards[shard].primary : &st->shards[shard].replicas[replica];
    memcpy(&p->addr, &p->slot->addr, p->slot->addrlen);
    p->addrlen = p->slot->addrlen;
    units_format_addr((const struct sockaddr *)&p->addr, p->name, sizeof(p->name));
    return resp_health_add(h, p);
}

static int resp_health_add_cluster(struct resp_health *h, struct resp_health_state *st)
{
    const struct cfg_redis_cluster *cc = st->cfg;
    for (uint32_t i = 0; i < cc->n_shards; i++) {
        if (resp_health_add_server(h, st, i, -1) < 0)
            return -ENOMEM;
        for (int32_t k = 0; k < (int32_t)cc->shards[i].n_replicas; k++)
            if (resp_health_add_server(h, st, i, k) < 0)
                return -ENOMEM;
    }
    if (cc->n_sentinels == 0)
        return 0;
    struct resp_probe *p = resp_probe_new(h, st, RESP_PROBE_SENTINEL, cc->sentinel_interval_ms);
    if (!p)
        return -ENOMEM;
    memcpy(&p->addr, &cc->sentinels[0].addr, cc->sentinels[0].addrlen);
    p->addrlen = cc->sentinels[0].addrlen;
    snprintf(p->name, sizeof(p->name), "%s", cc->sentinels[0].address);
    return resp_health_add(h, p);
}

struct resp_health *resp_health_new(struct ev_loop *loop, struct resp_health_state *const *states,
                                    size_t n)
{
    struct resp_health *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->loop = loop;
    h->states = calloc(n ? n : 1, sizeof(*h->states));
    if (!h->states)
        goto fail;
    h->fetches = calloc(n ? n : 1, sizeof(*h->fetches));
    if (!h->fetches)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        resp_health_state_ref(states[i]);
        h->states[h->n_states++] = states[i];
        if (resp_health_add_cluster(h, states[i]) < 0)
            goto fail;
        if (states[i]->cfg->n_seeds > 0 &&
            !(h->fetches[h->n_fetches++] = resp_cmap_fetch_new(loop, states[i])))
            goto fail;
    }
    for (size_t i = 0; i < h->n_probes; i++)
        ev_timer_start(loop, &h->probes[i]->timer);
    return h;
fail:
    resp_health_free(h);
    return NULL;
}

void resp_health_free(struct resp_health *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_probes; i++) {
        resp_probe_close(h->probes[i]);
        ev_timer_stop(h->loop, &h->probes[i]->timer);
        free(h->probes[i]);
    }
    free(h->probes);
    for (size_t i = 0; i < h->n_fetches; i++)
        resp_cmap_fetch_free(h->fetches[i]);
    free(h->fetches);
    for (size_t i = 0; i < h->n_states; i++)
        resp_health_state_unref(h->states[i]);
    free(h->states);
    free(h);
}
