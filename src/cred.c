/* cred.c - expiring credentials and their refresh; see cred.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cred.h"
#include "err.h"
#include "runcmd.h"
#include "util.h"

#define REFRESH_AHEAD 300 /* seconds before expiry */
#define RETRY_AFTER 5     /* seconds between failed refreshes */

struct cred_cache {
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* a refresh ended */
	cred_fetch_fn fetch; /* NULL: static */
	void *ctx;           /* the fetcher's alone: one fetch at a time */
	void (*ctx_free)(void *);
	struct cred cur;     /* cur.gen counts the credentials fetched */
	time_t fetched;      /* when cur arrived */
	time_t retry_at;     /* no refresh attempt before this */
	int stale;           /* the server refused cur */
	int refreshing;      /* a thread is fetching, without the lock */
	char last_err[512];  /* why the last refresh failed */
	char what[256];
};

void cred_wipe(struct cred *c)
{
	free_secret(c->id);
	free_secret(c->secret);
	free_secret(c->token);
	memset(c, 0, sizeof(*c));
}

static int copy_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	return 0;
}

static int cred_copy(struct cred *dst, const struct cred *src)
{
	int rc;

	memset(dst, 0, sizeof(*dst));
	rc = copy_str(&dst->id, src->id);
	rc = rc ? rc : copy_str(&dst->secret, src->secret);
	rc = rc ? rc : copy_str(&dst->token, src->token);
	dst->expires = src->expires;
	dst->gen = src->gen;
	if (rc)
		cred_wipe(dst);
	return rc;
}

static int cache_alloc(const char *what, struct cred_cache **out)
{
	struct cred_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	snprintf(c->what, sizeof(c->what), "%s", what);
	*out = c;
	return 0;
}

/* The fetch with its result checked: a credential already expired (or
 * about to) is no credential. */
static int fetch_checked(struct cred_cache *c, struct cred *out)
{
	time_t now = time(NULL);
	int rc;

	memset(out, 0, sizeof(*out));
	rc = c->fetch(c->ctx, out);
	if (rc == 0 && (!out->secret || (out->id && !*out->id)))
		rc = snap_seterr(SNAP_EACCES, "%s gave no key", c->what);
	if (rc == 0 && out->expires && out->expires <= now + 10) {
		char when[40];

		format_time((int64_t)out->expires * 1000000000, when);
		rc = snap_seterr(SNAP_EACCES, "%s gave credentials that "
				 "expire at %s (is this host's clock right?)",
				 c->what, when);
	}
	if (rc)
		cred_wipe(out);
	return rc;
}

int cred_cache_new(cred_fetch_fn fetch, void *ctx, void (*ctx_free)(void *),
		   const char *what, struct cred_cache **out)
{
	struct cred_cache *c = NULL;
	int rc = cache_alloc(what, &c);

	if (rc) {
		if (ctx_free)
			ctx_free(ctx);
		return rc;
	}
	c->fetch = fetch;
	c->ctx = ctx;
	c->ctx_free = ctx_free;
	rc = fetch_checked(c, &c->cur);
	if (rc) {
		cred_cache_free(c);
		return rc;
	}
	c->fetched = time(NULL);
	*out = c;
	return 0;
}

int cred_cache_static(const char *id, const char *secret, const char *token,
		      const char *what, struct cred_cache **out)
{
	struct cred src = {(char *)id, (char *)secret, (char *)token, 0, 0};
	struct cred_cache *c = NULL;
	int rc = cache_alloc(what, &c);

	if (rc)
		return rc;
	rc = cred_copy(&c->cur, &src);
	if (rc) {
		cred_cache_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cred_cache_free(struct cred_cache *c)
{
	if (!c)
		return;
	cred_wipe(&c->cur);
	if (c->ctx_free)
		c->ctx_free(c->ctx);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

const char *cred_what(const struct cred_cache *c)
{
	return c->what;
}

/* Whether cur should be replaced now. */
static int due(const struct cred_cache *c, time_t now)
{
	time_t ahead;

	if (!c->fetch || now < c->retry_at)
		return 0;
	if (c->stale)
		return 1;
	if (!c->cur.expires)
		return 0;
	ahead = (c->cur.expires - c->fetched) / 2;
	if (ahead > REFRESH_AHEAD)
		ahead = REFRESH_AHEAD;
	return now >= c->cur.expires - ahead;
}

/* Whether cur may still sign: not refused, not expired. */
static int usable(const struct cred_cache *c, time_t now)
{
	return !c->stale && (!c->cur.expires || now < c->cur.expires);
}

int cred_get(struct cred_cache *c, struct cred *copy)
{
	struct cred fresh;
	time_t now;
	int rc = 0;

	memset(copy, 0, sizeof(*copy));
	pthread_mutex_lock(&c->mu);
	for (;;) {
		now = time(NULL);
		if (c->refreshing || !due(c, now)) {
			/* Requests keep signing with a valid credential while
			 * one thread fetches the next: a slow STS or metadata
			 * service holds back nobody. */
			if (usable(c, now))
				break;
			if (c->refreshing) {
				pthread_cond_wait(&c->cv, &c->mu);
				continue;
			}
			rc = snap_seterr(SNAP_EACCES, "credentials %s and "
					 "refreshing them failed (next try in "
					 "%lds): %s",
					 c->stale ? "refused" : "expired",
					 (long)(c->retry_at - now), c->last_err);
			goto out;
		}
		c->refreshing = 1;
		pthread_mutex_unlock(&c->mu);
		rc = fetch_checked(c, &fresh);
		pthread_mutex_lock(&c->mu);
		c->refreshing = 0;
		pthread_cond_broadcast(&c->cv);
		now = time(NULL);
		if (rc == 0) {
			fresh.gen = c->cur.gen + 1;
			cred_wipe(&c->cur);
			c->cur = fresh;
			c->fetched = now;
			c->stale = 0;
			c->retry_at = 0;
			break;
		}
		c->retry_at = now + RETRY_AFTER;
		snprintf(c->last_err, sizeof(c->last_err), "%s", snap_errmsg());
		/* Still valid: keep signing with it. */
		if (usable(c, now)) {
			rc = 0;
			break;
		}
		snap_preerr(rc, "credentials %s and refreshing them failed",
			    c->stale ? "refused" : "expired");
		goto out;
	}
	rc = cred_copy(copy, &c->cur);
out:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int cred_invalidate(struct cred_cache *c, uint64_t gen)
{
	int can;

	pthread_mutex_lock(&c->mu);
	can = c->fetch != NULL;
	/* Many requests signed with one credential may be refused at once:
	 * one refresh serves them all. */
	if (can && gen == c->cur.gen && !c->stale) {
		c->stale = 1;
		c->retry_at = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return can;
}

time_t cred_parse_time(const char *s)
{
	struct tm tm = {0};
	const char *p;
	char *end;
	long off = 0;

	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		long h = strtol(p + 1, &end, 10), m = 0;

		if (end != p + 3 || *end != ':')
			return -1;
		m = strtol(end + 1, &end, 10);
		off = (h * 60 + m) * 60 * (*p == '-' ? -1 : 1);
		p = end;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	return timegm(&tm) - off;
}

int cred_read_file(const char *what, const char *path, uint8_t *buf,
		   size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;
	size_t n = 0;

	/* A token that cannot be read is a credential problem to the user,
	 * whatever errno says. */
	if (fd < 0) {
		snap_syserr(errno, "%s: %s", what, path);
		return SNAP_EACCES;
	}
	if (read_full(fd, buf, cap - 1, &n)) {
		e = errno;
		close(fd);
		snap_syserr(e, "%s: %s", what, path);
		return SNAP_EACCES;
	}
	close(fd);
	if (n >= cap - 1)
		return snap_seterr(SNAP_EACCES, "%s: %s is too large", what,
				   path);
	while (n && isspace(buf[n - 1]))
		n--;
	buf[n] = 0;
	if (n == 0)
		return snap_seterr(SNAP_EACCES, "%s: %s is empty", what, path);
	return 0;
}
