/* base64: strict decoders for RFC 4648 base64 (section 4, with '='
 * padding) and base64url (section 5, without padding, as JWS uses it). */
#ifndef WEIR_CORE_BASE64_H
#define WEIR_CORE_BASE64_H

#include <stddef.h>
#include <sys/types.h>

/* The most bytes n characters decode to. */
#define BASE64_DECODED_MAX(n) (((n) + 3) / 4 * 3)

/* Decodes src[0..n) (base64: length a multiple of 4, padding only at the
 * end; base64url: no padding, length mod 4 != 1) into out (room for
 * `size` bytes). Bits left over after the last byte must be zero, so each
 * byte string has one encoding. Returns the decoded length, or -1 when src
 * is not valid or out is too small. Never reads past src + n. */
ssize_t base64_decode(const char *src, size_t n, unsigned char *out, size_t size);
ssize_t base64url_decode(const char *src, size_t n, unsigned char *out, size_t size);

#endif
