/*
 * cred.h - a credential that expires, shared by every thread of a store.
 *
 * A role's keys (STS, instance metadata, credential_process) and an Entra
 * ID bearer token last an hour or so, while a mount lives for weeks.  A
 * struct cred_cache holds the current credential and asks its source for
 * a new one shortly before expiry (5 minutes, or half the lifetime when
 * that is shorter), so no request is signed with one about to lapse.  A
 * refresh that fails while the old credential is still valid keeps the
 * old one and tries again after a few seconds: a short outage of the
 * metadata service or STS costs nothing.  Only when the credential has
 * expired and no new one comes does cred_get() fail, with the source's
 * message.  A static credential (environment, profile keys) never
 * refreshes.
 *
 * One thread refreshes at a time, outside the cache's lock: the others
 * go on with the current credential while it is valid, and wait for the
 * fetch only when it is not.  Copies handed out are
 * the caller's to wipe with cred_wipe(); the cache wipes its own on free.
 */
#ifndef SNAPFS_CRED_H
#define SNAPFS_CRED_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cred {
	char *id;       /* AWS access key id; NULL for a bearer token */
	char *secret;   /* AWS secret access key, or the bearer token */
	char *token;    /* AWS session token, or NULL */
	time_t expires; /* 0: does not expire */
	uint64_t gen;   /* which fetch of the cache it came from */
};

/* Fetches a fresh credential into *out (zeroed on entry) or fails with a
 * snap_err and a message naming the source. */
typedef int (*cred_fetch_fn)(void *ctx, struct cred *out);

struct cred_cache;

/* A cache over fetch(ctx); the first fetch happens here, so a source that
 * cannot give credentials fails the open with its message.  ctx_free
 * (may be NULL) releases ctx with the cache.  On failure ctx is released
 * too.  what names the source for messages ("instance metadata at URL"). */
int cred_cache_new(cred_fetch_fn fetch, void *ctx, void (*ctx_free)(void *),
		   const char *what, struct cred_cache **out);
/* A cache of one credential that never expires; its strings are copied. */
int cred_cache_static(const char *id, const char *secret, const char *token,
		      const char *what, struct cred_cache **out);
void cred_cache_free(struct cred_cache *c);
/* The source's name given at creation. */
const char *cred_what(const struct cred_cache *c);

/* A copy of the current credential, refreshed first when due.  0, or the
 * source's error once the credential has expired; SNAP_ENOMEM.  *copy is
 * zeroed on failure, so cred_wipe() is always safe. */
int cred_get(struct cred_cache *c, struct cred *copy);
/* The server refused the credential of generation gen (copy.gen) as
 * expired (clocks disagree, or it was revoked): the next cred_get()
 * refreshes, unless a newer one has come meanwhile.  Returns whether the
 * cache has a source to refresh from, i.e. whether retrying can help. */
int cred_invalidate(struct cred_cache *c, uint64_t gen);

void cred_wipe(struct cred *c);

/* RFC 3339 / ISO 8601 UTC time ("2026-12-02T15:00:00Z", fractions and
 * offsets allowed), as STS, IMDS and credential_process give expiry;
 * -1 when it is not one. */
time_t cred_parse_time(const char *s);

/* A token file (web identity, workload identity, container authorization)
 * read whole into buf, trailing whitespace dropped, NUL-terminated: the
 * identity agents rotate them, so sources read them at every fetch.
 * Errors name the file, never its content. */
int cred_read_file(const char *what, const char *path, uint8_t *buf,
		   size_t cap);

#endif
