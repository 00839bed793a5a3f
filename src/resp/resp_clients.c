/* resp_clients: see resp_clients.h. */
#include "resp/resp_clients.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "resp/resp_cmd.h"

static pthread_mutex_t resp_clients_lock = PTHREAD_MUTEX_INITIALIZER;
static struct resp_client *resp_clients_head, *resp_clients_tail;

/* "ip:port" of a socket address ("[v6]:port" is Redis's "v6:port"). */
static void resp_clients_fmt(const struct sockaddr_storage *ss, char *out, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, size, "%s:%u", ip, port);
}

void resp_clients_add(struct resp_client *c, uint64_t id, int fd, struct ev_loop *loop,
                      ev_async *async, uint64_t now_ms)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->fd = fd;
    c->loop = loop;
    c->async = async;
    c->created_ms = now_ms;
    atomic_store(&c->last_ms, now_ms);
    atomic_store(&c->multi, -1);
    atomic_store(&c->resp, 2);
    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        memset(&ss, 0, sizeof(ss));
    resp_clients_fmt(&ss, c->addr, sizeof(c->addr));
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        memset(&ss, 0, sizeof(ss));
    resp_clients_fmt(&ss, c->laddr, sizeof(c->laddr));
    pthread_mutex_lock(&resp_clients_lock);
    c->prev = resp_clients_tail;
    if (resp_clients_tail)
        resp_clients_tail->next = c;
    else
        resp_clients_head = c;
    resp_clients_tail = c;
    pthread_mutex_unlock(&resp_clients_lock);
}

void resp_clients_remove(struct resp_client *c)
{
    pthread_mutex_lock(&resp_clients_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        resp_clients_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        resp_clients_tail = c->prev;
    c->prev = c->next = NULL;
    free(c->name);
    c->name = NULL;
    pthread_mutex_unlock(&resp_clients_lock);
}

int resp_clients_set_name(struct resp_client *c, const char *name, size_t len)
{
    char *copy = NULL;
    if (name && len > 0) {
        if (!(copy = malloc(len + 1)))
            return -ENOMEM;
        memcpy(copy, name, len);
        copy[len] = 0;
    }
    pthread_mutex_lock(&resp_clients_lock);
    char *old = c->name;
    c->name = copy;
    pthread_mutex_unlock(&resp_clients_lock);
    free(old);
    return 0;
}

void resp_clients_note(struct resp_client *c, const struct resp_cmd *cmd, const char *sub,
                       size_t sub_len, uint64_t now_ms)
{
    atomic_store_explicit(&c->last_ms, now_ms, memory_order_relaxed);
    atomic_store_explicit(&c->cmd, cmd, memory_order_relaxed);
    if (!sub)
        return;
    char packed[16] = { 0 };
    uint64_t w[2];
    for (size_t i = 0; i < sub_len && i < sizeof(packed) - 1; i++)
        packed[i] = (char)(sub[i] >= 'A' && sub[i] <= 'Z' ? sub[i] - 'A' + 'a' : sub[i]);
    memcpy(w, packed, sizeof(w));
    atomic_store_explicit(&c->sub[0], w[0], memory_order_relaxed);
    atomic_store_explicit(&c->sub[1], w[1], memory_order_relaxed);
}

/* Commands shown with their subcommand ("client|list"), as Redis 7. */
static int resp_clients_container(const struct resp_cmd *cmd)
{
    static const char *const names[] = { "client", "config", "command", "object", "memory",
                                         "xinfo", "xgroup", "acl", "cluster", "script",
                                         "function", "latency", "module", "pubsub", "slowlog" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(cmd->name, names[i]) == 0)
            return 1;
    return 0;
}

size_t resp_clients_line(const struct resp_client *c, uint64_t now_ms, char *buf, size_t size)
{
    const struct resp_cmd *cmd = atomic_load_explicit(&c->cmd, memory_order_relaxed);
    char cmdname[64] = "NULL", flags[8];
    uint64_t last = atomic_load_explicit(&c->last_ms, memory_order_relaxed);
    int32_t multi = atomic_load_explicit(&c->multi, memory_order_relaxed);
    int n = 0;
    if (multi >= 0)
        flags[n++] = 'x';
    if (atomic_load_explicit(&c->blocked, memory_order_relaxed) > 0)
        flags[n++] = 'b';
    if (n == 0)
        flags[n++] = 'N';
    flags[n] = 0;
    if (cmd && resp_clients_container(cmd)) {
        uint64_t w[2] = { atomic_load_explicit(&c->sub[0], memory_order_relaxed),
                          atomic_load_explicit(&c->sub[1], memory_order_relaxed) };
        char sub[17];
        memcpy(sub, w, 16);
        sub[16] = 0;
        snprintf(cmdname, sizeof(cmdname), "%s|%s", cmd->name, sub);
    } else if (cmd) {
        snprintf(cmdname, sizeof(cmdname), "%s", cmd->name);
    }
    int len = snprintf(buf, size, "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%" PRIu64
                       " idle=%" PRIu64 " flags=%s db=0 sub=0 psub=0 ssub=0 multi=%d qbuf=0 "
                       "qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 "
                       "tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d\n",
                       c->id, c->addr, c->laddr, c->fd, c->name ? c->name : "",
                       (now_ms - c->created_ms) / 1000, now_ms > last ? (now_ms - last) / 1000 : 0,
                       flags, multi, cmdname, atomic_load_explicit(&c->resp, memory_order_relaxed));
    if (len < 0)
        return 0;
    return (size_t)len < size ? (size_t)len : size - 1;
}

static int resp_clients_match(const struct resp_client *c, const struct resp_clients_filter *f)
{
    if (f->addr && strcmp(c->addr, f->addr) != 0)
        return 0;
    if (f->laddr && strcmp(c->laddr, f->laddr) != 0)
        return 0;
    if (f->id && c->id != f->id)
        return 0;
    if (f->ids) {
        uint32_t i = 0;
        while (i < f->n_ids && f->ids[i] != c->id)
            i++;
        if (i == f->n_ids)
            return 0;
    }
    return 1;
}

char *resp_clients_list(const struct resp_clients_filter *f, uint64_t now_ms, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *out = malloc(cap), line[1024];
    if (!out)
        return NULL;
    pthread_mutex_lock(&resp_clients_lock);
    for (const struct resp_client *c = resp_clients_head; c; c = c->next) {
        if (!resp_clients_match(c, f))
            continue;
        size_t l = resp_clients_line(c, now_ms, line, sizeof(line));
        if (n + l > cap) {
            char *p = realloc(out, cap * 2 + l);
            if (!p) {
                pthread_mutex_unlock(&resp_clients_lock);
                free(out);
                return NULL;
            }
            out = p;
            cap = cap * 2 + l;
        }
        memcpy(out + n, line, l);
        n += l;
    }
    pthread_mutex_unlock(&resp_clients_lock);
    *len = n;
    return out;
}

uint32_t resp_clients_kill(const struct resp_clients_filter *f, const struct resp_client *self,
                           int *self_hit)
{
    uint32_t n = 0;
    *self_hit = 0;
    pthread_mutex_lock(&resp_clients_lock);
    for (struct resp_client *c = resp_clients_head; c; c = c->next) {
        if (!resp_clients_match(c, f) || (f->skip_id && c->id == f->skip_id))
            continue;
        n++;
        if (c == self) {
            *self_hit = 1;
            continue;
        }
        atomic_store(&c->kill, 1);
        ev_async_send(c->loop, c->async);
    }
    pthread_mutex_unlock(&resp_clients_lock);
    return n;
}

int resp_clients_unblock(uint64_t id, int how)
{
    int hit = 0;
    pthread_mutex_lock(&resp_clients_lock);
    for (struct resp_client *c = resp_clients_head; c; c = c->next) {
        if (c->id != id)
            continue;
        if (atomic_load(&c->blocked) > 0) {
            atomic_store(&c->unblock, how);
            ev_async_send(c->loop, c->async);
            hit = 1;
        }
        break;
    }
    pthread_mutex_unlock(&resp_clients_lock);
    return hit;
}
