/* sio: the plain-socket implementation of the I/O seam (see sio.h).
 *
 * A read is one read(2); a write is one sendmsg(2) with MSG_NOSIGNAL, so a
 * peer gone away is -EPIPE and never a signal. EINTR is retried; EAGAIN
 * becomes -EAGAIN with the want left at the operation's own direction.
 * Nothing here allocates. */
#include "core/sio.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t sio_plain_read(struct sio *s, void *buf, size_t len)
{
    ssize_t n;
    do {
        n = read(s->fd, buf, len);
    } while (n == -1 && errno == EINTR);
    if (n == -1)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

static ssize_t sio_plain_writev(struct sio *s, const struct iovec *iov, int iovcnt)
{
    ssize_t n;
    if (iovcnt == 1) {
        do {
            n = send(s->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } while (n == -1 && errno == EINTR);
    } else {
        struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
        do {
            n = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
        } while (n == -1 && errno == EINTR);
    }
    if (n == -1)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

static int sio_plain_shutdown(struct sio *s)
{
    return shutdown(s->fd, SHUT_WR) == -1 ? -errno : 0;
}

static void sio_plain_close(struct sio *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

const struct sio_ops sio_plain_ops = {
    .read = sio_plain_read,
    .writev = sio_plain_writev,
    .shutdown = sio_plain_shutdown,
    .close = sio_plain_close,
};
