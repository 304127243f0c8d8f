/*
 * ixobj.h - a backup's index object: where the chunks it stored are, so
 * that the next backup of the series loads its dedup index from one small
 * object per backup instead of one pack trailer per pack.
 *
 * index/<series>/<num>, put create-only just before the manifest:
 *   "SNX1" | raw length (u32le) | blob id (32) | blob (blob.h)
 * The plaintext: token (16 random bytes) | series (64, NUL-padded) |
 * num (u32le) | count (u32le) | count x (pack (16) | id (32) | offset |
 * stored length | raw length, u32le each).
 *
 * The manifest names the token (index_token).  A reader uses an index
 * object only through its manifest and only when token, series and number
 * all match: the object of a writer that lost the race for the number, or
 * of a backup that never committed, is never taken.  Everything else falls
 * back to the trailers of the packs the manifest lists, as for backups of
 * writers that predate index objects.  See snapfs(5), INDEX OBJECTS.
 */
#ifndef SNAPFS_IXOBJ_H
#define SNAPFS_IXOBJ_H

#include "index.h"
#include "repo.h"

/* Refuses larger index objects unread (a million chunks take 64 MB). */
#define IXOBJ_MAX (256u << 20)

void ixobj_key(const char *series, uint32_t num, char *out, size_t n);

/* Puts the object of backup num: the refs of ix that point into packs
 * (npacks of them, the packs this backup wrote).  token receives the hex
 * token for the manifest; "" when none was written because another
 * writer's object holds the key (0 is returned: the backup goes on
 * without one).  Other store errors are returned. */
int ixobj_put(struct repo *r, const char *series, uint32_t num,
	      const struct index *ix, const uint8_t (*packs)[PACK_ID_LEN],
	      size_t npacks, char token[33]);

/* Adds the refs of backup num's object to ix (under lock, when not
 * NULL), when its token is token.  SNAP_ENOENT when the object is absent,
 * SNAP_ECORRUPT when it does not authenticate or does not match: the
 * caller then falls back to the trailers. */
int ixobj_load(struct repo *r, const char *series, uint32_t num,
	       const char *token, struct index *ix, pthread_mutex_t *lock);

#endif
