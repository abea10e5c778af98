/* TLS certificates for the HTTP listeners (tls.h): loading and checking a
 * pair with gnutls, and the certificate callback MHD's gnutls sessions ask
 * during each handshake. The callback runs on whichever thread runs MHD;
 * a swap is one atomic store, so it needs no lock. */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "clock.h"
#include "log.h"
#include "secretfile.h"
#include "xalloc.h"

/* A chain longer than this is a mistake (a bundle of CAs, not a chain). */
#define TLS_CHAIN_MAX 16
#define TLS_CERT_FILE_MAX (1024 * 1024)
#define TLS_KEY_FILE_MAX (64 * 1024)

struct tls_pair {
    gnutls_pcert_st pcerts[TLS_CHAIN_MAX];
    unsigned npcerts;
    gnutls_privkey_t key;
    char describe[512];
    struct tls_pair *next; /* retired, in tls_server */
};

struct tls_server {
    _Atomic(struct tls_pair *) current;
    struct tls_pair *retired;
    unsigned long long failed, failed_logged; /* handshakes */
    int64_t failed_log_ns;
};

/* What libmicrohttpd 0.9.75 logs for every failed handshake. */
#define TLS_MHD_HANDSHAKE_FAILED "Error: received handshake message out of context."
#define TLS_FAILED_LOG_NS (10 * CLOCK_NS_PER_S)

static struct tls_server *tls_the_server;

void tls_pair_free(struct tls_pair *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->npcerts; i++)
        gnutls_pcert_deinit(&p->pcerts[i]);
    if (p->key)
        gnutls_privkey_deinit(p->key);
    free(p);
}

const char *tls_pair_describe(const struct tls_pair *p)
{
    return p->describe;
}

static void tls_hex(const unsigned char *b, size_t n, int colons, char *out, size_t out_len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o + 4 <= out_len; i++)
        o += (size_t)snprintf(out + o, out_len - o, "%s%02X", colons && i ? ":" : "", b[i]);
}

/* The leaf's subject, serial, SHA-256 fingerprint (as `openssl x509
 * -fingerprint -sha256` prints it) and end of validity. */
static void tls_pair_set_describe(struct tls_pair *p)
{
    gnutls_x509_crt_t crt;
    snprintf(p->describe, sizeof(p->describe), "subject=?");
    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, &p->pcerts[0].cert, GNUTLS_X509_FMT_DER) == 0) {
        gnutls_datum_t dn = { NULL, 0 };
        unsigned char serial[64], fpr[32];
        size_t serial_len = sizeof(serial), fpr_len = sizeof(fpr);
        char serial_hex[2 * sizeof(serial) + 1] = "?", fpr_hex[3 * sizeof(fpr) + 1] = "?", until[32] = "?";
        if (gnutls_x509_crt_get_serial(crt, serial, &serial_len) == 0)
            tls_hex(serial, serial_len, 0, serial_hex, sizeof(serial_hex));
        if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fpr, &fpr_len) == 0)
            tls_hex(fpr, fpr_len, ':', fpr_hex, sizeof(fpr_hex));
        time_t t = gnutls_x509_crt_get_expiration_time(crt);
        struct tm tm;
        if (t != (time_t)-1 && gmtime_r(&t, &tm))
            strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
        int have_dn = gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0;
        snprintf(p->describe, sizeof(p->describe), "subject=\"%.200s\" serial=%s sha256=%s not_after=%s chain=%u",
                 have_dn ? (const char *)dn.data : "?", serial_hex, fpr_hex, until, p->npcerts);
        gnutls_free(dn.data);
    }
    gnutls_x509_crt_deinit(crt);
}

/* Does key belong to the leaf? Their public keys' SHA-256 ids agree. */
static int tls_key_matches(gnutls_pcert_st *leaf, gnutls_privkey_t key)
{
    gnutls_pubkey_t pub;
    unsigned char a[64], b[64];
    size_t alen = sizeof(a), blen = sizeof(b);
    if (gnutls_pubkey_init(&pub) < 0)
        return 0;
    int ok = gnutls_pubkey_import_privkey(pub, key, 0, 0) == 0 &&
             gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &alen) == 0 &&
             gnutls_pubkey_get_key_id(leaf->pubkey, GNUTLS_KEYID_USE_SHA256, b, &blen) == 0 && alen == blen &&
             memcmp(a, b, alen) == 0;
    gnutls_pubkey_deinit(pub);
    return ok;
}

struct tls_pair *tls_pair_load(const char *cert_path, const char *key_path, const char **bad_key, char *why,
                               size_t why_len)
{
    char reason[256];
    char *cert_pem = NULL, *key_pem = NULL;
    size_t cert_len, key_len;
    struct tls_pair *p = xcalloc(1, sizeof(*p));
    int rc;

    *bad_key = "tls_cert";
    if (secretfile_read(cert_path, 0, TLS_CERT_FILE_MAX, &cert_pem, &cert_len, reason, sizeof(reason)) < 0) {
        snprintf(why, why_len, "%s: %s", cert_path, reason);
        goto fail;
    }
    gnutls_datum_t data = { (unsigned char *)cert_pem, (unsigned)cert_len };
    p->npcerts = TLS_CHAIN_MAX;
    rc = gnutls_pcert_list_import_x509_raw(p->pcerts, &p->npcerts, &data, GNUTLS_X509_FMT_PEM,
                                           GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (rc < 0) {
        p->npcerts = 0;
        if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER)
            snprintf(why, why_len, "%s: more than %d certificates; give the server's certificate and its "
                     "intermediates only", cert_path, TLS_CHAIN_MAX);
        else
            snprintf(why, why_len, "%s: not a PEM certificate (chain, leaf first): %s", cert_path,
                     gnutls_strerror(rc));
        goto fail;
    }
    if (p->npcerts == 0) {
        snprintf(why, why_len, "%s: no certificate in it", cert_path);
        goto fail;
    }

    *bad_key = "tls_key";
    if (secretfile_read(key_path, 1, TLS_KEY_FILE_MAX, &key_pem, &key_len, reason, sizeof(reason)) < 0) {
        snprintf(why, why_len, "%s: %s", key_path, reason);
        goto fail;
    }
    data = (gnutls_datum_t){ (unsigned char *)key_pem, (unsigned)key_len };
    if ((rc = gnutls_privkey_init(&p->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(p->key, &data, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(why, why_len, "%s: not a PEM private key (an unencrypted PKCS#8, RSA or EC key): %s", key_path,
                 gnutls_strerror(rc));
        goto fail;
    }
    if (!tls_key_matches(&p->pcerts[0], p->key)) {
        snprintf(why, why_len, "%s is not the key of the certificate in %s (the first one, when it is a chain)",
                 key_path, cert_path);
        goto fail;
    }
    explicit_bzero(key_pem, key_len);
    free(key_pem);
    free(cert_pem);
    tls_pair_set_describe(p);
    return p;

fail:
    if (key_pem)
        explicit_bzero(key_pem, key_len);
    free(key_pem);
    free(cert_pem);
    tls_pair_free(p);
    errno = EINVAL;
    return NULL;
}

/* ---- serving ------------------------------------------------------------ */

static int tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                        const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                        unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    (void)session;
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    struct tls_pair *p = tls_the_server ? atomic_load(&tls_the_server->current) : NULL;
    if (!p)
        return -1;
    *pcert = p->pcerts;
    *pcert_length = p->npcerts;
    *privkey = p->key;
    return 0;
}

void *tls_server_callback(void)
{
    gnutls_certificate_retrieve_function2 *fn = tls_retrieve;
    return (void *)fn;
}

struct tls_server *tls_server_new(struct tls_pair *first)
{
    if (tls_the_server) {
        errno = EBUSY;
        return NULL;
    }
    struct tls_server *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->current, first);
    tls_the_server = s;
    return s;
}

struct tls_server *tls_server_open(const char *section, const char *cert, const char *key)
{
    const char *bad;
    char why[512];
    struct tls_pair *p = tls_pair_load(cert, key, &bad, why, sizeof(why));
    if (!p) {
        log_error("cannot use the TLS certificate key=%s.%s reason=\"%s\"", section, bad, why);
        errno = EINVAL;
        return NULL;
    }
    struct tls_server *s = tls_server_new(p);
    if (!s) {
        int err = errno;
        log_error_errno(err, "cannot serve TLS listener=%s", section);
        tls_pair_free(p);
        errno = err;
        return NULL;
    }
    log_info("%s tls %s", section, tls_pair_describe(p));
    return s;
}

void tls_server_swap(struct tls_server *s, struct tls_pair *p)
{
    struct tls_pair *old = atomic_exchange(&s->current, p);
    old->next = s->retired;
    s->retired = old;
}

const struct tls_pair *tls_server_current(const struct tls_server *s)
{
    return atomic_load(&((struct tls_server *)s)->current);
}

int tls_server_mhd_log(struct tls_server *s, const char *listener, const char *text)
{
    if (!s || strncmp(text, TLS_MHD_HANDSHAKE_FAILED, strlen(TLS_MHD_HANDSHAKE_FAILED)) != 0)
        return 0;
    s->failed++;
    int64_t now = clock_now_ns();
    if (now < s->failed_log_ns)
        return 1;
    s->failed_log_ns = now + TLS_FAILED_LOG_NS;
    log_warn("tls handshakes failed, since the last warning listener=%s count=%llu hint=\"plain HTTP to the "
             "HTTPS port, or a client that does not trust the certificate\"",
             listener, s->failed - s->failed_logged);
    s->failed_logged = s->failed;
    return 1;
}

int tls_server_reload(struct tls_server *s, const char *section, const char *cert, const char *key, char *why,
                      size_t why_len)
{
    if (!s && !cert[0])
        return 0;
    if (!s || !cert[0]) {
        snprintf(why, why_len, "key=%s.tls_cert: the listener serves %s; turning TLS %s takes a restart", section,
                 s ? "TLS" : "plain HTTP", s ? "off" : "on");
        return -EINVAL;
    }
    const char *bad;
    char reason[512];
    struct tls_pair *p = tls_pair_load(cert, key, &bad, reason, sizeof(reason));
    if (!p) {
        snprintf(why, why_len, "key=%s.%s: %s", section, bad, reason);
        return -EINVAL;
    }
    tls_server_swap(s, p);
    return 0;
}

void tls_server_free(struct tls_server *s)
{
    if (!s)
        return;
    tls_pair_free(atomic_load(&s->current));
    while (s->retired) {
        struct tls_pair *p = s->retired;
        s->retired = p->next;
        tls_pair_free(p);
    }
    if (tls_the_server == s)
        tls_the_server = NULL;
    free(s);
}

/* ---- checking a config ---------------------------------------------------- */

int tls_config_check_files(const struct config *cfg, char **errors)
{
    const char *sections[] = { "renderer", "exporter" };
    const char *certs[] = { cfg->renderer.tls_cert, cfg->exporter.tls_cert };
    const char *keys[] = { cfg->renderer.tls_key, cfg->exporter.tls_key };
    char *text = NULL;
    for (int i = 0; i < 2; i++) {
        if (!certs[i][0])
            continue;
        const char *bad;
        char why[512];
        struct tls_pair *p = tls_pair_load(certs[i], keys[i], &bad, why, sizeof(why));
        if (p) {
            tls_pair_free(p);
            /* A root supervisor read them; its children, as user, must too. */
            char reason[384];
            const char *paths[] = { certs[i], keys[i] }, *names[] = { "tls_cert", "tls_key" };
            int j;
            for (j = 0; j < 2; j++)
                if (secretfile_check_user(paths[j], cfg->supervisor.user, reason, sizeof(reason)) < 0)
                    break;
            if (j == 2)
                continue;
            bad = names[j];
            snprintf(why, sizeof(why), "%s: %s", paths[j], reason);
        }
        char where[PATH_MAX + 16];
        config_where(cfg, sections[i], bad, where, sizeof(where));
        char *line = xasprintf("%s%s key=%s.%s: %s\n", text ? text : "", where, sections[i], bad, why);
        free(text);
        text = line;
    }
    const char *tokens = cfg->renderer.auth_token_file;
    char reason[384];
    if (tokens[0] && secretfile_check_user(tokens, cfg->supervisor.user, reason, sizeof(reason)) < 0) {
        char where[PATH_MAX + 16];
        config_where(cfg, "renderer", "auth_token_file", where, sizeof(where));
        char *line = xasprintf("%s%s key=renderer.auth_token_file: %s: %s\n", text ? text : "", where, tokens,
                               reason);
        free(text);
        text = line;
    }
    if (errors)
        *errors = text;
    else
        free(text);
    return text ? -EINVAL : 0;
}
