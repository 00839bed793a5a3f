/* resp_session: a Redis client session, shared by the files that serve
 * it (resp_proxy.c: commands and replies; resp_pubsub.c: subscriptions).
 * Internal to src/resp/. */
#ifndef WEIR_RESP_SESSION_H
#define WEIR_RESP_SESSION_H

#include "resp/resp_clients.h"
#include "resp/resp_metrics.h"
#include "resp/resp_pubsub.h"
#include "resp/resp_types.h"
#include "server/server.h"

struct resp_session {
    ev_io io;
    struct resp_wctx *rw;
    int fd;
    struct snapshot *snap;         /* one reference, keeps lst / cc valid */
    const struct cfg_listener *lst;
    struct wlistener *wl;          /* accepted there: server_conn_close() */
    struct resp_route *route;      /* valid while rw->snap == snap */
    struct resp_session *prev, *next;
    struct resp_session *dirty_next;
    struct buf in, out;
    struct resp_msg *q_head, *q_tail;
    uint32_t n_pending;
    uint8_t readable, writable, eof, closing, in_dirty;
    uint8_t quit;                  /* QUIT or a framing error: close once the queue is out */
    uint8_t authed;
    uint8_t cur_proto_error;
    struct resp_conn *bconn;       /* own connection: blocking commands, streams, MULTI */
    struct resp_client cl;         /* in the registry of all clients (CLIENT LIST...) */
    uint8_t proto;                 /* 2, or 3 after HELLO 3 */
    uint8_t reply_off;             /* CLIENT REPLY OFF */
    uint8_t reply_skip;            /* CLIENT REPLY SKIP: the next command's reply is dropped */
    uint64_t id;
    struct resp_limits lim;        /* request limits of the listener's cluster */
    /* a command larger than the read buffer, passed on as it arrives */
    struct resp_parser sp;         /* its parser, resumed at every read */
    struct resp_msg *stream_msg;   /* its msg (in the queue, kept there while streaming) */
    struct resp_msg *stream_cur;   /* the msg whose bytes are passing: stream_msg, or the
                                      fragment of a split stream whose value is arriving */
    struct resp_conn *stream_conn; /* where its bytes go; NULL: dropped (m has an error) */
    /* a split command (MSET, MGET, DEL...) streamed: a fragment per key as it arrives */
    const struct resp_cmd *split_cmd; /* NULL: not a split stream */
    struct resp_conn **split_conns;   /* the session's own connection per shard */
    uint32_t n_split_conns;
    uint64_t split_gen;               /* rw->routes_gen the stream started with */
    char *key_buf;                    /* a key larger than the read buffer, gathered */
    size_t key_len, key_cap;
    uint8_t streaming;
    uint8_t after_stream;          /* dispatch nothing until every reply is in */
    /* MULTI / WATCH: pinned to one shard's primary on bconn */
    uint8_t tx_multi;              /* inside MULTI */
    uint8_t tx_dirty;              /* a queued command was refused: EXEC aborts */
    uint8_t tx_sent;               /* MULTI went to the shard */
    int32_t tx_shard;              /* the shard of the WATCH / transaction, -1 none */
    struct resp_pubsub ps;         /* subscriptions (resp_pubsub.h) */
    const struct resp_listener_metrics *met; /* its listener's series in snap (resp_metrics.h) */
};

/* Appends a new msg to s's queue (it owns it). NULL when out of memory. */
struct resp_msg *resp_session_enqueue(struct resp_session *s);
/* The shared connection to srv for s's protocol. */
struct resp_conn *resp_session_srv_conn(const struct resp_session *s, struct resp_server *srv);
/* Completes m with the reply text[0..len) (an error inside MULTI aborts it). */
void resp_session_reply(struct resp_wctx *rw, struct resp_msg *m, const char *text, size_t len);

#endif
