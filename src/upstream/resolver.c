/* resolver: see resolver.h.
 *
 *   interval timer -> round: for each record type (A, then AAAA with
 *   family any) -> query server 0 (UDP, connected socket) -> answer |
 *   timeout -> next attempt (each server twice, in order) -> all types
 *   done -> compare with the name's items in the topology -> changed()
 *
 *   an SRV name (resolve.srv): SRV query -> the records of the lowest
 *   priority -> targets whose addresses the additional section holds are
 *   done; each other target gets its A (and AAAA) queries as above -> the
 *   addresses, each with its record's port and weight, go to the topology
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
#define RESOLVER_MAX_TARGETS 32    /* SRV records of the chosen priority kept */

/* An address of a round, with the port and weight its endpoint gets. */
struct resolver_found {
    struct dns_addr a;
    uint16_t port;
    uint32_t weight;
};

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
    struct resolver_found found[DNS_MAX_ADDRS];
    size_t n_found;
    /* an SRV name: host is the service name, address the same */
    int srv;
    int srv_done;                  /* the SRV query of this round is answered */
    struct dns_srv targets[RESOLVER_MAX_TARGETS];
    uint8_t target_done[RESOLVER_MAX_TARGETS]; /* its addresses came with the SRV answer */
    size_t n_targets, target_i;
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

/* The query the round is at: the SRV question, or a type for the name (or
 * for the current SRV target). */
static const char *resolver_qname(const struct resolver_name *n)
{
    return n->srv && n->srv_done ? n->targets[n->target_i].target : n->host;
}

static uint16_t resolver_qtype(const struct resolver_name *n)
{
    return n->srv && !n->srv_done ? DNS_TYPE_SRV : resolver_type(n, n->type_i);
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
    for (size_t i = 0; i < n->n_found; i++) { /* the port of the endpoint */
        struct dns_addr *a = &n->found[i].a;
        if (a->addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&a->addr)->sin_port = htons(n->found[i].port);
        else
            ((struct sockaddr_in6 *)&a->addr)->sin6_port = htons(n->found[i].port);
    }
    for (size_t i = 0; i < t->n;) { /* gone from the answer */
        struct topology_item *it = &t->items[i];
        int keep = 1;
        if (it->dns && strcmp(it->dns, n->address) == 0 && strcmp(it->cluster, n->cluster) == 0) {
            keep = 0;
            for (size_t k = 0; k < n->n_found && !keep; k++) {
                keep = cfg_same_addr(&n->found[k].a.addr, n->found[k].a.addrlen, &it->addr,
                                     it->addrlen);
                if (keep && n->srv && it->weight != (int)n->found[k].weight) {
                    log_info("cluster %s: %s gives %s weight %u", n->cluster, n->address,
                             it->address, n->found[k].weight);
                    it->weight = (int)n->found[k].weight; /* SRV weights follow the answer */
                    changed = 1;
                }
            }
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
        const struct dns_addr *a = &n->found[k].a;
        if (topology_find(t, n->cluster, &a->addr, a->addrlen))
            continue; /* ours already, or the API's / another name's: not twice */
        char text[64];
        units_format_addr((const struct sockaddr *)&a->addr, text, sizeof(text));
        struct topology_item *it = topology_get(t, n->cluster, text, &a->addr, a->addrlen);
        if (!it || !(it->dns = strdup(n->address))) {
            if (it)
                topology_drop(t, it);
            log_error("cluster %s: out of memory adding %s (from %s)", n->cluster, text, n->address);
            continue;
        }
        it->added = 1;
        it->weight = (int)n->found[k].weight;
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

/* An SRV name: moves to the next target that still needs a query (from
 * type_i of target_i on). Returns 0 when there is none. */
static int resolver_next_target(struct resolver_name *n)
{
    while (n->target_i < n->n_targets) {
        if (!n->target_done[n->target_i] && resolver_type(n, n->type_i) != 0)
            return 1;
        n->target_i++;
        n->type_i = 0;
    }
    return 0;
}

/* This query is answered: the next type (or target), or the round is over. */
static void resolver_next_type(struct resolver_name *n)
{
    resolver_close(n);
    n->attempt = 0;
    if (n->srv && !n->srv_done) {
        n->srv_done = 1;
        n->type_i = 0;
        n->target_i = 0;
    } else {
        n->type_i++;
    }
    if (n->srv ? !resolver_next_target(n) : resolver_type(n, n->type_i) == 0) {
        resolver_round_end(n);
        return;
    }
    resolver_send(n);
}

/* SRV weight 0 (RFC 2782: rarely chosen) counts as 1; above the most an
 * endpoint may have, as that most. */
static uint32_t resolver_srv_weight(uint16_t w)
{
    return w == 0 ? 1 : w > CFG_MAX_WEIGHT ? CFG_MAX_WEIGHT : w;
}

/* Appends the addresses a[0..k) found for a target (or the name) with the
 * port and weight they get. */
static void resolver_found_add(struct resolver_name *n, const struct dns_addr *a, size_t k,
                               uint16_t port, uint32_t weight)
{
    for (size_t i = 0; i < k && n->n_found < DNS_MAX_ADDRS; i++) {
        struct resolver_found *f = &n->found[n->n_found++];
        f->a = a[i];
        f->port = port;
        f->weight = weight;
    }
}

/* Reads an SRV answer: keeps the records of the lowest priority that name
 * a target, and takes the addresses the answer carries for them. Returns
 * the RCODE or -1. */
static int resolver_take_srv(struct resolver_name *n, const uint8_t *msg, size_t len)
{
    struct dns_srv recs[RESOLVER_MAX_TARGETS * 2];
    size_t nr = 0;
    int rcode = dns_parse_srv(msg, len, n->id, n->host, recs, &nr, RESOLVER_MAX_TARGETS * 2);
    if (rcode != 0)
        return rcode;
    uint32_t best = UINT32_MAX;
    for (size_t i = 0; i < nr; i++)
        if (recs[i].target[0] && recs[i].priority < best)
            best = recs[i].priority;
    n->n_targets = 0;
    for (size_t i = 0; i < nr && n->n_targets < RESOLVER_MAX_TARGETS; i++) {
        if (!recs[i].target[0] || recs[i].priority != best ||
            !dns_query_name_ok(recs[i].target, strlen(recs[i].target)))
            continue;
        size_t t = n->n_targets++;
        n->targets[t] = recs[i];
        n->target_done[t] = 0;
        for (int ti = 0; resolver_type(n, ti) != 0; ti++) {
            struct dns_addr a[DNS_MAX_ADDRS];
            size_t k = 0;
            if (dns_parse_owned(msg, len, n->id, n->host, DNS_TYPE_SRV, recs[i].target,
                                resolver_type(n, ti), a, &k, DNS_MAX_ADDRS) < 0)
                return -1;
            resolver_found_add(n, a, k, recs[i].port, resolver_srv_weight(recs[i].weight));
            n->target_done[t] |= k > 0;
        }
    }
    return 0;
}

/* Reads an answer to the current A / AAAA query. Returns the RCODE or -1. */
static int resolver_take_addrs(struct resolver_name *n, const uint8_t *msg, size_t len)
{
    struct dns_addr a[DNS_MAX_ADDRS];
    size_t k = 0;
    int rcode = dns_parse_answer(msg, len, n->id, resolver_qname(n), resolver_qtype(n), a, &k,
                                 DNS_MAX_ADDRS);
    if (rcode < 0)
        return rcode;
    if (n->srv) {
        const struct dns_srv *t = &n->targets[n->target_i];
        resolver_found_add(n, a, k, t->port, resolver_srv_weight(t->weight));
    } else {
        resolver_found_add(n, a, k, n->port, n->weight);
    }
    return rcode;
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
    int rcode = resolver_qtype(n) == DNS_TYPE_SRV ? resolver_take_srv(n, msg, (size_t)len)
                                                  : resolver_take_addrs(n, msg, (size_t)len);
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
    int qlen = dns_build_query(q, sizeof(q), n->id, resolver_qname(n), resolver_qtype(n));
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
    n->srv_done = 0;
    n->n_targets = 0;
    n->target_i = 0;
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

/* A new name of cluster `cluster`: endpoint `address` (host:port) or, with
 * srv, the SRV name (address == host). */
static struct resolver_name *resolver_add(struct resolver *r, const char *cluster,
                                          const char *address, const char *host, uint16_t port,
                                          int srv)
{
    struct resolver_name *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->r = r;
    n->fd = -1;
    n->srv = srv;
    n->cluster = strdup(cluster);
    n->address = strdup(address);
    n->host = strdup(host);
    if (!n->cluster || !n->address || !n->host) {
        free(n->cluster);
        free(n->address);
        free(n->host);
        free(n);
        return NULL;
    }
    n->port = port;
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

/* Keeps (or starts) the name `address` of cluster cc. Returns 1 when kept
 * or started, 0 when memory is short; *wait_s grows to a new name's
 * longest first round. */
static int resolver_keep(struct resolver *r, const struct cfg_cluster *cc, const char *address,
                         const char *host, uint16_t port, int srv, double *wait_s)
{
    struct resolver_name *n = resolver_find(r, cc->name, address);
    int fresh = n == NULL;
    if (!n && !(n = resolver_add(r, cc->name, address, host, port, srv))) {
        log_error("cluster %s: out of memory resolving %s", cc->name, address);
        return 0;
    }
    n->seen = 1;
    n->cfg = cc->resolve;
    n->cfg.srv = NULL; /* the cfg may go before n: n->host is its own copy */
    if (fresh) {
        /* an SRV name: its query, then up to two per target */
        double queries = srv ? 3 : 1;
        double w = (double)n->cfg.timeout_ms / 1000.0 * RESOLVER_ATTEMPTS *
                   (double)resolver_n_servers(n) * queries;
        *wait_s = w > *wait_s ? w : *wait_s;
        resolver_round_cb(r->loop, &n->interval, 0);
    }
    return 1;
}

size_t resolver_sync(struct resolver *r, const struct cfg *cfg, int wait)
{
    for (struct resolver_name *n = r->names; n; n = n->next)
        n->seen = 0;
    size_t count = 0;
    double wait_s = 0;
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        const struct cfg_cluster *cc = &cfg->clusters[i];
        if (cc->resolve.srv && resolver_keep(r, cc, cc->resolve.srv, cc->resolve.srv, 0, 1,
                                             &wait_s))
            count++;
        for (size_t e = 0; e < cc->n_endpoints; e++) {
            const struct cfg_endpoint *ce = &cc->endpoints[e];
            if (!ce->host || !resolver_keep(r, cc, ce->address, ce->host, ce->port, 0, &wait_s))
                continue;
            struct resolver_name *n = resolver_find(r, cc->name, ce->address);
            n->weight = ce->weight;
            n->drain = ce->drain;
            count++;
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
