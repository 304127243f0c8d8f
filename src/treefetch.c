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

#define SEG_SIZE (1u << 20)
#define NSEGS 32

/* An aligned piece of a pack, as read from the store. */
struct seg {
	uint8_t pack[PACK_ID_LEN];
	uint64_t start;
	struct buf data;
	uint64_t used; /* LRU clock */
	int state;     /* 0 empty, 1 being read, 2 ready */
};

struct treefetch {
	struct repo *r;
	const char *series;
	struct workq *q;
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct seg segs[NSEGS];
	uint64_t clock;
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
	for (int i = 0; i < NSEGS; i++)
		buf_free(&tf->segs[i].data);
	pthread_mutex_destroy(&tf->lock);
	pthread_cond_destroy(&tf->done);
	free(tf);
}

static struct seg *seg_find(struct treefetch *tf, const uint8_t *pack,
			     uint64_t start)
{
	for (int i = 0; i < NSEGS; i++)
		if (tf->segs[i].state && tf->segs[i].start == start &&
		    !memcmp(tf->segs[i].pack, pack, PACK_ID_LEN))
			return &tf->segs[i];
	return NULL;
}

/* Copies the blob's stored bytes out of the segment cache, reading the
 * segment that holds it first if needed.  Caller holds tf->lock. */
static int seg_read(struct treefetch *tf, const struct ref *ref,
		    struct buf *out)
{
	uint64_t start = ref->off & ~(uint64_t)(SEG_SIZE - 1);
	struct seg *s;
	int rc = 0;

	for (;;) {
		s = seg_find(tf, ref->pack, start);
		if (!s || s->state == 2)
			break;
		pthread_cond_wait(&tf->done, &tf->lock); /* being read */
	}
	if (!s) {
		struct seg *victim = &tf->segs[0];
		struct buf data = BUF_INIT;

		for (int i = 0; i < NSEGS; i++) {
			struct seg *c = &tf->segs[i];

			if (c->state == 1)
				continue;
			if (c->state == 0 || c->used < victim->used ||
			    victim->state == 1) {
				victim = c;
				if (c->state == 0)
					break;
			}
		}
		if (victim->state == 1)
			goto direct; /* every slot busy: read just this blob */
		s = victim;
		s->state = 1;
		memcpy(s->pack, ref->pack, PACK_ID_LEN);
		s->start = start;
		pthread_mutex_unlock(&tf->lock);
		/* A blob may run past the segment: read up to its end. */
		rc = repo_read_pack(tf->r, tf->series, ref->pack, start,
				    SEG_SIZE > ref->off + ref->len - start
					    ? SEG_SIZE
					    : ref->off + ref->len - start,
				    &data);
		if (rc == SNAP_ECORRUPT && data.len >= ref->off + ref->len - start)
			rc = 0; /* short at the end of the pack: fine */
		pthread_mutex_lock(&tf->lock);
		buf_free(&s->data);
		s->data = data;
		s->state = rc ? 0 : 2;
		pthread_cond_broadcast(&tf->done);
		if (rc)
			return rc;
	}
	if (ref->off + ref->len > s->start + s->data.len)
		goto direct;
	s->used = ++tf->clock;
	out->len = 0;
	return buf_add(out, s->data.p + (ref->off - s->start), ref->len);
direct:
	pthread_mutex_unlock(&tf->lock);
	rc = repo_read_pack(tf->r, tf->series, ref->pack, ref->off, ref->len,
			    out);
	pthread_mutex_lock(&tf->lock);
	return rc;
}

static void fetch(void *arg)
{
	struct tf_slot *s = arg;
	struct treefetch *tf = s->tf;
	struct buf enc = BUF_INIT;
	struct tree t;
	int rc;

	pthread_mutex_lock(&tf->lock);
	rc = seg_read(tf, &s->ref, &enc);
	pthread_mutex_unlock(&tf->lock);
	if (rc == 0)
		rc = repo_decode_tree(tf->r, tf->series, &s->ref, enc.p, &t);
	buf_free(&enc);

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
