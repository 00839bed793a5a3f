/* sni: the server name a TLS client asks for, read from its first
 * ClientHello without terminating TLS (RFC 8446 §4.1.2, RFC 6066 §3), so a
 * tcp listener can route by it and pass the bytes through untouched.
 * Nothing here allocates or does I/O. */
#ifndef WEIR_L4_SNI_H
#define WEIR_L4_SNI_H

#include <stddef.h>
#include <stdint.h>

#define SNI_MAX_NAME 255           /* a DNS name's length limit */
#define SNI_MAX_PEEK (5 + 16384)   /* one TLS record: the most weir gathers to decide */

/* Reads the host_name of the ClientHello at the start of p[0..len).
 * Returns 1 with the name (lower case, NUL-terminated, at most
 * SNI_MAX_NAME bytes; out_size must be > SNI_MAX_NAME) in out; 0 when the
 * ClientHello is complete and has no usable name (none, or it does not
 * fit in the first record); -EAGAIN when more bytes are needed; -EINVAL
 * when the bytes are not a TLS handshake record with a ClientHello. Never
 * reads past len. */
int sni_parse(const uint8_t *p, size_t len, char *out, size_t out_size);

/* Whether name matches pattern: equal (case-insensitive), or pattern is
 * "*.SUFFIX" and name is one or more labels followed by ".SUFFIX". */
int sni_match(const char *pattern, const char *name);

#endif
