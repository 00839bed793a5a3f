/* log: see log.h. One write(2) per line keeps lines whole across threads. */
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

_Atomic int log_level_current = LOG_LVL_INFO;
static _Atomic int log_fd = 2;

#define LOG_LEVEL_NAME(e, s) s,
static const char *const log_level_names[] = { LOG_LEVEL_LIST(LOG_LEVEL_NAME) };
#undef LOG_LEVEL_NAME

const char *log_level_name(int level)
{
    if (level < 0 || level >= LOG_LVL_COUNT)
        return "?";
    return log_level_names[level];
}

void log_set_fd(int fd)
{
    log_fd = fd;
}

void log_write(int level, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    int saved_errno = errno;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] ", (long)tv.tv_usec / 1000,
                          log_level_name(level));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(log_fd, line, n);
    } while (w == -1 && errno == EINTR);
    errno = saved_errno;
}
