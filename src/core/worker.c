/* worker: see worker.h. */
#include "core/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>

static void worker_async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct worker *w = a->data;
    if (w->on_wake)
        w->on_wake(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "weir-w%u", w->id);
    pthread_setname_np(pthread_self(), name);
    if (w->on_start)
        w->on_start(w);
    ev_run(w->loop, 0);
    return NULL;
}

int worker_start(struct worker *w, unsigned id, worker_cb on_start, worker_cb on_wake, void *ctx)
{
    w->id = id;
    w->on_start = on_start;
    w->on_wake = on_wake;
    w->ctx = ctx;
    w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (!w->loop)
        return -ENOMEM;
    ev_async_init(&w->wake, worker_async_cb);
    w->wake.data = w;
    ev_async_start(w->loop, &w->wake);
    /* Signals are the main thread's: workers block them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        ev_loop_destroy(w->loop);
        w->loop = NULL;
        return -rc;
    }
    return 0;
}

void worker_wake(struct worker *w)
{
    ev_async_send(w->loop, &w->wake);
}

void worker_join(struct worker *w)
{
    if (!w->loop)
        return;
    pthread_join(w->thread, NULL);
    ev_loop_destroy(w->loop);
    w->loop = NULL;
}
