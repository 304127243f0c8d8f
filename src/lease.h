/*
 * lease.h - a writer's claim on the packs it has put and not committed.
 *
 * A writer (a backup session; a mount stage that holds streamed packs)
 * puts leases/<series>/<token> before its first pack, and a thread of its
 * own puts it again every lease_period() seconds.  `check --repair`
 * (check.h) deletes a series' unreferenced packs only while no lease of
 * that series was refreshed within its grace, and the grace is at least
 * lease_grace_min(), six periods.  A process that was stopped misses its
 * refreshes, so before committing a writer asks lease_lapsed(): a lease
 * that went three periods without a refresh, now or at any time since it
 * was taken, may have let a repair delete packs the writer's index still
 * names, and the commit fails instead (run the backup again).
 *
 * The lease object is JSON {series, host, pid, started, refreshed} (ns
 * since the epoch), overwritten by each refresh; see snapfs(5).  Leases
 * are deleted when dropped; a writer that died leaves one that repair
 * removes once it is older than the grace.
 *
 * lease_period() is SNAPFS_LEASE_PERIOD seconds when set (tests), else
 * 600.  Failures: lease_take() fails when the first put does (nothing to
 * clean up); a failed refresh is retried at the next period and shows in
 * lease_lapsed().  Thread-safe.
 */
#ifndef SNAPFS_LEASE_H
#define SNAPFS_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct lease;

unsigned lease_period(void);
unsigned lease_grace_min(void);

int lease_take(struct store *st, const char *series, struct lease **out);
/* 0 while fresh; SNAP_ECANCELED with a message when it lapsed. */
int lease_lapsed(struct lease *l);
/* Stops refreshing and deletes the object (a failure is ignored: repair
 * removes it later).  NULL is a no-op. */
void lease_drop(struct lease *l);

/* For repair: how many leases of series were refreshed within grace_s
 * seconds (the first one's holder, "host pid N", into who), after
 * deleting those older than that (counted in *stale). */
int lease_scan(struct store *st, const char *series, int64_t grace_s,
	       char *who, size_t n, uint64_t *live, uint64_t *stale);

#endif
