/* TLS on a libmicrohttpd listener (the renderer's, the exporter's TCP one):
 * a certificate chain and its key read from PEM files and checked (the
 * key is a secret file, secretfile.h; it must belong to the certificate),
 * and served through gnutls' certificate callback, so that a reload swaps
 * the pair for new handshakes without touching the listener or the
 * connections already open. */
#ifndef RV_TLS_H
#define RV_TLS_H

#include <stddef.h>

#include "config.h"

/* A certificate chain (leaf first) and the leaf's private key. */
struct tls_pair;

/* Read and check cert_path and key_path. NULL on failure, with *bad_key
 * naming the key at fault ("tls_cert" or "tls_key") and why saying what was
 * wrong, the path first. */
struct tls_pair *tls_pair_load(const char *cert_path, const char *key_path, const char **bad_key, char *why,
                               size_t why_len);
void tls_pair_free(struct tls_pair *p);
/* "subject=... serial=... sha256=... not_after=...", for the log. */
const char *tls_pair_describe(const struct tls_pair *p);

/* What one listener serves: the pair of the last successful load. One per
 * process (gnutls' callback has no argument of ours to find it by). */
struct tls_server;

/* Takes first over. NULL with errno = EBUSY if the process has one. */
struct tls_server *tls_server_new(struct tls_pair *first);
/* A listener's TLS at its start: the pair cert and key name (the keys of
 * section) read, checked and served, and logged ("<section> tls subject=...").
 * NULL, once what was wrong is logged (naming the key), with errno set. */
struct tls_server *tls_server_open(const char *section, const char *cert, const char *key);
/* The gnutls_certificate_retrieve_function2 to give MHD with
 * MHD_OPTION_HTTPS_CERT_CALLBACK (void *: no gnutls types here). */
void *tls_server_callback(void);
/* Any one thread at a time (the HTTP thread may be in a handshake): new
 * handshakes get the new pair from now on. The pair replaced stays in
 * memory until tls_server_free: a session still holds it, and no event
 * tells when the last one is gone (a few KiB per reload). */
void tls_server_swap(struct tls_server *s, struct tls_pair *p);
const struct tls_pair *tls_server_current(const struct tls_server *s);
/* A listener's reload: s (NULL: the listener is plain HTTP) takes the
 * pair cert and key name, the keys of section. 0 (also when both are plain);
 * or -EINVAL with why naming the key ("key=section.tls_key: ...") and s
 * left as it was, also when TLS would be turned on or off (a restart). */
int tls_server_reload(struct tls_server *s, const char *section, const char *cert, const char *key, char *why,
                      size_t why_len);
/* Given each of MHD's log messages (MHD_OPTION_EXTERNAL_LOGGER): its one
 * message for a failed handshake (plain HTTP to the TLS port, a client
 * that does not trust the certificate) is counted and logged at most
 * every 10 s with the count since, so a scanner cannot flood the log.
 * 1 when text was that message (handled), 0 when not. MHD's thread. */
int tls_server_mhd_log(struct tls_server *s, const char *listener, const char *text);
/* After the MHD daemon using it has stopped. */
void tls_server_free(struct tls_server *s);

/* The files the children open as [supervisor] user: both TLS listeners'
 * (those with tls_cert set) are read and checked as the listeners will,
 * and, when the caller is root, opened as that user too, as is
 * [renderer] auth_token_file (secretfile_check_user: the supervisor's one
 * thread only; config_load has read the token file as the caller). 0, or
 * -EINVAL with *errors a malloc'd text of one error per line
 * ("file=F key=section.key: ...", or "env=RENDERVISOR_... key=..." for a key
 * the environment set: config_where). */
int tls_config_check_files(const struct config *cfg, char **errors);

#endif
