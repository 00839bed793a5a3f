/* units: the value syntaxes of the configuration file.
 *
 * Durations: an unsigned integer followed by ms, s, m or h ("250ms", "30s",
 * "5m"); a bare "0" is zero. Sizes: an unsigned integer optionally followed
 * by k, m or g (powers of 1024, case-insensitive): "16k", "8m", "512".
 * Addresses: "host:port" with an IPv4 literal, "[v6]:port", "*:port" or
 * "localhost:port" (resolved to 127.0.0.1 without DNS). Rates: "100/s",
 * "6000/m", "1000/h", "50000/d". Every parser rejects
 * trailing garbage and overflow and never allocates. */
#ifndef WEIR_CORE_UNITS_H
#define WEIR_CORE_UNITS_H

#include <stdint.h>
#include <sys/socket.h>

/* Each returns 0 and writes *out, or -EINVAL (bad syntax) / -ERANGE (overflow). */
int units_parse_duration_ms(const char *s, uint64_t *out_ms);
int units_parse_size(const char *s, uint64_t *out_bytes);
int units_parse_uint(const char *s, uint64_t max, uint64_t *out);
int units_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *out_len);
/* A rate "COUNT/UNIT", UNIT one of s, m, h, d ("100/s", "6000/m", "50000/d"):
 * COUNT (1..max_count) events per period (*out_period_ms). */
int units_parse_rate(const char *s, uint64_t max_count, uint64_t *out_count,
                     uint64_t *out_period_ms);

/* Formats `sa` as "a.b.c.d:port" or "[v6]:port" into buf (always NUL-terminated). */
void units_format_addr(const struct sockaddr *sa, char *buf, size_t size);

#endif
