/*
 * loop.h - the daemon's session loop: leader/followers with a spinning
 * leader.
 *
 * Why not fuse_session_loop_mt(): on virtual machines a cross-CPU wakeup
 * costs tens of microseconds, and the stock loop pays one to wake a
 * sleeping worker for every request (ls -l: three requests per file).
 * Here one thread, the leader, reads requests; after each it polls the
 * device without sleeping for a short while, so a request that follows
 * closely is picked up at once.  It then serves the request itself.
 *
 * A slow request (a fetch from the store) must not hold up the others:
 * while requests flow, a standby thread checks every 10 ms and takes over
 * reading when the leader has been busy with one request for longer than
 * that; the old leader finishes its request and becomes a follower.
 * Threads are started as needed, up to max_threads.  An idle mount sleeps:
 * the leader blocks in poll() and the standby on a condition variable.
 *
 * Returns 0 when the session ends (unmount, signal), -1 on a device error.
 */
#ifndef SNAPFS_LOOP_H
#define SNAPFS_LOOP_H

#include <fuse_lowlevel.h>

int spin_loop(struct fuse_session *se, int max_threads);

/* Called by a handler about to do something long (a file read): the
 * standby takes over reading requests at once instead of after 10 ms, so
 * the kernel's concurrent read-ahead requests are served in parallel.  A
 * no-op outside the leader. */
void loop_handoff(void);

#endif
