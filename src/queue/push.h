/* push: delivery of a topic's push subscriptions (push.c for the design).
 * One pusher runs on worker 0's loop for the whole instance; the SQS
 * protocol's worker hooks start and stop it. */
#ifndef WEIR_QUEUE_PUSH_H
#define WEIR_QUEUE_PUSH_H

struct wctx;
struct pusher;

/* On the worker's thread: starts delivering the push subscriptions of the
 * worker's current configuration (followed across reloads). Returns the
 * pusher, or NULL when memory is short (logged). */
struct pusher *push_start(struct wctx *wc);
/* On the worker's thread, as its loop ends: abandons the deliveries in
 * flight (their messages stay in the outboxes, in flight until their
 * visibility timeout or a restart) and stops every watcher. */
void push_stop(struct pusher *p);
/* Frees p (after push_stop). NULL is ignored. */
void push_free(struct pusher *p);

#endif
