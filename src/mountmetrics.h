/*
 * mountmetrics.h - a mount's figures as a Prometheus textfile (snapfs -o
 * metrics_file=FILE), rewritten every few seconds for node_exporter's
 * textfile collector, the way snapctl --metrics-file reports a run.
 *
 * The file is the mount's own (one per mount): its block cache (hits in
 * memory and on disk, fetches, bytes fetched, prefetches, what the caches
 * hold) and, for each label of control/ in use, its state (one sample of
 * snapfs_control_state per label, the state as a label), what is staged,
 * what the running or last commit uploaded, and when the last commit of
 * this mount ended, how long it took, what it added.  Every write
 * replaces the file atomically.  At unmount a last write says
 * snapfs_mount_up 0, so a collector tells a stopped mount from a stale
 * file.
 *
 * A writer thread does the work; a failed write is logged once per
 * failure streak, and the mount goes on.
 */
#ifndef SNAPFS_MOUNTMETRICS_H
#define SNAPFS_MOUNTMETRICS_H

#include "cache.h"
#include "control.h"

struct mountmetrics;

/* Writes path once (failing, with the message, when it cannot: a bad
 * path is a start-up error) and then every interval seconds.  mountpoint
 * labels the samples; log (may be NULL) takes write failures. */
int mountmetrics_start(const char *path, double interval,
		       const char *mountpoint, struct cache *cache,
		       struct control *ctl,
		       void (*log)(void *ctx, const char *msg), void *log_ctx,
		       struct mountmetrics **out);
/* Stops the thread and writes the last file (snapfs_mount_up 0). */
void mountmetrics_stop(struct mountmetrics *m);

#endif
