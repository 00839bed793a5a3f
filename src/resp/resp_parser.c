/* resp_parser: see resp_parser.h.
 *
 * One state per place in the grammar; the state and every partial value
 * (the number being read, bulk bytes left, elements left per open array)
 * live in struct resp_parser, so a message can stop anywhere and resume
 * with the next byte. Lines and bulk data are skipped with memchr / a
 * length, not byte by byte.
 *
 * Replies may be RESP3: aggregates (* % ~ > |) are read as arrays, blobs
 * ($ ! =) as bulks, and the line types (+ - _ # , () as simple strings.
 *
 *   PS_TYPE --'*' '$' ':'--> PS_NUM --\r--> PS_NUM_LF --\n--> (array: PS_TYPE,
 *      |                                                    bulk: PS_BULK,
 *      |--'+' '-'--> PS_LINE --\r--> PS_LINE_LF --\n-->      int: element done)
 *      `--other (request)--> PS_INLINE --\n--> done
 *   PS_BULK --len bytes--> PS_BULK_CR --\r--> PS_BULK_LF --\n--> element done
 *
 * "element done" pops finished arrays; when none is open the message is
 * complete and resp_parse() returns right after its last byte. */
#include "resp/resp_parser.h"

#include <string.h>

enum resp_parse_state {
    PS_TYPE,    /* the type byte of an element (or of the message) */
    PS_NUM,     /* digits of an array length, bulk length or integer */
    PS_NUM_LF,  /* the '\n' after a number's '\r' */
    PS_LINE,    /* a simple string or error up to '\r' */
    PS_LINE_LF, /* the '\n' ending it */
    PS_BULK,    /* bulk data bytes */
    PS_BULK_CR, /* the '\r' after bulk data */
    PS_BULK_LF, /* the '\n' after it */
    PS_INLINE,  /* an inline command, up to '\n' */
};

#define RESP_ERROR_TEXT(e, s) s,
static const char *const resp_error_texts[] = { RESP_ERROR_LIST(RESP_ERROR_TEXT) };
#undef RESP_ERROR_TEXT

const char *resp_error_text(enum resp_error e)
{
    return (unsigned)e < RESP_ERR_COUNT ? resp_error_texts[e] : "Protocol error";
}

void resp_parser_init(struct resp_parser *p, enum resp_mode mode, const struct resp_limits *lim,
                      struct resp_arg *args, uint32_t args_cap)
{
    memset(p, 0, sizeof(*p));
    p->mode = (uint8_t)mode;
    p->lim = lim;
    p->args = args;
    p->args_cap = args_cap;
}

void resp_parser_reset(struct resp_parser *p)
{
    uint8_t mode = p->mode;
    const struct resp_limits *lim = p->lim;
    struct resp_arg *args = p->args;
    uint32_t cap = p->args_cap;

    resp_parser_init(p, (enum resp_mode)mode, lim, args, cap);
}

/* RESP3 (replies): aggregates ('%' map and '|' attribute hold 2N elements;
 * an attribute is followed by the element it describes), blobs and lines. */
static int resp_is_agg(char c)
{
    return c == '*' || c == '%' || c == '~' || c == '>' || c == '|';
}

static int resp_is_blob(char c)
{
    return c == '$' || c == '!' || c == '=';
}

static int resp_is_line(char c)
{
    return c == '+' || c == '-' || c == '_' || c == '#' || c == ',' || c == '(';
}

static ssize_t resp_fail(struct resp_parser *p, enum resp_error e, uint64_t pos)
{
    p->err = (uint8_t)e;
    p->err_pos = pos;
    return -1;
}

/* Records argument bytes [start, end) when there is room. */
static void resp_record_arg(struct resp_parser *p, uint64_t start, uint64_t end)
{
    p->arg_len = end - start;
    if (p->arg_done < p->args_cap && end <= UINT32_MAX) {
        p->args[p->arg_done].off = (uint32_t)start;
        p->args[p->arg_done].len = (uint32_t)(end - start);
    }
    p->arg_done++;
}

/* An element ended. Returns 1 when it completed the message. */
static int resp_elem_done(struct resp_parser *p)
{
    while (p->depth > 0) {
        if (--p->left[p->depth - 1] > 0) {
            p->state = PS_TYPE;
            return 0;
        }
        p->depth--;
    }
    p->done = 1;
    p->state = PS_TYPE;
    return 1;
}

/* The number of the current '*', '$' or ':' was read completely. Returns
 * 1 when the message is complete, 0 to go on, -1 on error. */
static int resp_number_done(struct resp_parser *p, uint64_t pos)
{
    const struct resp_limits *lim = p->lim;
    int top = p->depth == 0;

    int agg = resp_is_agg((char)p->elem), blob = resp_is_blob((char)p->elem);
    /* only '*' and '$' have a -1 (RESP2's nulls) */
    if (p->digits == 0 || (p->neg && p->elem != ':' &&
                           (p->num != 1 || (p->elem != '*' && p->elem != '$'))))
        return (int)resp_fail(p, agg ? RESP_ERR_MULTIBULK_LEN
                                 : blob ? RESP_ERR_BULK_LEN
                                        : RESP_ERR_BAD_NUMBER, pos);
    if (p->elem == ':') {
        if (p->num > (uint64_t)INT64_MAX + p->neg)
            return (int)resp_fail(p, RESP_ERR_BAD_NUMBER, pos);
        if (top)
            p->int_value = p->neg ? (int64_t)(0 - p->num) : (int64_t)p->num;
        return resp_elem_done(p);
    }
    if (agg) {
        int pairs = p->elem == '%' || p->elem == '|';
        if (!p->neg && p->num > lim->max_array_len / (pairs ? 2 : 1))
            return (int)resp_fail(p, RESP_ERR_MULTIBULK_LEN, pos);
        if (top) {
            p->top_len = p->neg ? -1 : (int64_t)p->num;
            if (p->mode == RESP_MODE_REQUEST)
                p->n_args = p->neg ? 0 : (uint32_t)p->num;
        }
        uint64_t elems = p->num * (pairs ? 2 : 1) + (p->elem == '|');
        if (p->neg || elems == 0)
            return resp_elem_done(p);
        if (p->depth >= lim->max_depth || p->depth >= RESP_MAX_DEPTH)
            return (int)resp_fail(p, RESP_ERR_TOO_DEEP, pos);
        p->left[p->depth++] = (uint32_t)elems;
        p->state = PS_TYPE;
        return 0;
    }
    /* '$' */
    if (p->mode == RESP_MODE_REQUEST && p->neg)
        return (int)resp_fail(p, RESP_ERR_BULK_LEN, pos);
    if (!p->neg && p->num > lim->max_bulk_bytes)
        return (int)resp_fail(p, RESP_ERR_BULK_LEN, pos);
    if (top)
        p->top_len = p->neg ? -1 : (int64_t)p->num;
    if (p->neg)
        return resp_elem_done(p);
    p->bulk_left = p->num;
    p->arg_start = pos + 1; /* pos is the '\n' ending the length line */
    p->state = PS_BULK;
    return 0;
}

/* Inline command bytes data[i..len). Returns bytes consumed or -1. */
static ssize_t resp_parse_inline(struct resp_parser *p, const char *data, size_t len)
{
    size_t i = 0;

    for (; i < len; i++) {
        char c = data[i];
        uint64_t at = p->off + i;
        if (++p->line_len > p->lim->max_inline_bytes)
            return resp_fail(p, RESP_ERR_INLINE_TOO_BIG, at);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (p->in_token) {
                resp_record_arg(p, p->arg_start, at);
                p->n_args++;
                p->in_token = 0;
            }
            if (c == '\n') {
                p->done = 1;
                p->state = PS_TYPE;
                return (ssize_t)i + 1;
            }
        } else if (!p->in_token) {
            p->in_token = 1;
            p->arg_start = at;
        }
    }
    return (ssize_t)i;
}

ssize_t resp_parse(struct resp_parser *p, const char *data, size_t len)
{
    size_t i = 0;

    if (p->done)
        return 0;
    while (i < len) {
        char c = data[i];
        uint64_t at = p->off + i;
        switch (p->state) {
        case PS_TYPE:
            p->elem = (uint8_t)c;
            if (at == 0)
                p->type = (uint8_t)c;
            if (p->mode == RESP_MODE_REQUEST) {
                if (p->depth == 0 && c != '*') {
                    p->type = 'i';
                    p->state = PS_INLINE;
                    continue; /* the byte belongs to the line */
                }
                if (p->depth > 0 && c != '$')
                    return resp_fail(p, RESP_ERR_EXPECTED_BULK, at);
            }
            i++;
            if (c == '*' || c == '$' || c == ':' ||
                (p->mode == RESP_MODE_REPLY && (resp_is_agg(c) || resp_is_blob(c)))) {
                p->state = PS_NUM;
                p->num = 0;
                p->neg = 0;
                p->digits = 0;
                p->line_len = 0;
            } else if (c == '+' || c == '-' || (p->mode == RESP_MODE_REPLY && resp_is_line(c))) {
                p->state = PS_LINE;
                p->line_len = 0;
            } else {
                return resp_fail(p, RESP_ERR_BAD_TYPE, at);
            }
            break;
        case PS_NUM:
            i++;
            if (c >= '0' && c <= '9') {
                if (p->num > (UINT64_MAX - 9) / 10 || ++p->digits > 20)
                    return resp_fail(p, resp_is_agg((char)p->elem) ? RESP_ERR_MULTIBULK_LEN
                                        : resp_is_blob((char)p->elem) ? RESP_ERR_BULK_LEN
                                                                      : RESP_ERR_BAD_NUMBER, at);
                p->num = p->num * 10 + (uint64_t)(c - '0');
            } else if (c == '-' && p->digits == 0 && !p->neg) {
                p->neg = 1;
            } else if (c == '\r') {
                p->state = PS_NUM_LF;
            } else {
                return resp_fail(p, resp_is_agg((char)p->elem) ? RESP_ERR_MULTIBULK_LEN
                                    : resp_is_blob((char)p->elem) ? RESP_ERR_BULK_LEN
                                                                  : RESP_ERR_BAD_NUMBER, at);
            }
            break;
        case PS_NUM_LF: {
            if (c != '\n')
                return resp_fail(p, RESP_ERR_CRLF, at);
            i++;
            int rc = resp_number_done(p, at);
            if (rc < 0)
                return -1;
            if (rc == 1) {
                p->off += i;
                return (ssize_t)i;
            }
            break;
        }
        case PS_LINE: {
            const char *cr = memchr(data + i, '\r', len - i);
            size_t n = cr ? (size_t)(cr - (data + i)) : len - i;
            /* the first offending byte decides, however the stream is cut */
            for (size_t k = 0; k < n; k++) {
                if (p->line_len + k + 1 > p->lim->max_inline_bytes)
                    return resp_fail(p, RESP_ERR_LINE_TOO_LONG, at + k);
                if (data[i + k] == '\n')
                    return resp_fail(p, RESP_ERR_CRLF, at + k);
            }
            p->line_len += (uint32_t)n;
            i += n;
            if (cr) {
                i++;
                p->state = PS_LINE_LF;
            }
            break;
        }
        case PS_LINE_LF:
            if (c != '\n')
                return resp_fail(p, RESP_ERR_CRLF, at);
            i++;
            if (resp_elem_done(p)) {
                p->off += i;
                return (ssize_t)i;
            }
            break;
        case PS_BULK: {
            uint64_t n = len - i;
            if (n > p->bulk_left)
                n = p->bulk_left;
            i += (size_t)n;
            p->bulk_left -= n;
            if (p->bulk_left == 0)
                p->state = PS_BULK_CR;
            break;
        }
        case PS_BULK_CR:
            if (c != '\r')
                return resp_fail(p, RESP_ERR_CRLF, at);
            i++;
            p->state = PS_BULK_LF;
            break;
        case PS_BULK_LF:
            if (c != '\n')
                return resp_fail(p, RESP_ERR_CRLF, at);
            i++;
            if (p->mode == RESP_MODE_REQUEST)
                resp_record_arg(p, p->arg_start, at - 1);
            if (resp_elem_done(p) || (p->arg_stop && p->mode == RESP_MODE_REQUEST)) {
                p->off += i;
                return (ssize_t)i;
            }
            break;
        case PS_INLINE: {
            ssize_t n = resp_parse_inline(p, data + i, len - i);
            if (n < 0)
                return -1;
            i += (size_t)n;
            if (p->done) {
                p->off += i;
                return (ssize_t)i;
            }
            break;
        }
        }
    }
    p->off += i;
    return (ssize_t)i;
}
