/* ratelimit_key: the parts of a rate limit key read from the request head,
 * as pure functions over a parsed message (fuzzed by fuzz_ratelimit_key.c):
 * the client's address behind trusted proxies (X-Forwarded-For) and a
 * cookie's value. Nothing allocates; results are slices of the message's
 * bytes or of the peer string given. */
#ifndef WEIR_HTTP_STEPS_RATELIMIT_KEY_H
#define WEIR_HTTP_STEPS_RATELIMIT_KEY_H

#include <stddef.h>

#include "core/cidr.h"
#include "http/http_parser.h"

/* An address or a CIDR block (core/cidr.h). */
struct rl_cidr {
    struct cidr net;
};

/* Parses "ADDR" or "ADDR/BITS" (IPv4 or IPv6, NUL-terminated). Returns 0,
 * -EINVAL (bad address) or -ERANGE (bad prefix length). */
int rl_cidr_parse(const char *s, struct rl_cidr *out);
/* Whether the address literal s[0..n) is inside one of the blocks. */
int rl_cidr_match(const struct rl_cidr *blocks, size_t n_blocks, const char *s, size_t n);

/* The client's address: `peer`, or when the peer is in `trusted`, the
 * rightmost X-Forwarded-For entry (over all such fields, in order) that is
 * not; all of them trusted: the leftmost. */
struct http_slice rl_key_client_ip(const struct http_msg *m, struct http_slice peer,
                                   const struct rl_cidr *trusted, size_t n_trusted);
/* The value of cookie `name` (len bytes) in the Cookie fields, or a slice
 * with p NULL when there is none. */
struct http_slice rl_key_cookie(const struct http_msg *m, const char *name, size_t len);

#endif
