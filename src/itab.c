/* itab.c - inode number -> node; see itab.h. */
#include "config.h"

#include <stdlib.h>

#include "err.h"
#include "itab.h"

uint64_t itab_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static size_t slot_of(const struct itab *t, uint64_t ino)
{
	size_t i = itab_mix(ino) & (t->cap - 1);

	while (t->v[i].ino && t->v[i].ino != ino)
		i = (i + 1) & (t->cap - 1);
	return i;
}

int itab_init(struct itab *t)
{
	t->cap = 256;
	t->n = 0;
	t->v = calloc(t->cap, sizeof(*t->v));
	return t->v ? 0 : snap_seterr(SNAP_ENOMEM, "out of memory");
}

void itab_free(struct itab *t)
{
	free(t->v);
	t->v = NULL;
	t->cap = t->n = 0;
}

void *itab_get(const struct itab *t, uint64_t ino)
{
	size_t i = slot_of(t, ino);

	return t->v[i].ino ? t->v[i].p : NULL;
}

static int grow(struct itab *t)
{
	struct itab old = *t;

	t->cap *= 2;
	t->v = calloc(t->cap, sizeof(*t->v));
	if (!t->v) {
		*t = old;
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < old.cap; i++)
		if (old.v[i].ino)
			t->v[slot_of(t, old.v[i].ino)] = old.v[i];
	free(old.v);
	return 0;
}

int itab_put(struct itab *t, uint64_t ino, void *p)
{
	size_t i;

	if (2 * (t->n + 1) > t->cap)
		SNAP_TRY(grow(t));
	i = slot_of(t, ino);
	if (!t->v[i].ino)
		t->n++;
	t->v[i].ino = ino;
	t->v[i].p = p;
	return 0;
}

void itab_del(struct itab *t, uint64_t ino)
{
	size_t i = slot_of(t, ino), j = i;

	if (!t->v[i].ino)
		return;
	t->v[i].ino = 0;
	t->n--;
	/* Backward shift: move up what probed past the hole. */
	for (;;) {
		size_t home;

		j = (j + 1) & (t->cap - 1);
		if (!t->v[j].ino)
			return;
		home = itab_mix(t->v[j].ino) & (t->cap - 1);
		/* Stays when its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		t->v[i] = t->v[j];
		t->v[j].ino = 0;
		i = j;
	}
}
