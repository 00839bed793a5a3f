/* worker: a thread that runs its own libev loop.
 *
 *   main thread                         worker thread
 *   worker_start() ---- pthread ----->  on_start(w); ev_run(loop)
 *   worker_wake()  ---- ev_async ---->  on_wake(w)   (reads its mailbox)
 *   worker_join()  <--- loop ends ----  ev_break / no watchers left
 *
 * The worker knows nothing of what runs on it: its owner passes callbacks
 * and a context pointer. Messages travel through the owner's own mailbox;
 * worker_wake() only makes the loop call on_wake() soon (coalesced). */
#ifndef WEIR_CORE_WORKER_H
#define WEIR_CORE_WORKER_H

#include <ev.h>
#include <pthread.h>

struct worker;
typedef void (*worker_cb)(struct worker *w);

struct worker {
    unsigned id;
    struct ev_loop *loop;
    pthread_t thread;
    ev_async wake;
    worker_cb on_start;
    worker_cb on_wake;
    void *ctx;
};

/* Creates the loop and starts the thread. Returns 0 or a negative errno
 * (nothing left running). */
int worker_start(struct worker *w, unsigned id, worker_cb on_start, worker_cb on_wake, void *ctx);
/* Thread-safe: asks the worker to run on_wake() on its thread. */
void worker_wake(struct worker *w);
/* Waits for the thread to end and frees the loop. */
void worker_join(struct worker *w);

#endif
