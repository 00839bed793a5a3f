/* resolver: see resolver.h.
 *
 *   interval timer -> round: for each record type (A, then AAAA with
 *   family any) -> query server 0 (UDP, connected socket) -> answer |
 *   timeout -> next attempt (each server twice, in order) -> all types
 *   done -> compare with the name's items in the topology -> changed()
 *
 * One name is one struct resolver_name with its own socket and timers; a
 * name never has more than one query outstanding. Query ids are random
 * and the answer must repeat our question, so a stray datagram is
 * ignored. */
#include "upstream/resolver.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config_parse.h"
#include "core/dns.h"
#include "core/log.h"
#include "core/units.h"
#include "server/config.h"
#include "upstream/topology.h"

#define RESOLVER_ATTEMPTS 2        /* per server per type */

struct resolver_name {
    struct resolver *r;
    char *cluster;
    char *address;                 /* "name:port", the endpoint as written */
    char *host;
    uint16_t port;
    uint32_t weight;
    int drain;
    struct cfg_resolve cfg;
    ev_timer interval;             /* next round */
    ev_timer timeout;              /* the query in flight */
    ev_io io;
    int fd;
    uint16_t id;
    int type_i;                    /* index into the round's types */
    unsigned attempt;              /* over servers x RESOLVER_ATTEMPTS */
    int round_failed;
    int done_once;                 /* a first round has ended */
    int seen;                      /* mark for resolver_sync */
    struct dns_addr found[DNS_MAX_ADDRS];
    size_t n_found;
    int logged_failure;
    struct resolver_name *next;
};

struct resolver {
    struct ev_loop *loop;
    struct topology *topo;
    void (*changed)(void *arg);
    void *arg;
    struct resolver_name *names;
    struct sockaddr_storage sys_servers[CFG_MAX_RESOLVE_SERVERS];
    socklen_t sys_lens[CFG_MAX_RESOLVE_SERVERS];
    size_t n_sys;
    uint64_t rng;
};

/* The nameservers of /etc/resolv.conf (port 53), or 127.0.0.1:53. */
static void resolver_system_servers(struct resolver *r)
{
    FILE *f = fopen("/etc/resolv.conf", "r");
    char line[256];
    while (f && fgets(line, sizeof(line), f) && r->n_sys < CFG_MAX_RESOLVE_SERVERS) {
        char ip[128], text[160];
        if (sscanf(line, "nameserver %127s", ip) != 1)
            continue;
        snprintf(text, sizeof(text), strchr(ip, ':') ? "[%s]:53" : "%s:53", ip);
        if (units_parse_addr(text, &r->sys_servers[r->n_sys], &r->sys_lens[r->n_sys]) == 0)
            r->n_sys++;
    }
    if (f)
        fclose(f);
    if (r->n_sys == 0 &&
        units_parse_addr("127.0.0.1:53", &r->sys_servers[0], &r->sys_lens[0]) == 0)
        r->n_sys = 1;
}

static uint16_t resolver_rand16(struct resolver *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return (uint16_t)(r->rng >> 16);
}

static size_t resolver_n_servers(const struct resolver_name *n)
{
    return n->cfg.n_servers ? n->cfg.n_servers : n->r->n_sys;
}

static const struct sockaddr *resolver_server(const struct resolver_name *n, size_t i,
                                              socklen_t *len)
{
    if (n->cfg.n_servers) {
        *len = n->cfg.server_lens[i];
        return (const struct sockaddr *)&n->cfg.servers[i];
    }
    *len = n->r->sys_lens[i];
    return (const struct sockaddr *)&n->r->sys_servers[i];
}

static uint16_t resolver_type(const struct resolver_name *n, int i)
{
    if (n->cfg.family == CFG_RESOLVE_IPV6)
        return i == 0 ? DNS_TYPE_AAAA : 0;
    if (n->cfg.family == CFG_RESOLVE_ANY)
        return i == 0 ? DNS_TYPE_A : i == 1 ? DNS_TYPE_AAAA : 0;
    return i == 0 ? DNS_TYPE_A : 0;
}

static void resolver_close(struct resolver_name *n)
{
    ev_io_stop(n->r->loop, &n->io);
    ev_timer_stop(n->r->loop, &n->timeout);
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}

/* ---- applying a round --------------------------------------------------- */

/* Makes the topology's items of n exactly the addresses found. Returns
 * whether anything changed. */
static int resolver_apply(struct resolver_name *n)
{
    struct topology *t = n->r->topo;
    int changed = 0;
    for (size_t i = 0; i < n->n_found; i++) /* the port of the endpoint */
        if (n->found[i].addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&n->found[i].addr)->sin_port = htons(n->port);
        else
            ((struct sockaddr_in6 *)&n->found[i].addr)->sin6_port = htons(n->port);
    for (size_t i = 0; i < t->n;) { /* gone from the answer */
        struct topology_item *it = &t->items[i];
        int keep = 1;
        if (it->dns && strcmp(it->dns, n->address) == 0 && strcmp(it->cluster, n->cluster) == 0) {
            keep = 0;
            for (size_t k = 0; k < n->n_found && !keep; k++)
                keep = cfg_same_addr(&n->found[k].addr, n->found[k].addrlen, &it->addr, it->addrlen);
        }
        if (keep) {
            i++;
            continue;
        }
        log_info("cluster %s: %s no longer resolves to %s; removed", n->cluster, n->address,
                 it->address);
        topology_drop(t, it);
        changed = 1;
    }
    for (size_t k = 0; k < n->n_found; k++) { /* new in the answer */
        if (topology_find(t, n->cluster, &n->found[k].addr, n->found[k].addrlen))
            continue; /* ours already, or the API's / another name's: not twice */
        char text[64];
        units_format_addr((const struct sockaddr *)&n->found[k].addr, text, sizeof(text));
        struct topology_item *it = topology_get(t, n->cluster, text, &n->found[k].addr,
                                                n->found[k].addrlen);
        if (!it || !(it->dns = strdup(n->address))) {
            if (it)
                topology_drop(t, it);
            log_error("cluster %s: out of memory adding %s (from %s)", n->cluster, text, n->address);
            continue;
        }
        it->added = 1;
        it->weight = (int)n->weight;
        it->drain = n->drain;
        log_info("cluster %s: %s resolves to %s; added", n->cluster, n->address, text);
        changed = 1;
    }
    return changed;
}

static void resolver_round_end(struct resolver_name *n)
{
    resolver_close(n);
    n->done_once = 1;
    if (n->round_failed) {
        if (!n->logged_failure)
            log_warn("cluster %s: cannot resolve %s (no answer from %zu DNS server(s)); keeping "
                     "its last addresses", n->cluster, n->address, resolver_n_servers(n));
        n->logged_failure = 1;
    } else {
        n->logged_failure = 0;
        if (resolver_apply(n) && n->r->changed)
            n->r->changed(n->r->arg);
    }
    n->interval.repeat = (double)n->cfg.interval_ms / 1000.0;
    ev_timer_again(n->r->loop, &n->interval);
}

/* ---- one query ----------------------------------------------------------- */

static void resolver_send(struct resolver_name *n);

/* The current query failed: the next attempt, or the round failed. */
static void resolver_retry(struct resolver_name *n)
{
    resolver_close(n);
    if (++n->attempt >= resolver_n_servers(n) * RESOLVER_ATTEMPTS) {
        n->round_failed = 1;
        resolver_round_end(n);
        return;
    }
    resolver_send(n);
}

/* This type is answered: the next type, or the round is over. */
static void resolver_next_type(struct resolver_name *n)
{
    resolver_close(n);
    n->type_i++;
    n->attempt = 0;
    if (resolver_type(n, n->type_i) == 0) {
        resolver_round_end(n);
        return;
    }
    resolver_send(n);
}

static void resolver_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct resolver_name *n = w->data;
    uint8_t msg[DNS_MAX_MSG];
    ssize_t len = recv(n->fd, msg, sizeof(msg), 0);
    if (len < 0) {
        if (errno != EAGAIN && errno != EINTR)
            resolver_retry(n); /* e.g. ECONNREFUSED: nothing listens there */
        return;
    }
    size_t before = n->n_found;
    int rcode = dns_parse_answer(msg, (size_t)len, n->id, n->host, resolver_type(n, n->type_i),
                                 n->found, &n->n_found, DNS_MAX_ADDRS);
    if (rcode < 0) {
        n->n_found = before;
        return; /* not an answer to our query: keep waiting */
    }
    if (rcode == 0 || rcode == 3) { /* NOERROR (maybe empty) or NXDOMAIN */
        resolver_next_type(n);
        return;
    }
    n->n_found = before;
    resolver_retry(n); /* SERVFAIL, REFUSED...: another server may know */
}

static void resolver_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    resolver_retry(w->data);
}

static void resolver_send(struct resolver_name *n)
{
    socklen_t len;
    const struct sockaddr *server = resolver_server(n, n->attempt % resolver_n_servers(n), &len);
    uint8_t q[512];
    n->id = resolver_rand16(n->r);
    int qlen = dns_build_query(q, sizeof(q), n->id, n->host, resolver_type(n, n->type_i));
    n->fd = socket(server->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (qlen < 0 || n->fd < 0 || connect(n->fd, server, len) != 0 ||
        send(n->fd, q, (size_t)qlen, 0) != qlen) {
        /* try the next server on the next loop turn, not recursively */
        if (n->fd >= 0)
            close(n->fd);
        n->fd = -1;
        ev_timer_set(&n->timeout, 0.001, 0);
        ev_timer_start(n->r->loop, &n->timeout);
        return;
    }
    ev_io_set(&n->io, n->fd, EV_READ);
    ev_io_start(n->r->loop, &n->io);
    ev_timer_set(&n->timeout, (double)n->cfg.timeout_ms / 1000.0, 0);
    ev_timer_start(n->r->loop, &n->timeout);
}

static void resolver_round_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resolver_name *n = w->data;
    ev_timer_stop(loop, &n->interval);
    if (n->fd >= 0)
        return; /* a round is still running */
    n->type_i = 0;
    n->attempt = 0;
    n->round_failed = 0;
    n->n_found = 0;
    resolver_send(n);
}

/* ---- names ------------------------------------------------------------- */

static void resolver_name_free(struct resolver_name *n)
{
    resolver_close(n);
    ev_timer_stop(n->r->loop, &n->interval);
    free(n->cluster);
    free(n->address);
    free(n->host);
    free(n);
}

static struct resolver_name *resolver_find(struct resolver *r, const char *cluster,
                                           const char *address)
{
    for (struct resolver_name *n = r->names; n; n = n->next)
        if (strcmp(n->cluster, cluster) == 0 && strcmp(n->address, address) == 0)
            return n;
    return NULL;
}

static struct resolver_name *resolver_add(struct resolver *r, const struct cfg_cluster *cc,
                                          const struct cfg_endpoint *ce)
{
    struct resolver_name *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->r = r;
    n->fd = -1;
    n->cluster = strdup(cc->name);
    n->address = strdup(ce->address);
    n->host = strdup(ce->host);
    if (!n->cluster || !n->address || !n->host) {
        free(n->cluster);
        free(n->address);
        free(n->host);
        free(n);
        return NULL;
    }
    n->port = ce->port;
    ev_init(&n->interval, resolver_round_cb);
    n->interval.data = n;
    ev_init(&n->timeout, resolver_timeout_cb);
    n->timeout.data = n;
    ev_init(&n->io, resolver_read_cb);
    n->io.data = n;
    n->next = r->names;
    r->names = n;
    return n;
}

struct resolver *resolver_new(struct ev_loop *loop, struct topology *topo,
                              void (*changed)(void *arg), void *arg)
{
    struct resolver *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->topo = topo;
    r->changed = changed;
    r->arg = arg;
    r->rng = (uint64_t)(uintptr_t)r ^ (uint64_t)ev_time() * 1000003u ^ 0x9e3779b97f4a7c15ULL;
    resolver_system_servers(r);
    return r;
}

size_t resolver_sync(struct resolver *r, const struct cfg *cfg, int wait)
{
    for (struct resolver_name *n = r->names; n; n = n->next)
        n->seen = 0;
    size_t count = 0;
    double wait_s = 0;
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        const struct cfg_cluster *cc = &cfg->clusters[i];
        for (size_t e = 0; e < cc->n_endpoints; e++) {
            const struct cfg_endpoint *ce = &cc->endpoints[e];
            if (!ce->host)
                continue;
            struct resolver_name *n = resolver_find(r, cc->name, ce->address);
            int fresh = n == NULL;
            if (!n && !(n = resolver_add(r, cc, ce))) {
                log_error("cluster %s: out of memory resolving %s", cc->name, ce->address);
                continue;
            }
            n->seen = 1;
            n->weight = ce->weight;
            n->drain = ce->drain;
            n->cfg = cc->resolve;
            count++;
            if (fresh) {
                double w = (double)n->cfg.timeout_ms / 1000.0 * RESOLVER_ATTEMPTS *
                           (double)resolver_n_servers(n);
                wait_s = w > wait_s ? w : wait_s;
                resolver_round_cb(r->loop, &n->interval, 0);
            }
        }
    }
    for (struct resolver_name **pp = &r->names; *pp;) {
        struct resolver_name *n = *pp;
        if (n->seen) {
            pp = &n->next;
            continue;
        }
        *pp = n->next;
        resolver_name_free(n);
    }
    if (!wait)
        return count;
    /* the first round of new names, before the snapshot is built */
    ev_tstamp until = ev_time() + wait_s + 0.05;
    void (*changed)(void *) = r->changed;
    r->changed = NULL; /* the caller builds the snapshot itself */
    for (;;) {
        int pending = 0;
        for (struct resolver_name *n = r->names; n; n = n->next)
            pending |= !n->done_once;
        if (!pending || ev_time() > until)
            break;
        ev_run(r->loop, EVRUN_ONCE);
    }
    r->changed = changed;
    return count;
}

void resolver_free(struct resolver *r)
{
    if (!r)
        return;
    while (r->names) {
        struct resolver_name *n = r->names;
        r->names = n->next;
        resolver_name_free(n);
    }
    free(r);
}
