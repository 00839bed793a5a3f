/* resp_parser: a resumable, zero-copy RESP2 parser for requests and replies.
 *
 *   bytes ... [ *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n ] [ next message ...
 *             ^ message start (off 0)                     done ^
 *
 * The caller feeds the bytes of one message in order, in as many pieces as
 * they arrive; resp_parse() consumes every byte it is given until the
 * message ends, keeps all state in struct resp_parser, never looks back at
 * earlier pieces and never allocates. So a 100 MB value streams through a
 * 16 KB buffer: the caller forwards the consumed bytes and drops them.
 *
 * Request mode accepts what Redis accepts from clients: a multibulk array
 * of bulk strings ("*N\r\n$L\r\n...") or an inline command line ("PING\r\n").
 * Each argument's position (offset from the message start) is recorded in
 * a caller-provided array, so while the message is still in the caller's
 * buffer the arguments are slices of it. Reply mode accepts the RESP2 reply
 * types (+ - : $ *) and RESP3's (% ~ > | aggregates, ! = blobs, _ # , (
 * lines) nested up to a depth limit.
 *
 * Every count and size is limited (bulk length, array length, nesting,
 * inline line length); a violation is an error with a reason and the byte
 * offset where it was detected. After an error the stream cannot be
 * resynchronised: the connection must be closed. */
#ifndef WEIR_RESP_PARSER_H
#define WEIR_RESP_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RESP_MAX_DEPTH 32 /* hard bound of resp_limits.max_depth */

/* Parse errors: the enum and the text the client is sent ("-ERR " + text). */
#define RESP_ERROR_LIST(X) \
    X(RESP_ERR_NONE, "no error") \
    X(RESP_ERR_EXPECTED_BULK, "Protocol error: expected '$'") \
    X(RESP_ERR_MULTIBULK_LEN, "Protocol error: invalid multibulk length") \
    X(RESP_ERR_BULK_LEN, "Protocol error: invalid bulk length") \
    X(RESP_ERR_INLINE_TOO_BIG, "Protocol error: too big inline request") \
    X(RESP_ERR_BAD_TYPE, "Protocol error: unknown reply type") \
    X(RESP_ERR_BAD_NUMBER, "Protocol error: invalid number") \
    X(RESP_ERR_CRLF, "Protocol error: expected CRLF") \
    X(RESP_ERR_LINE_TOO_LONG, "Protocol error: line too long") \
    X(RESP_ERR_TOO_DEEP, "Protocol error: nesting too deep")

#define RESP_ERROR_ENUM(e, s) e,
enum resp_error { RESP_ERROR_LIST(RESP_ERROR_ENUM) RESP_ERR_COUNT };
#undef RESP_ERROR_ENUM

const char *resp_error_text(enum resp_error e);

enum resp_mode { RESP_MODE_REQUEST, RESP_MODE_REPLY };

struct resp_limits {
    uint64_t max_bulk_bytes;   /* longest bulk string */
    uint32_t max_array_len;    /* most elements of one array (arguments of a request) */
    uint32_t max_depth;        /* nesting of replies, 1..RESP_MAX_DEPTH */
    uint32_t max_inline_bytes; /* longest inline command or simple-string line */
};

/* One argument of a request: bytes [off, off + len) from the message start. */
struct resp_arg {
    uint32_t off;
    uint32_t len;
};

struct resp_parser {
    uint8_t state;             /* enum in resp_parser.c */
    uint8_t mode;              /* enum resp_mode */
    uint8_t type;              /* first byte of the message: '*', '$', '+', '-', ':', a RESP3
                                  type, or 'i' (inline) */
    uint8_t elem;              /* type of the element being read */
    uint8_t depth;             /* arrays open */
    uint8_t neg;               /* the number being read has a '-' */
    uint8_t digits;            /* digits of it so far */
    uint8_t done;              /* the message is complete */
    uint8_t in_token;          /* inline: inside an argument */
    uint8_t err;               /* enum resp_error, set on failure */
    uint8_t arg_stop;          /* request: return right after each complete argument */
    uint64_t num;              /* the number being read */
    uint64_t bulk_left;        /* data bytes of the current bulk still to come */
    uint64_t off;              /* bytes consumed since the message start */
    uint64_t err_pos;          /* offset of the offending byte */
    uint32_t line_len;         /* bytes of the current line so far */
    uint32_t n_args;           /* request: arguments announced (multibulk) or found (inline) */
    uint32_t arg_done;         /* request: arguments complete so far */
    uint64_t arg_start;        /* offset where the current argument's bytes start */
    uint64_t arg_len;          /* request: length of the last complete argument */
    int64_t int_value;         /* reply: value of a top-level ':' */
    int64_t top_len;           /* reply: length of a top-level '*' or '$' (-1: nil) */
    uint32_t left[RESP_MAX_DEPTH]; /* elements still expected in each open array */
    struct resp_arg *args;     /* caller's array: where arguments are recorded */
    uint32_t args_cap;         /* its size; arguments past it are counted, not recorded */
    const struct resp_limits *lim;
};

/* Prepares p for a stream of messages. `args` (may be NULL with cap 0) and
 * `lim` are borrowed and must outlive p. */
void resp_parser_init(struct resp_parser *p, enum resp_mode mode, const struct resp_limits *lim,
                      struct resp_arg *args, uint32_t args_cap);
/* Readies p for the next message after one completed. */
void resp_parser_reset(struct resp_parser *p);

/* Consumes data[0..len), the bytes that follow everything consumed since
 * the message started. Returns the bytes consumed: all of len while the
 * message is incomplete, or up to and including its last byte with
 * p->done set. With p->arg_stop set (request mode), it also returns right
 * after the last byte of each multibulk argument (p->arg_done counts it,
 * p->arg_len is its length), so a caller can take a command apart argument
 * by argument. Returns -1 on a protocol error (p->err, p->err_pos).
 * Never reads outside data[0..len). */
ssize_t resp_parse(struct resp_parser *p, const char *data, size_t len);

#endif
