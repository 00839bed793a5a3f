/* qbackend_local: the local row of the queue backends: this instance's
 * queues in memory and in the log (queue.c). Every operation completes
 * before it returns (done is called inline), so the local path costs one
 * indirect call over calling queue.c directly; answers that must wait for
 * the log's fdatasync carry the position in e[i].pos / call->pos for the
 * caller's group commit (sqs_reply_durable). */
#include "queue/qbackend.h"

#include <errno.h>
#include <string.h>

static void qlocal_finish(struct qcall *call)
{
    call->busy = 0;
    call->done(call);
}

static void qlocal_send(struct qcall *call)
{
    call->busy = 1;
    call->pos = 0;
    for (size_t i = 0; i < call->n; i++) {
        struct qcall_entry *e = &call->e[i];
        e->pos = 0;
        e->rc = queue_send(call->q, &call->sends[i], e->id, &e->seq, &e->pos);
        if (e->rc == 0 && e->pos > call->pos)
            call->pos = e->pos;
    }
    qlocal_finish(call);
}

static void qlocal_receive(struct qcall *call)
{
    call->busy = 1;
    call->rc = queue_receive(call->q, call->max, call->vis_s, call->on_msg, call->msg_arg);
    qlocal_finish(call);
}

static void qlocal_delete(struct qcall *call)
{
    call->busy = 1;
    call->pos = 0;
    for (size_t i = 0; i < call->n; i++) {
        struct qcall_entry *e = &call->e[i];
        e->pos = 0;
        e->rc = call->receipts[i] ? queue_delete_msg(call->q, call->receipts[i], &e->pos) : -EINVAL;
        if (e->rc == 0 && e->pos > call->pos)
            call->pos = e->pos;
    }
    qlocal_finish(call);
}

static void qlocal_change_visibility(struct qcall *call)
{
    call->busy = 1;
    for (size_t i = 0; i < call->n; i++)
        call->e[i].rc = queue_change_visibility(call->q, call->receipts[i], call->timeouts[i]);
    qlocal_finish(call);
}

static void qlocal_purge(struct qcall *call)
{
    call->busy = 1;
    call->pos = 0;
    call->rc = queue_purge(call->q, &call->pos);
    qlocal_finish(call);
}

static void qlocal_counts(struct qcall *call)
{
    call->busy = 1;
    queue_counts(call->q, &call->counts[0], &call->counts[1], &call->counts[2]);
    call->rc = 0;
    qlocal_finish(call);
}

const struct qbackend_ops qbackend_local = {
    .name = "local",
    .send = qlocal_send,
    .receive = qlocal_receive,
    .delete_msgs = qlocal_delete,
    .change_visibility = qlocal_change_visibility,
    .purge = qlocal_purge,
    .counts = qlocal_counts,
    .shared = 0,
};

const struct qbackend_ops *qbackend_of(const struct queue *q)
{
    return q->attrs.store[0] ? &qbackend_redis : &qbackend_local;
}

void qcall_cancel(struct qcall *call)
{
    if (!call->busy)
        return;
    qredis_cancel(call);
    call->busy = 0;
}
