/* sni: see sni.h.
 *
 *   record:       type 22 | version (2) | length (2)             -- RFC 8446 §5.1
 *   handshake:    type 1 (client_hello) | length (3)              -- §4
 *   client_hello: legacy_version (2) | random (32) | session_id <0..32> |
 *                 cipher_suites <2..2^16-2> | compression <1..2^8-1> |
 *                 extensions <8..2^16-1>                          -- §4.1.2
 *   server_name:  type 0 | length | list <1..2^16-1> of
 *                 { name_type (1) = 0 host_name | name <1..2^16-1> }  -- RFC 6066 §3
 *
 * Like proxy_proto.c it is re-run on the bytes gathered so far; a
 * ClientHello is looked for in the first record only (bounded at
 * SNI_MAX_PEEK): one split over records (rare, huge post-quantum key
 * shares) is answered "no name", so its connection takes the default
 * cluster instead of waiting. Every length is checked against what encloses
 * it before it is used. */
#include "l4/sni.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* A bounded reader over one enclosing structure. */
struct sni_rd {
    const uint8_t *p;
    size_t len, pos;
};

static int sni_take(struct sni_rd *r, size_t n, const uint8_t **out)
{
    if (r->len - r->pos < n)
        return -EINVAL;
    if (out)
        *out = r->p + r->pos;
    r->pos += n;
    return 0;
}

/* Reads a big-endian length of `width` bytes (1 or 2), then that many bytes
 * as a nested reader. */
static int sni_vec(struct sni_rd *r, size_t width, struct sni_rd *inner)
{
    const uint8_t *l, *body;
    if (sni_take(r, width, &l) < 0)
        return -EINVAL;
    size_t n = width == 1 ? l[0] : (size_t)l[0] << 8 | l[1];
    if (sni_take(r, n, &body) < 0)
        return -EINVAL;
    *inner = (struct sni_rd){ body, n, 0 };
    return 0;
}

/* A host_name: letters, digits, '-', '_' and '.', lower-cased into out;
 * one trailing dot dropped. Returns 1 or 0 (not usable). */
static int sni_copy_name(const struct sni_rd *name, char *out, size_t out_size)
{
    size_t n = name->len;
    if (n && name->p[n - 1] == '.')
        n--;
    if (n == 0 || n > SNI_MAX_NAME || n >= out_size)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = name->p[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                   c == '.'))
            return 0;
        out[i] = (char)c;
    }
    out[n] = 0;
    return 1;
}

/* The server_name extension's body. Returns 1 (out filled) or 0. */
static int sni_server_name(struct sni_rd *ext, char *out, size_t out_size)
{
    struct sni_rd list;
    if (sni_vec(ext, 2, &list) < 0)
        return 0;
    while (list.pos < list.len) {
        const uint8_t *type;
        struct sni_rd name;
        if (sni_take(&list, 1, &type) < 0 || sni_vec(&list, 2, &name) < 0)
            return 0;
        if (type[0] == 0)
            return sni_copy_name(&name, out, out_size);
    }
    return 0;
}

/* The ClientHello body. Returns 1 (name), 0 (none) or -EINVAL. */
static int sni_client_hello(struct sni_rd *ch, char *out, size_t out_size)
{
    struct sni_rd skip, exts;
    if (sni_take(ch, 2 + 32, NULL) < 0 || sni_vec(ch, 1, &skip) < 0 || skip.len > 32 ||
        sni_vec(ch, 2, &skip) < 0 || sni_vec(ch, 1, &skip) < 0)
        return -EINVAL;
    if (ch->pos == ch->len)
        return 0; /* no extensions at all */
    if (sni_vec(ch, 2, &exts) < 0)
        return -EINVAL;
    while (exts.pos < exts.len) {
        const uint8_t *type;
        struct sni_rd body;
        if (sni_take(&exts, 2, &type) < 0 || sni_vec(&exts, 2, &body) < 0)
            return -EINVAL;
        if (type[0] == 0 && type[1] == 0)
            return sni_server_name(&body, out, out_size);
    }
    return 0;
}

int sni_parse(const uint8_t *p, size_t len, char *out, size_t out_size)
{
    if (len >= 1 && p[0] != 22)
        return -EINVAL;
    if (len >= 2 && p[1] != 3)
        return -EINVAL;
    if (len < 5)
        return -EAGAIN;
    size_t rlen = (size_t)p[3] << 8 | p[4];
    if (rlen < 4 || rlen > SNI_MAX_PEEK - 5)
        return -EINVAL;
    if (len >= 6 && p[5] != 1)
        return -EINVAL;
    if (len < 5 + 4)
        return -EAGAIN;
    size_t hlen = (size_t)p[6] << 16 | (size_t)p[7] << 8 | p[8];
    if (hlen > rlen - 4)
        return 0; /* continues in the next record: not looked at */
    if (len < 9 + hlen)
        return -EAGAIN;
    struct sni_rd ch = { p + 9, hlen, 0 };
    return sni_client_hello(&ch, out, out_size);
}

int sni_match(const char *pattern, const char *name)
{
    if (pattern[0] != '*')
        return strcasecmp(pattern, name) == 0;
    const char *suffix = pattern + 1; /* ".example.com" */
    size_t sl = strlen(suffix), nl = strlen(name);
    return nl > sl && strcasecmp(name + nl - sl, suffix) == 0;
}
