/* store: weir's asynchronous client for shared state in Redis or a Redis
 * Cluster (a `stores:` entry), on one worker's libev loop.
 *
 * One struct store per worker thread and store entry; it is used only from
 * its loop's thread, so nothing locks. A caller submits a command with
 * store_command() and is called back exactly once with a result, unless it
 * cancels the command first. */
#ifndef WEIR_STORE_STORE_H
#define WEIR_STORE_STORE_H

#include <stddef.h>

#include "store/store_cfg.h"

/* Results of a command, names for logs and tests from one list. */
#define STORE_RESULT_LIST(X)                                                                       \
    X(STORE_OK, "OK")                   /* a reply arrived (possibly a Redis error reply) */       \
    X(STORE_UNAVAILABLE, "UNAVAILABLE") /* not connected, connection lost, too many pending */     \
    X(STORE_TIMEOUT, "TIMEOUT")         /* no reply within timeouts.command */                     \
    X(STORE_ERROR, "ERROR")             /* protocol error, too many redirections */
#define STORE_ENUM_MEMBER(e, s) e,
enum store_result { STORE_RESULT_LIST(STORE_ENUM_MEMBER) STORE_RESULT_COUNT };
#undef STORE_ENUM_MEMBER

struct ev_loop;
struct redisReply;
struct store;
struct store_cmd;

/* Called once per command. `reply` is the reply with STORE_OK (and may be
 * an error reply with STORE_ERROR, e.g. the last redirection), else NULL;
 * it is borrowed for the duration of the call only. The handle is invalid
 * once this returns: neither cancel it nor keep it. The callback may submit
 * new commands and cancel other ones, but must not call store_free(). */
typedef void (*store_cb)(void *arg, enum store_result result, struct redisReply *reply);

const char *store_result_name(enum store_result r);

/* Creates a store on `loop` and starts connecting (a single Redis) or
 * reading the slot map (a cluster) at once. Copies what it needs from `cfg`,
 * which the caller may free afterwards. Returns the store (free with
 * store_free()) or NULL when out of memory. */
struct store *store_new(struct ev_loop *loop, const struct cfg_store *cfg);

/* Closes every connection and calls back every command not yet called back
 * or cancelled with STORE_UNAVAILABLE, then frees the store. NULL is a
 * no-op. Not from inside a store callback. */
void store_free(struct store *s);

/* Sends a command (argc arguments argv[i] of argvlen[i] bytes, copied) to
 * the node owning `key` (keylen bytes; NULL: any node, for keyless
 * commands; ignored with a single Redis). Returns a handle for
 * store_cancel(), valid until cb is called; or NULL when the command is
 * refused at once, in which case cb is never called: the store is
 * unavailable (reconnect delay running, max_pending reached, being freed),
 * or the command is malformed or one the store cannot carry (SUBSCRIBE,
 * MONITOR and their kind). */
struct store_cmd *store_command(struct store *s, const char *key, size_t keylen, int argc,
                                const char **argv, const size_t *argvlen, store_cb cb, void *arg);

/* The caller gives up on a command: its callback will not be called. Safe
 * whatever the connection does later (a late reply is dropped). NULL is a
 * no-op. */
void store_cancel(struct store_cmd *cmd);

#endif
