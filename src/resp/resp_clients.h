/* resp_clients: every Redis client of the process (all workers), for
 * CLIENT LIST / INFO / KILL / UNBLOCK.
 *
 *   worker A session --owns--> struct resp_client --linked under the lock--> registry
 *   worker B: CLIENT KILL ID 7 --lock, find, set rec->kill--> ev_async_send(A's loop)
 *   worker A: its async callback closes the sessions whose kill is set
 *
 * A session's record lives in the session and is in the registry from its
 * start to its end: registry changes, the name and every read of another
 * worker's record happen under one mutex (administration only: the hot
 * path only stores its last command and time, as relaxed atomics). What
 * must happen to a session (kill, unblock) is only ever done by its own
 * worker, which is told through its ev_async. */
#ifndef WEIR_RESP_CLIENTS_H
#define WEIR_RESP_CLIENTS_H

#include <ev.h>
#include <stdatomic.h>
#include <stdint.h>

struct resp_cmd;

struct resp_client {
    struct resp_client *prev, *next;   /* registry (under the lock) */
    uint64_t id;
    struct ev_loop *loop;              /* the owner's, and its async watcher */
    ev_async *async;
    int fd;
    char addr[64], laddr[64];          /* "ip:port" of the peer / of weir's end */
    uint64_t created_ms;
    char *name;                        /* CLIENT SETNAME, under the lock; NULL none */
    _Atomic uint64_t last_ms;          /* last command */
    _Atomic(const struct resp_cmd *) cmd; /* last command, NULL none yet */
    _Atomic uint64_t sub[2];           /* its subcommand (CLIENT LIST...), 16 bytes, NUL padded */
    _Atomic int32_t multi;             /* commands queued in MULTI, -1 outside */
    _Atomic int32_t blocked;           /* blocking commands waiting */
    _Atomic int resp;                  /* protocol version: 2 or 3 */
    _Atomic int kill;                  /* set by CLIENT KILL: the owner closes the session */
    _Atomic int unblock;               /* set by CLIENT UNBLOCK: 1 timeout, 2 error */
};

/* Fills c's fixed fields (addresses from fd) and adds it to the registry. */
void resp_clients_add(struct resp_client *c, uint64_t id, int fd, struct ev_loop *loop,
                      ev_async *async, uint64_t now_ms);
/* Removes c (and frees its name). */
void resp_clients_remove(struct resp_client *c);
/* Sets c's name (a copy; NULL or "" clears it). Returns 0 or -ENOMEM. */
int resp_clients_set_name(struct resp_client *c, const char *name, size_t len);

/* Records the command being run (its subcommand for container commands). */
void resp_clients_note(struct resp_client *c, const struct resp_cmd *cmd, const char *sub,
                       size_t sub_len, uint64_t now_ms);

/* Who CLIENT KILL / LIST select. */
struct resp_clients_filter {
    const char *addr, *laddr;          /* NUL-terminated, NULL: any */
    uint64_t id;                       /* 0: any */
    const uint64_t *ids;               /* LIST ID ...: n_ids ids, NULL: any */
    uint32_t n_ids;
    uint64_t skip_id;                  /* SKIPME: the asker, 0: none */
};

/* The CLIENT LIST lines ("...\n" each) of the clients f selects, in the
 * order they came (malloc'd, *len bytes). NULL when out of memory. */
char *resp_clients_list(const struct resp_clients_filter *f, uint64_t now_ms, size_t *len);
/* The CLIENT INFO line of c ("...\n"), in buf. Returns its length. */
size_t resp_clients_line(const struct resp_client *c, uint64_t now_ms, char *buf, size_t size);
/* Marks the clients f selects to be closed by their workers (the asker's
 * own record, `self`, is not marked: its caller closes it after the reply)
 * and tells those workers. Returns how many were selected; *self_hit says
 * whether self was. */
uint32_t resp_clients_kill(const struct resp_clients_filter *f, const struct resp_client *self,
                           int *self_hit);
/* CLIENT UNBLOCK: when client `id` waits in a blocking command, asks its
 * worker to end it (how: 1 as a timeout, 2 with an error). Returns 1 when
 * it was waiting, else 0. */
int resp_clients_unblock(uint64_t id, int how);

#endif
