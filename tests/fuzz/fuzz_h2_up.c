/* fuzz_h2_up: libFuzzer harness for the HTTP/2 client side (http2/h2_up.c).
 *
 * The input is what an upstream HTTP/2 server sends: it goes into a client
 * session with weir's callbacks and options, carrying a GET and a POST
 * from two lanes, in three pieces at split points taken from its first
 * bytes. Answers are rebuilt as HTTP/1.1 into the lanes (status, fields,
 * chunked bodies, trailer sections), refused streams replayed, GOAWAY and
 * connection loss handled, and everything freed. */
#include <ev.h>
#include <stdint.h>
#include <stdlib.h>

#include "http2/h2_up.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ev_loop *loop;
    if (!loop)
        loop = ev_loop_new(EVFLAG_AUTO);
    if (size < 2)
        return 0;
    size_t cut1 = data[0] * size / 256, cut2 = cut1 + data[1] * (size - cut1) / 256;
    h2up_feed_server_bytes(loop, data + 2, size - 2, cut1, cut2, NULL, 0);
    return 0;
}
