/* treefetch.c - windowed parallel fetch of directory objects. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "treefetch.h"
#include "workq.h"

enum { SLOT_FREE, SLOT_QUEUED, SLOT_DONE };

struct treefetch {
	struct repo *r;
	const char *series;
	struct workq *q;
	pthread_mutex_t lock;
	pthread_cond_t done;
};

struct tf_slot {
	struct treefetch *tf;
	struct ref ref;
	struct tree t;
	int state, rc;
	char msg[512];
};

int treefetch_new(struct repo *r, const char *series, int threads,
		  struct treefetch **out)
{
	struct treefetch *tf = calloc(1, sizeof(*tf));
	int rc;

	if (!tf)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	tf->r = r;
	tf->series = series;
	rc = workq_create(&tf->q, threads, 4 * threads);
	if (rc) {
		free(tf);
		return rc;
	}
	pthread_mutex_init(&tf->lock, NULL);
	pthread_cond_init(&tf->done, NULL);
	*out = tf;
	return 0;
}

void treefetch_free(struct treefetch *tf)
{
	if (!tf)
		return;
	workq_destroy(tf->q);
	pthread_mutex_destroy(&tf->lock);
	pthread_cond_destroy(&tf->done);
	free(tf);
}

static void fetch(void *arg)
{
	struct tf_slot *s = arg;
	struct treefetch *tf = s->tf;
	struct tree t;
	int rc = repo_read_tree(tf->r, tf->series, &s->ref, &t);

	pthread_mutex_lock(&tf->lock);
	s->rc = rc;
	if (rc)
		snprintf(s->msg, sizeof(s->msg), "%s", snap_errmsg());
	else
		s->t = t;
	s->state = SLOT_DONE;
	pthread_cond_broadcast(&tf->done);
	pthread_mutex_unlock(&tf->lock);
}

/* Queues fetches until `width` subdirectories past the last taken one are
 * on their way. */
static void fill(struct tf_window *w)
{
	while (w->queued < w->nsubs && w->queued < w->taken + w->width) {
		struct tf_slot *s = &w->slots[w->queued % w->width];

		s->tf = w->tf;
		s->ref = w->dir->ents[w->subs[w->queued]].sub;
		s->state = SLOT_QUEUED;
		w->queued++;
		workq_submit(w->tf->q, fetch, s);
	}
}

int tfw_open(struct tf_window *w, struct treefetch *tf,
	     const struct tree *dir, size_t width)
{
	memset(w, 0, sizeof(*w));
	w->tf = tf;
	w->dir = dir;
	w->width = width ? width : 1;
	for (size_t i = 0; i < dir->n; i++)
		if (dir->ents[i].type == ET_DIR)
			w->nsubs++;
	if (!w->nsubs)
		return 0;
	w->subs = malloc(w->nsubs * sizeof(*w->subs));
	w->slots = calloc(w->width, sizeof(*w->slots));
	if (!w->subs || !w->slots) {
		free(w->subs);
		free(w->slots);
		memset(w, 0, sizeof(*w));
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	for (size_t i = 0, k = 0; i < dir->n; i++)
		if (dir->ents[i].type == ET_DIR)
			w->subs[k++] = i;
	fill(w);
	return 0;
}

int tfw_take(struct tf_window *w, size_t entry, struct tree *out)
{
	struct tf_slot *s;
	int rc;

	if (w->taken >= w->nsubs || w->subs[w->taken] != entry)
		return repo_read_tree(w->tf->r, w->tf->series,
				      &w->dir->ents[entry].sub, out);
	s = &w->slots[w->taken % w->width];
	pthread_mutex_lock(&w->tf->lock);
	while (s->state != SLOT_DONE)
		pthread_cond_wait(&w->tf->done, &w->tf->lock);
	pthread_mutex_unlock(&w->tf->lock);
	rc = s->rc;
	if (rc)
		snap_errset_msg(s->msg);
	else
		*out = s->t;
	memset(&s->t, 0, sizeof(s->t));
	s->state = SLOT_FREE;
	w->taken++;
	fill(w);
	return rc;
}

void tfw_close(struct tf_window *w)
{
	if (!w->slots)
		return;
	pthread_mutex_lock(&w->tf->lock);
	for (size_t i = 0; i < w->width; i++)
		while (w->slots[i].state == SLOT_QUEUED)
			pthread_cond_wait(&w->tf->done, &w->tf->lock);
	pthread_mutex_unlock(&w->tf->lock);
	for (size_t i = 0; i < w->width; i++)
		if (w->slots[i].state == SLOT_DONE)
			tree_free(&w->slots[i].t);
	free(w->slots);
	free(w->subs);
	memset(w, 0, sizeof(*w));
}
