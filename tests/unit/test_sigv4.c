/* Unit tests for sigv4.c: a request signed by botocore (its SigV4Auth,
 * computed outside weir) verifies; each change to it does not; the
 * Authorization parser on good and bad values, whole and cut short. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "queue/sigv4.h"

#define SIG "38923de504a2f890327712aea19506a81697dbd06578c6bae185a4544c43f440"
#define AUTH                                                                                       \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/sqs/aws4_request, "                \
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-multi, Signature="
#define BODY "{\"QueueName\":\"q\"}"

static const char *secret_of(void *arg, const char *key, size_t len)
{
    (void)arg;
    return len == 11 && memcmp(key, "AKIDEXAMPLE", 11) == 0
               ? "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
               : NULL;
}

static time_t signed_at(void)
{
    struct tm tm = {
        .tm_year = 126, .tm_mon = 11, .tm_mday = 4, .tm_hour = 23, .tm_min = 1, .tm_sec = 54};
    return timegm(&tm);
}

/* Verifies a request made of `target`, `extra` header lines, auth and body. */
static enum sigv4_result verify(const char *target, const char *auth, const char *extra,
                                const char *body, time_t now)
{
    static char req[4096];
    static struct http_msg msg;
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:9324\r\n"
                     "Content-Type: application/x-amz-json-1.0\r\n"
                     "X-Amz-Target: AmazonSQS.GetQueueUrl\r\nX-Multi:   a   b \r\n"
                     "X-Amz-Date: 20261204T230154Z\r\n%sAuthorization: %s\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     target, extra, auth, strlen(body), body);
    http_msg_init(&msg);
    int head = http_parse_request(req, (size_t)n, &msg, NULL);
    assert_true(head > 0);
    return sigv4_verify(&msg, req + head, (size_t)n - (size_t)head, secret_of, NULL, now, 900);
}

static void test_botocore_vector(void **state)
{
    (void)state;
    const char *t = "/a%2Fb/c?b=2&a=1&a=0&x=";
    time_t now = signed_at();
    assert_int_equal(verify(t, AUTH SIG, "", BODY, now), SIGV4_OK);
    assert_int_equal(verify(t, AUTH SIG, "", BODY, now + 899), SIGV4_OK);
    assert_int_equal(verify(t, AUTH SIG, "", BODY, now - 899), SIGV4_OK);
    assert_int_equal(verify(t, AUTH SIG, "", BODY, now + 901), SIGV4_EXPIRED);
    assert_int_equal(verify(t, AUTH SIG, "", BODY, now - 901), SIGV4_EXPIRED);
    /* any change: body, path, query order kept but a value changed, a signed header */
    assert_int_equal(verify(t, AUTH SIG, "", "{\"QueueName\":\"r\"}", now), SIGV4_MISMATCH);
    assert_int_equal(verify("/a/b/c?b=2&a=1&a=0&x=", AUTH SIG, "", BODY, now), SIGV4_MISMATCH);
    assert_int_equal(verify("/a%2Fb/c?b=3&a=1&a=0&x=", AUTH SIG, "", BODY, now), SIGV4_MISMATCH);
    assert_int_equal(verify("/a%2Fb/c?x&a=0&a=1&b=2", AUTH SIG, "", BODY, now), SIGV4_OK);
    assert_int_equal(verify(t,
                            AUTH "08923de504a2f890327712aea19506a81697dbd06578c6bae185a4544c43f440",
                            "", BODY, now),
                     SIGV4_MISMATCH);
    /* an unsigned header may be added; a second X-Multi changes the signed value */
    assert_int_equal(verify(t, AUTH SIG, "X-Other: 1\r\n", BODY, now), SIGV4_OK);
    assert_int_equal(verify(t, AUTH SIG, "X-Multi: c\r\n", BODY, now), SIGV4_MISMATCH);
    /* unknown key; a signed header missing; host not signed */
    assert_int_equal(verify(t,
                            "AWS4-HMAC-SHA256 Credential=AKIDOTHER/20261204/us-east-1/sqs/"
                            "aws4_request, SignedHeaders=host, Signature=" SIG,
                            "", BODY, now),
                     SIGV4_UNKNOWN_KEY);
    assert_int_equal(verify(t,
                            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/sqs/"
                            "aws4_request, SignedHeaders=host;x-nope, Signature=" SIG,
                            "", BODY, now),
                     SIGV4_MALFORMED);
    assert_int_equal(verify(t,
                            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/sqs/"
                            "aws4_request, SignedHeaders=x-amz-date, Signature=" SIG,
                            "", BODY, now),
                     SIGV4_MALFORMED);
    /* the credential's date must be X-Amz-Date's */
    assert_int_equal(verify(t,
                            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/sqs/"
                            "aws4_request, SignedHeaders=host, Signature=" SIG,
                            "", BODY, now),
                     SIGV4_MALFORMED);
}

static void test_parse(void **state)
{
    (void)state;
    struct sigv4_auth a;
    const char *good = AUTH SIG;
    assert_int_equal(sigv4_parse_authorization(good, strlen(good), &a), 0);
    assert_int_equal(a.access_key.len, 11);
    assert_memory_equal(a.region.p, "us-east-1", 9);
    assert_memory_equal(a.service.p, "sqs", 3);
    assert_int_equal(a.signed_headers.len,
                     strlen("content-type;host;x-amz-date;x-amz-target;x-multi"));
    /* every shorter prefix is refused, without reading past it */
    for (size_t n = 0; n < strlen(good); n++) {
        char buf[512];
        memcpy(buf, good, n);
        assert_int_equal(sigv4_parse_authorization(buf, n, &a), -EINVAL);
    }
    static const char *const bad[] = {
        "AWS4-HMAC-SHA1 Credential=K/20261204/r/s/aws4_request, SignedHeaders=host, Signature=" SIG,
        "AWS4-HMAC-SHA256 Credential=K/2026120/r/s/aws4_request, SignedHeaders=host, "
        "Signature=" SIG,
        "AWS4-HMAC-SHA256 Credential=K/20261204/r/s/aws5_request, SignedHeaders=host, "
        "Signature=" SIG,
        "AWS4-HMAC-SHA256 Credential=K/20261204//s/aws4_request, SignedHeaders=host, "
        "Signature=" SIG,
        "AWS4-HMAC-SHA256 Credential=K/20261204/r/s/aws4_request, SignedHeaders=host, "
        "Signature=X" SIG,
        "AWS4-HMAC-SHA256 Credential=K/20261204/r/s/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=K/20261204/r/s/aws4_request, Credential=K/20261204/r/s/"
        "aws4_request, SignedHeaders=host, Signature=" SIG,
        "AWS4-HMAC-SHA256 Credential=K/20261204/r/s/aws4_request, Other=1, SignedHeaders=host, "
        "Signature=" SIG,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sigv4_parse_authorization(bad[i], strlen(bad[i]), &a) != -EINVAL)
            fail_msg("case %zu accepted", i);
    const char *reordered = "AWS4-HMAC-SHA256 Signature=" SIG ",Credential=K/20261204/r/s/"
                            "aws4_request,SignedHeaders=host";
    assert_int_equal(sigv4_parse_authorization(reordered, strlen(reordered), &a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_botocore_vector),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
