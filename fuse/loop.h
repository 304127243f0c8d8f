/*
 * loop.h - the daemon's session loop: a leader that serves what it reads,
 * followers.
 *
 * Why not fuse_session_loop_mt(): on virtual machines a cross-CPU wakeup
 * costs tens of microseconds, and the stock loop pays one to hand every
 * request to a sleeping worker (ls -l: three requests per file).  Here
 * one thread, the leader, reads a request and serves it itself.  (It used
 * to poll the device without sleeping for 100 us after each request, to
 * catch the next one sooner; on this 2-core VM that took the CPU that the
 * client needed: rsync into control/ ran 30 % slower with it, reads were
 * no faster, and so the leader now sleeps in read().)
 *
 * A slow request (a fetch from the store, a commit) must not hold up the
 * others: while requests flow, a standby thread checks every 10 ms and
 * takes over reading when the leader has been busy with one request for
 * longer than that; the old leader finishes its request and becomes a
 * follower.  Threads are started as needed, up to max_threads.  An idle
 * mount sleeps: the leader in read() and the standby on a condition
 * variable.  SIGUSR1 is the loop's: loop_exit() sends it to a leader
 * asleep in read().
 *
 * Returns 0 when the session ends (unmount, signal), -1 on a device error.
 */
#ifndef SNAPFS_LOOP_H
#define SNAPFS_LOOP_H

#include <fuse_lowlevel.h>

int leader_loop(struct fuse_session *se, int max_threads);

/* Called by a handler about to do something long (a file read): the
 * standby takes over reading requests at once instead of after 10 ms, so
 * the kernel's concurrent read-ahead requests are served in parallel.  A
 * no-op outside the leader. */
void loop_handoff(void);

/* Ends the session (fuse_session_exit) and wakes the leader from read();
 * returns once the loop has seen it, or at once when no loop runs. */
void loop_exit(struct fuse_session *se);

#endif
