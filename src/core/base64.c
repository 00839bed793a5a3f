/* base64: RFC 4648 decoding, strict: one encoding per byte string (no
 * whitespace, no stray padding, zero leftover bits), so a token or a
 * credential cannot be varied without changing what it decodes to. */
#include "core/base64.h"

#include <stdint.h>

/* The 6-bit value of c in the alphabet, or -1. */
static int base64_value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* Decodes n characters without padding (n mod 4 != 1). */
static ssize_t base64_decode_bare(const char *src, size_t n, unsigned char *out, size_t size,
                                  int url)
{
    if (n % 4 == 1)
        return -1;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > size)
        return -1;
    uint32_t acc = 0;
    size_t o = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = base64_value((unsigned char)src[i], url);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* leftover bits must be zero */
        return -1;
    return (ssize_t)o;
}

ssize_t base64_decode(const char *src, size_t n, unsigned char *out, size_t size)
{
    if (n % 4 != 0)
        return -1;
    size_t pad = 0;
    while (pad < 2 && pad < n && src[n - 1 - pad] == '=')
        pad++;
    return base64_decode_bare(src, n - pad, out, size, 0);
}

ssize_t base64url_decode(const char *src, size_t n, unsigned char *out, size_t size)
{
    return base64_decode_bare(src, n, out, size, 1);
}
