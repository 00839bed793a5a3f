/* sio: the session's I/O seam, one connected stream (a plain socket, or a
 * TLS connection over one) behind a small table of operations.
 *
 *   session --sio_read / sio_writev--> ops->read / ops->writev --> fd
 *                                       (plain: read/sendmsg; tls: SSL_*)
 *
 * Every operation returns bytes moved (> 0), 0 for end of stream (read),
 * -EAGAIN when the stream is not ready, or another negative errno. After
 * -EAGAIN, `rd_want` / `wr_want` say which readiness of the fd lets the
 * stalled read / write go on: SIO_WANT_READ or SIO_WANT_WRITE (a TLS read
 * may wait for the socket to take a handshake message, a TLS write for one
 * to arrive). A plain socket always waits for its own direction. The
 * caller owns the struct; `impl` is the implementation's (the TLS
 * connection), released by sio_close. */
#ifndef WEIR_CORE_SIO_H
#define WEIR_CORE_SIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

enum sio_want { SIO_WANT_READ = 1, SIO_WANT_WRITE = 2 };

struct sio;

struct sio_ops {
    ssize_t (*read)(struct sio *s, void *buf, size_t len);
    ssize_t (*writev)(struct sio *s, const struct iovec *iov, int iovcnt);
    /* Sends the end of the stream (TLS: close_notify, then FIN); 0 or -errno. */
    int (*shutdown)(struct sio *s);
    /* Releases impl and closes fd; the sio is then closed (fd -1). */
    void (*close)(struct sio *s);
};

struct sio {
    const struct sio_ops *ops;
    void *impl;
    int fd;
    uint8_t rd_want, wr_want;
};

extern const struct sio_ops sio_plain_ops;

/* Makes s a plain socket stream over fd (s owns fd afterwards). */
static inline void sio_init_plain(struct sio *s, int fd)
{
    s->ops = &sio_plain_ops;
    s->impl = NULL;
    s->fd = fd;
    s->rd_want = SIO_WANT_READ;
    s->wr_want = SIO_WANT_WRITE;
}

/* A closed stream: fd -1, nothing held. */
static inline void sio_init_closed(struct sio *s)
{
    sio_init_plain(s, -1);
}

static inline ssize_t sio_read(struct sio *s, void *buf, size_t len)
{
    return s->ops->read(s, buf, len);
}

static inline ssize_t sio_writev(struct sio *s, const struct iovec *iov, int iovcnt)
{
    return s->ops->writev(s, iov, iovcnt);
}

static inline ssize_t sio_write(struct sio *s, const void *buf, size_t len)
{
    struct iovec iov = { (void *)buf, len };
    return s->ops->writev(s, &iov, 1);
}

static inline int sio_shutdown(struct sio *s)
{
    return s->ops->shutdown(s);
}

/* Closes s when open; a no-op on a closed one. */
static inline void sio_close(struct sio *s)
{
    if (s->fd >= 0 || s->impl)
        s->ops->close(s);
    sio_init_closed(s);
}

static inline int sio_is_open(const struct sio *s)
{
    return s->fd >= 0;
}

/* The fd events (libev's EV_READ 1 / EV_WRITE 2, the same bits as
 * SIO_WANT_*) to watch when the caller wants to read (`rd`) and/or write
 * (`wr`): each mapped to what that direction last waited for. */
static inline int sio_events(const struct sio *s, int rd, int wr)
{
    return (rd ? s->rd_want : 0) | (wr ? s->wr_want : 0);
}

#endif
