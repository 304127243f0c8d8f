/* ixkeep.c - a label's dedup index kept between commits; see ixkeep.h. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ixkeep.h"
#include "manifest.h"
#include "util.h"
#include "workq.h"

struct ixkeep {
	struct repo *r;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct index ix;
	char series[SERIES_MAX]; /* whose index ix is (or is loading) */
	int have;                /* ix is series' */
	int loading, lent;
	pthread_t th;
	int th_live;
};

int ixkeep_open(struct repo *r, struct ixkeep **out)
{
	struct ixkeep *k = calloc(1, sizeof(*k));

	*out = NULL;
	if (!k)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	k->r = r;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cv, NULL);
	index_init(&k->ix);
	*out = k;
	return 0;
}

static void *loader(void *arg)
{
	struct ixkeep *k = arg;
	struct index ix;
	struct index_load il;
	char series[SERIES_MAX];
	int rc;

	pthread_mutex_lock(&k->lock);
	memcpy(series, k->series, sizeof(series));
	pthread_mutex_unlock(&k->lock);
	index_init(&ix);
	/* Only what committed backups name (index.h): a pack of a failed
	 * backup may be deleted by an abort or a repair while the index
	 * lives, and a later commit must not take chunks from it. */
	rc = index_load_backups(&ix, k->r, series, NULL, 4 * cpu_count(),
				&il);
	pthread_mutex_lock(&k->lock);
	/* Packs that failed authentication are not in it: the commit's own
	 * load would warn of them, so it makes that load instead. */
	if (rc == 0 && !il.bad && strcmp(series, k->series) == 0) {
		index_free(&k->ix);
		k->ix = ix;
		k->have = 1;
	} else {
		index_free(&ix);
	}
	k->loading = 0;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* k->lock held. */
static void wait_idle(struct ixkeep *k)
{
	while (k->loading || k->lent)
		pthread_cond_wait(&k->cv, &k->lock);
	if (k->th_live) {
		pthread_join(k->th, NULL);
		k->th_live = 0;
	}
}

void ixkeep_load(struct ixkeep *k, const char *series)
{
	pthread_mutex_lock(&k->lock);
	wait_idle(k);
	if (!strcmp(k->series, series) && k->have) {
		pthread_mutex_unlock(&k->lock);
		return;
	}
	index_free(&k->ix);
	index_init(&k->ix);
	k->have = 0;
	snprintf(k->series, sizeof(k->series), "%s", series);
	if (series[0] && pthread_create(&k->th, NULL, loader, k) == 0) {
		k->th_live = 1;
		k->loading = 1;
	}
	pthread_mutex_unlock(&k->lock);
}

struct index *ixkeep_get(struct ixkeep *k, const char *series)
{
	struct index *ix = NULL;

	pthread_mutex_lock(&k->lock);
	wait_idle(k);
	if (k->have && !strcmp(k->series, series)) {
		k->lent = 1;
		ix = &k->ix;
	}
	pthread_mutex_unlock(&k->lock);
	return ix;
}

struct index *ixkeep_try(struct ixkeep *k, const char *series, int *later)
{
	struct index *ix = NULL;

	pthread_mutex_lock(&k->lock);
	*later = k->loading || k->lent;
	if (!*later && k->have && !strcmp(k->series, series)) {
		k->lent = 1;
		ix = &k->ix;
	}
	pthread_mutex_unlock(&k->lock);
	return ix;
}

void ixkeep_put(struct ixkeep *k, int valid)
{
	pthread_mutex_lock(&k->lock);
	k->lent = 0;
	if (!valid) {
		index_free(&k->ix);
		index_init(&k->ix);
		k->have = 0;
		k->series[0] = 0;
	}
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->lock);
}

void ixkeep_close(struct ixkeep *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	wait_idle(k);
	pthread_mutex_unlock(&k->lock);
	index_free(&k->ix);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->cv);
	free(k);
}
