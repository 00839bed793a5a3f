/* resp_pubsub: SUBSCRIBE and its family for one client session.
 *
 *   client SUBSCRIBE a b --> shard(a).pubsub conn: SUBSCRIBE a    (one dedicated connection
 *                        --> shard(b).pubsub conn: SUBSCRIBE b     per shard, made on need)
 *   client PSUBSCRIBE p  --> every shard's pubsub conn: PSUBSCRIBE p
 *   pubsub conns --every message they send (a push)--> resp_pubsub_push --> the client
 *
 * A channel lives on the shard its name hashes to (as a key); a pattern
 * listens on every shard. What the shards send is passed on in arrival
 * order, behind the replies the client already waits for; confirmations
 * ((un)subscribe...) carry weir's own count of the client's subscriptions
 * (as one Redis would), and a pattern's confirmation comes once, not once
 * per shard. A lost pubsub connection closes the client (its subscriptions
 * are gone: it must subscribe again, as after a Redis restart). */
#ifndef WEIR_RESP_PUBSUB_H
#define WEIR_RESP_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

struct resp_session;
struct resp_msg;
struct resp_conn;
struct resp_cmd;
struct resp_arg;

enum resp_sub_kind { RESP_SUB_CHANNEL, RESP_SUB_PATTERN, RESP_SUB_SHARD };

struct resp_sub {
    struct resp_sub *next;
    uint8_t kind;                  /* enum resp_sub_kind */
    uint8_t active;                /* confirmed subscribed */
    uint32_t sub_seen, unsub_seen; /* pattern: confirmations so far, modulo the shards */
    size_t len;
    char name[];
};

struct resp_pubsub {
    struct resp_conn **conns;      /* per shard, NULL: none yet */
    uint32_t n_conns;
    struct resp_sub *subs;
    uint32_t n_channels, n_patterns, n_shard;
    uint8_t mode;                  /* RESP2's pub/sub context (only subscriptions, PING...) */
    uint8_t lost;                  /* a pubsub connection failed: the session closes */
};

/* (P|S)(UN)SUBSCRIBE with argc arguments at base + args[i].off: sent to
 * the shards; m completes now without bytes, the confirmations follow. */
void resp_pubsub_cmd(struct resp_session *s, struct resp_msg *m, const struct resp_cmd *cmd,
                     const char *base, const struct resp_arg *args, uint32_t argc);
/* A complete message m (owned from now on) from one of s's pubsub
 * connections. */
void resp_pubsub_push(struct resp_session *s, struct resp_msg *m);
/* Closes s's pubsub connections and forgets its subscriptions. */
void resp_pubsub_free(struct resp_session *s);

#endif
