/*
 * progress.h - live progress on a terminal: files, bytes, rate, ETA.
 *
 * Engines bump the counters (atomically, from any thread); a reporter
 * thread redraws one status line on stderr four times a second, only when
 * stderr is a TTY.  Totals may arrive late (the backup scanner fills them
 * in while the backup runs); until then no ETA is shown.
 */
#ifndef SNAPFS_PROGRESS_H
#define SNAPFS_PROGRESS_H

#include <pthread.h>
#include <stdint.h>

struct progress {
	const char *verb;
	uint64_t files, bytes;             /* done */
	uint64_t total_files, total_bytes; /* expected */
	int totals_known;
	int enabled;
	int stop;
	double start;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
};

/* enabled=0 makes every call a no-op (not a TTY, or --quiet/--json). */
void progress_start(struct progress *p, const char *verb, int enabled);
void progress_add(struct progress *p, uint64_t files, uint64_t bytes);
void progress_totals(struct progress *p, uint64_t files, uint64_t bytes,
		     int final);
/* Stops the reporter and clears the status line. */
void progress_stop(struct progress *p);

#endif
