/* tls_keys: session ticket keys, shared by every worker of the process.
 *
 *   ring: [ keys[0] (encrypts) | keys[1] | keys[2] ]   all decrypt
 *          \__ rotate: a new random key in front, the oldest dropped
 *
 * A listener's contexts all call tls_ticket_cb with their configuration's
 * tls_tickets. Without a key file that is the process's random ring, made
 * on first use and rotated lazily (the first ticket issued after
 * rotate_ms puts a fresh key in front), so tickets survive a reload and
 * any worker decrypts what another issued. With a key file (the same file
 * on several instances) the file's keys are used as they are: its first
 * key encrypts, and the operator rotates by rewriting the file and
 * reloading. A ticket made with an older key still decrypts and is
 * renewed (callback returns 2). The ring is locked only for the moment a
 * ticket is sealed or opened: once per handshake. */
#include "tls/tls_internal.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#include "core/base64.h"

#define TLS_RANDOM_RING_KEYS 3
#define TLS_ROTATE_DEFAULT_MS (3600ULL * 1000)

static struct tls_keyring tls_random_ring = { .lock = PTHREAD_MUTEX_INITIALIZER };

const struct tls_tickets tls_tickets_default = { .ring = &tls_random_ring,
                                                 .rotate_ms = TLS_ROTATE_DEFAULT_MS };

static uint64_t tls_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Puts a fresh random key in front of r (lock held). Returns 0 or -EIO. */
static int tls_ring_rotate(struct tls_keyring *r, uint64_t now)
{
    struct tls_ticket_key k;
    if (RAND_bytes((unsigned char *)&k, sizeof(k)) != 1)
        return -EIO;
    unsigned keep = r->n < TLS_RANDOM_RING_KEYS ? r->n : TLS_RANDOM_RING_KEYS - 1;
    memmove(&r->keys[1], &r->keys[0], keep * sizeof(k));
    r->keys[0] = k;
    r->n = keep + 1;
    r->rotated_ms = now;
    return 0;
}

static int tls_mac_init(EVP_MAC_CTX *hctx, const struct tls_ticket_key *k)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* Seals a new ticket with keys[0]: 1, or -1 (no ticket). */
static int tls_ticket_seal(const struct tls_tickets *t, unsigned char key_name[16], unsigned char iv[16],
                           EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
    struct tls_keyring *r = t->ring;
    struct tls_ticket_key k;
    pthread_mutex_lock(&r->lock);
    uint64_t now = tls_now_ms();
    if (r->n == 0 || (t->rotate_ms && now - r->rotated_ms >= t->rotate_ms))
        (void)tls_ring_rotate(r, now);
    int have = r->n > 0;
    if (have)
        k = r->keys[0];
    pthread_mutex_unlock(&r->lock);
    if (!have || RAND_bytes(iv, 16) != 1)
        return -1;
    memcpy(key_name, k.name, 16);
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 || tls_mac_init(hctx, &k) != 0)
        return -1;
    return 1;
}

/* Opens a ticket: 1 (current key), 2 (older key: issue a new ticket), 0
 * (unknown key: full handshake), -1 (error). */
static int tls_ticket_open(const struct tls_tickets *t, const unsigned char key_name[16],
                           const unsigned char iv[16], EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
    struct tls_keyring *r = t->ring;
    struct tls_ticket_key k;
    int found = -1;
    pthread_mutex_lock(&r->lock);
    for (unsigned i = 0; i < r->n; i++) {
        if (memcmp(r->keys[i].name, key_name, 16) == 0) {
            k = r->keys[i];
            found = (int)i;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (found < 0)
        return 0;
    if (tls_mac_init(hctx, &k) != 0 || EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1)
        return -1;
    return found == 0 ? 1 : 2;
}

int tls_ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[16], EVP_CIPHER_CTX *cctx,
                  EVP_MAC_CTX *hctx, int enc)
{
    const struct tls_server *srv = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ctx_owner_index());
    const struct tls_tickets *t = srv && srv->tickets ? srv->tickets : &tls_tickets_default;
    if (enc)
        return tls_ticket_seal(t, key_name, iv, cctx, hctx);
    return tls_ticket_open(t, key_name, iv, cctx, hctx);
}

/* The line [p, end) without surrounding blanks. */
static void tls_keys_trim(const char **p, const char **end)
{
    while (*p < *end && (**p == ' ' || **p == '\t' || **p == '\r'))
        (*p)++;
    while (*end > *p && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
        (*end)--;
}

int tls_keys_parse(const char *text, size_t len, struct tls_ticket_key *keys, unsigned max,
                   unsigned *err_line)
{
    const char *p = text, *stop = text + len;
    unsigned n = 0, line = 0;
    while (p < stop) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        const char *end = eol ? eol : stop;
        const char *s = p;
        line++;
        p = eol ? eol + 1 : stop;
        tls_keys_trim(&s, &end);
        if (s == end || *s == '#')
            continue;
        unsigned char raw[BASE64_DECODED_MAX(128)];
        if (n == max || (size_t)(end - s) > 128 ||
            base64_decode(s, (size_t)(end - s), raw, sizeof(raw)) != (ssize_t)sizeof(keys[0])) {
            *err_line = line;
            return -EINVAL;
        }
        memcpy(&keys[n++], raw, sizeof(keys[0]));
    }
    if (n == 0) {
        *err_line = 0;
        return -EINVAL;
    }
    return (int)n;
}
