/*
 * lease.c - see lease.h.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "lease.h"
#include "manifest.h"
#include "util.h"

#define NS 1000000000LL

struct lease {
	struct store *st;
	char key[SERIES_MAX + 64];
	char series[SERIES_MAX];
	int64_t started;
	int64_t ok; /* wall clock of the last refresh that landed */
	int64_t gap; /* the longest time between two of them (sticky) */
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int stop;
};

unsigned lease_period(void)
{
	const char *s = getenv("SNAPFS_LEASE_PERIOD");
	long v = s ? strtol(s, NULL, 10) : 0;

	return v > 0 && v <= 86400 ? (unsigned)v : 600;
}

unsigned lease_grace_min(void)
{
	return 6 * lease_period();
}

static int put_lease(struct lease *l)
{
	char host[256] = "";
	int64_t now = now_ns();
	char *text = NULL;
	json_t *j;
	int rc;

	host_name(host, sizeof(host));
	j = json_pack("{s:s,s:s,s:I,s:I,s:I}", "series", l->series, "host",
		      host, "pid", (json_int_t)getpid(), "started",
		      (json_int_t)l->started, "refreshed", (json_int_t)now);
	if (j)
		text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	rc = store_put(l->st, l->key, text, strlen(text), 0);
	free(text);
	if (rc == 0) {
		/* A stopped process refreshes as soon as it runs again: the
		 * gap is what tells that a repair may have come meanwhile. */
		int64_t prev = __atomic_load_n(&l->ok, __ATOMIC_ACQUIRE);

		if (prev && now - prev > __atomic_load_n(&l->gap, __ATOMIC_ACQUIRE))
			__atomic_store_n(&l->gap, now - prev, __ATOMIC_RELEASE);
		__atomic_store_n(&l->ok, now, __ATOMIC_RELEASE);
	}
	return rc;
}

static void *refresher(void *arg)
{
	struct lease *l = arg;
	struct timespec ts;

	pthread_mutex_lock(&l->lock);
	while (!l->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += lease_period();
		while (!l->stop &&
		       pthread_cond_timedwait(&l->cv, &l->lock, &ts) != ETIMEDOUT)
			;
		if (l->stop)
			break;
		pthread_mutex_unlock(&l->lock);
		(void)put_lease(l); /* a miss shows in lease_lapsed() */
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int lease_take(struct store *st, const char *series, struct lease **out)
{
	struct lease *l = calloc(1, sizeof(*l));
	uint8_t tok[8];
	char hex[17];
	int rc;

	*out = NULL;
	if (!l)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	rc = random_bytes(tok, sizeof(tok));
	if (rc) {
		free(l);
		return rc;
	}
	hex_encode(tok, sizeof(tok), hex);
	l->st = st;
	snprintf(l->series, sizeof(l->series), "%s", series);
	snprintf(l->key, sizeof(l->key), "leases/%s/%s", series, hex);
	l->started = now_ns();
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cv, NULL);
	rc = put_lease(l);
	if (rc == 0 && pthread_create(&l->th, NULL, refresher, l))
		rc = snap_seterr(SNAP_ENOMEM, "cannot start a thread");
	if (rc) {
		snap_preerr(rc, "putting the lease of series %s", series);
		if (__atomic_load_n(&l->ok, __ATOMIC_ACQUIRE))
			(void)store_del(st, l->key);
		pthread_mutex_destroy(&l->lock);
		pthread_cond_destroy(&l->cv);
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int lease_lapsed(struct lease *l)
{
	int64_t ok = __atomic_load_n(&l->ok, __ATOMIC_ACQUIRE);
	int64_t gap = __atomic_load_n(&l->gap, __ATOMIC_ACQUIRE);
	int64_t age = now_ns() - ok;

	if (gap > age)
		age = gap;
	if (age <= 3LL * lease_period() * NS)
		return 0;
	return snap_seterr(SNAP_ECANCELED,
			   "this backup's lease on series %s went %lld s "
			   "without a refresh (the process was stopped, or "
			   "the store refused the refreshes): a 'check "
			   "--repair' may have removed packs it uses, so it "
			   "commits nothing; run it again",
			   l->series, (long long)(age / NS));
}

void lease_drop(struct lease *l)
{
	char msg[1024];

	if (!l)
		return;
	/* Dropped after a failure too: its message is the caller's. */
	snprintf(msg, sizeof(msg), "%s", snap_errmsg());
	pthread_mutex_lock(&l->lock);
	l->stop = 1;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->th, NULL);
	(void)store_del(l->st, l->key);
	snap_errset_msg(msg);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cv);
	free(l);
}

int lease_scan(struct store *st, const char *series, int64_t grace_s,
	       char *who, size_t n, uint64_t *live, uint64_t *stale)
{
	struct keylist k = {0};
	struct buf b = BUF_INIT;
	char prefix[SERIES_MAX + 16];
	int64_t now = now_ns();
	int rc;

	*live = 0;
	who[0] = 0;
	snprintf(prefix, sizeof(prefix), "leases/%s/", series);
	rc = store_keys(st, prefix, &k);
	for (size_t i = 0; rc == 0 && i < k.n; i++) {
		json_t *j, *h;
		json_int_t t = 0, pid = 0;

		b.len = 0;
		rc = store_get(st, k.keys[i], 0, -1, &b);
		if (rc == SNAP_ENOENT) { /* dropped meanwhile */
			rc = 0;
			continue;
		}
		if (rc)
			break;
		j = json_loadb((const char *)b.p, b.len, 0, NULL);
		if (j && json_unpack(j, "{s:I,s:I}", "refreshed", &t, "pid",
				     &pid) == 0 &&
		    now - t <= grace_s * NS) {
			if (!*live && n) {
				h = json_object_get(j, "host");
				snprintf(who, n, "%s pid %lld",
					 json_is_string(h) ? json_string_value(h)
							   : "?",
					 (long long)pid);
			}
			(*live)++;
		} else {
			/* Stale, or not a lease we can read: a writer's
			 * lease is always readable, so it is no writer's. */
			rc = store_del(st, k.keys[i]);
			*stale += rc == 0;
		}
		json_decref(j);
	}
	keylist_free(&k);
	buf_free(&b);
	return rc;
}
