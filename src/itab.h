/*
 * itab.h - inode number -> node, the table behind the mount's nodes (the
 * backups' in vfs.c, control/'s in overlay.c).
 *
 * Open addressing with linear probing, grown to twice its size at half
 * load; deletion shifts the probe run back, so lookups never meet
 * tombstones.  Number 0 is never a key.  Not thread-safe: the caller's
 * lock guards it.  A failed growth leaves the table as it was.
 */
#ifndef SNAPFS_ITAB_H
#define SNAPFS_ITAB_H

#include <stddef.h>
#include <stdint.h>

struct itab {
	struct itab_slot {
		uint64_t ino; /* 0: empty */
		void *p;
	} *v;
	size_t cap, n;
};

/* 0 or SNAP_ENOMEM. */
int itab_init(struct itab *t);
/* Frees the table, not the nodes. */
void itab_free(struct itab *t);
/* The node of ino, or NULL. */
void *itab_get(const struct itab *t, uint64_t ino);
/* Adds or replaces.  0 or SNAP_ENOMEM. */
int itab_put(struct itab *t, uint64_t ino, void *p);
void itab_del(struct itab *t, uint64_t ino);
/* The node in slot i (for walks over all of them: i < t->cap), or NULL. */
static inline void *itab_at(const struct itab *t, size_t i)
{
	return t->v[i].ino ? t->v[i].p : NULL;
}

/* A 64-bit mixer (splitmix64's finaliser): numbers and name hashes. */
uint64_t itab_mix(uint64_t x);

#endif
