/*
 * tombstone.h - deleting a series so that nobody mistakes what is left.
 *
 * A series is deleted by first putting tombstones/<series> (a small JSON
 * object: when, by which host), then its manifests newest first, then its
 * packs and its writers' leases, then listing its manifests once more for
 * one a backup in flight put meanwhile.  The tombstone stays: a backup stopped for any length of
 * time before its manifest put finds it, then and once more after the
 * put, and takes its own manifest and packs away instead of reviving a
 * series whose packs are gone (restic #2715).  Readers (repo_list(),
 * repo_newest_series(), the mount) do not show a tombstoned series, and
 * a backup never continues one.
 *
 * Tombstones cost one small object per deleted series and one LIST page
 * per 1000 of them for a listing; see snapfs(5).  Every function is
 * thread-safe; on failure nothing is undone (a delete that stopped part
 * way is finished by running it again: the tombstone is already there).
 */
#ifndef SNAPFS_TOMBSTONE_H
#define SNAPFS_TOMBSTONE_H

#include <stddef.h>
#include <stdint.h>

#include "pack.h"
#include "repo.h"
#include "store.h"

/* "tombstones/<series>" */
void tomb_key(const char *series, char *out, size_t n);

/* 1 when series has a tombstone, 0 when not, or a store error. */
int tomb_exists(struct store *st, const char *series);

/* Drops the backups of tombstoned series from v (sorted or not; order
 * kept), with one listing of tombstones/. */
int tomb_filter(struct store *st, struct backup_id *v, size_t *n);

/* Deletes series as above; *backups and *objects count what went. */
int tomb_delete_series(struct store *st, const char *series,
		       uint32_t *backups, uint64_t *objects);

/* A writer that found its series tombstoned removes what it put: its
 * manifest (num; 0 for none) and its packs.  Returns SNAP_ENOENT with a
 * message saying the series was deleted while the backup ran (or the
 * store error that stopped the cleanup). */
int tomb_withdraw(struct store *st, const char *series, uint32_t num,
		  const uint8_t (*packs)[PACK_ID_LEN], size_t npacks);

#endif
