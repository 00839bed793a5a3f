/* log: levelled error log and the access log sink.
 *
 * The error log goes to stderr or a file; the level is global and set once
 * from the configuration (and again on reload). log_write() formats into a
 * stack buffer and issues one write(2) so lines from different threads never
 * interleave. It never allocates. */
#ifndef WEIR_CORE_LOG_H
#define WEIR_CORE_LOG_H

#include <stdarg.h>
#include <stdatomic.h>

#define LOG_LEVEL_LIST(X) \
    X(LOG_LVL_ERROR, "error") \
    X(LOG_LVL_WARN, "warn") \
    X(LOG_LVL_INFO, "info") \
    X(LOG_LVL_DEBUG, "debug")

#define LOG_LEVEL_ENUM(e, s) e,
enum log_level { LOG_LEVEL_LIST(LOG_LEVEL_ENUM) LOG_LVL_COUNT };
#undef LOG_LEVEL_ENUM

extern _Atomic int log_level_current; /* written by a reload, read by every thread */

/* The name of `level` ("error", "warn", ...), "?" when out of range. */
const char *log_level_name(int level);

/* Sends the error log to `fd` (default 2). The caller keeps ownership. */
void log_set_fd(int fd);

void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) \
    do { if (log_level_current >= LOG_LVL_WARN) log_write(LOG_LVL_WARN, __VA_ARGS__); } while (0)
#define log_info(...) \
    do { if (log_level_current >= LOG_LVL_INFO) log_write(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) \
    do { if (log_level_current >= LOG_LVL_DEBUG) log_write(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#ifdef WEIR_DEBUG
#include <stdlib.h>
#define ASSERT(c) \
    do { if (!(c)) { log_error("assertion failed: %s at %s:%d", #c, __FILE__, __LINE__); abort(); } } while (0)
#else
#define ASSERT(c) ((void)0)
#endif

#endif
