/* sqs_auth: the SQS listener's Signature V4 check (sqs_internal.h), run
 * before an action when `sqs_auth:` lists keys: the request's signature
 * (sigv4.c) against those keys, answered with the errors AWS gives. */
#include <time.h>

#include "core/log.h"
#include "queue/sigv4.h"
#include "queue/sqs_internal.h"
#include "server/config.h"
#include "server/snapshot.h"

static const char *sqs_auth_secret(void *arg, const char *key, size_t len)
{
    return sigv4_cfg_secret(arg, key, len);
}

int sqs_auth_check(struct sqs_conn *c, const char *body, size_t body_len)
{
    const struct cfg_sqs_auth *a = c->snap->cfg->sqs_auth;
    if (a == NULL)
        return 0;
    enum sigv4_result r = sigv4_verify(&c->msg, body, body_len, sqs_auth_secret, (void *)a,
                                       time(NULL), (uint32_t)(a->max_skew_ms / 1000));
    switch (r) {
    case SIGV4_OK:
        return 0;
    case SIGV4_MISSING:
        sqs_reply_error(c, SQS_ERR_NO_AUTH, "Request is missing Authentication Token");
        break;
    case SIGV4_MALFORMED:
        sqs_reply_error(c, SQS_ERR_INCOMPLETE_SIG,
                        "The request signature does not conform to "
                        "AWS standards (Authorization: AWS4-HMAC-SHA256 with Credential, "
                        "SignedHeaders including host, Signature; and X-Amz-Date).");
        break;
    case SIGV4_UNKNOWN_KEY:
        sqs_reply_error(c, SQS_ERR_TOKEN,
                        "The security token included in the request is "
                        "invalid.");
        break;
    case SIGV4_EXPIRED:
        sqs_reply_error(c, SQS_ERR_SIGNATURE,
                        "Signature expired: X-Amz-Date is more than %u "
                        "seconds away from the server's time.",
                        (unsigned)(a->max_skew_ms / 1000));
        break;
    default:
        sqs_reply_error(c, SQS_ERR_SIGNATURE,
                        "The request signature we calculated does not "
                        "match the signature you provided. Check your AWS Secret Access Key "
                        "and signing method.");
    }
    return -1;
}
