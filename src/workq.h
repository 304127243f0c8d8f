/*
 * workq.h - a fixed pool of threads fed by a bounded FIFO of jobs.
 *
 * Bounded on purpose: workq_submit() blocks while max_pending jobs wait, so
 * a fast producer (the file reader) can never queue more data than the
 * pool's bound, whatever the size of the input.  Jobs own their argument;
 * the pool never frees it.  workq_wait() returns when every job submitted
 * so far has finished.  Jobs must not submit to their own queue (they
 * could block forever on a full queue); they may submit to another.
 */
#ifndef SNAPFS_WORKQ_H
#define SNAPFS_WORKQ_H

#include <stddef.h>

struct workq;
typedef void (*work_fn)(void *arg);

int workq_create(struct workq **q, int threads, size_t max_pending);
/* Blocks while the queue is full.  Returns 0 or SNAP_ENOMEM. */
int workq_submit(struct workq *q, work_fn fn, void *arg);
void workq_wait(struct workq *q);
/* Waits for all jobs, stops and joins the threads, frees q. */
void workq_destroy(struct workq *q);

/* Number of online CPUs (at least 1). */
int cpu_count(void);

#endif
