/* sqs: the `protocol: sqs` listener, the Amazon SQS JSON protocol over
 * HTTP/1.1 (POST /, X-Amz-Target: AmazonSQS.<Action>, JSON 1.0 bodies),
 * served from the instance's durable queues. The protocol table's hooks
 * (src/protocols.c) are below; sqs.c has the design. */
#ifndef WEIR_QUEUE_SQS_H
#define WEIR_QUEUE_SQS_H

#include <sys/socket.h>

struct wctx;
struct wlistener;
struct snapshot;
struct qbroker;

int sqs_worker_init(struct wctx *wc);
void sqs_accept(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer);
void sqs_drain(struct wctx *wc);
void sqs_worker_stop(struct wctx *wc);
void sqs_worker_free(struct wctx *wc);
/* Main thread: opens the broker of snap->cfg->data_dir on first use (later
 * snapshots share it), applies the `queues:` section. Returns 0 or -1
 * (logged). */
int sqs_snapshot_init(struct snapshot *snap);
void sqs_snapshot_free(struct snapshot *snap);

/* The broker of snap (NULL without data_dir). */
struct qbroker *sqs_snapshot_broker(const struct snapshot *snap);

#endif
