/*
 * fileread.h - reads of a stored file through the mount's cache: the
 * chunks under a byte range (holes as zeros), plus a growing read-ahead
 * window while the reader stays sequential.  Shared by the read-only
 * backups (vfs.c) and the unchanged files of control/ (overlay.c).
 *
 * A read returns an iovec into pinned cache entries (and a shared zero
 * page for holes), valid until fread_done(): the frontend replies with it
 * and nothing is copied on our side.  A read of local bytes (a staged
 * file) instead names a descriptor and range, for a zero-copy reply.
 * Failures are the cache's (SNAP_ECORRUPT, SNAP_EIO, SNAP_ENET), naming
 * the object.
 */
#ifndef SNAPFS_FILEREAD_H
#define SNAPFS_FILEREAD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cache.h"
#include "tree.h"

/* The bytes of one read: iov (pinning pins, or into owned) or, when
 * fd >= 0, len bytes of fd at fd_off.  A read owns what its reply needs
 * (pins, a copy, a descriptor of its own): the file may be released while
 * the reply is still being sent (a reader killed midway). */
struct vfs_read {
	struct iovec *iov;
	int niov;
	struct centry **pins;
	int npins;
	size_t len;
	int fd;
	uint64_t fd_off;
	uint8_t *owned;
};

/* Read-ahead state of one open file. */
struct fread {
	pthread_mutex_t lock;
	uint64_t next_off; /* where a sequential reader reads next */
	uint64_t window;   /* read-ahead bytes, grows while sequential */
	size_t pf_next;    /* first chunk not yet prefetched */
};

void fread_init(struct fread *f);
void fread_destroy(struct fread *f);

/* Up to size bytes at off of file e of series (fewer only at its end). */
int fread_range(struct cache *c, const char *series, const struct tent *e,
		struct fread *f, size_t readahead_max, uint64_t off,
		size_t size, struct vfs_read *rd);
/* [off, off+size) of an in-memory buffer of n bytes, copied. */
int fread_mem(const void *p, size_t n, uint64_t off, size_t size,
	      struct vfs_read *rd);
/* A reply of buf's n bytes (malloc'd; the read takes it over, also on
 * failure). */
int fread_own(uint8_t *buf, size_t n, struct vfs_read *rd);
/* [off, off+size) of descriptor fd (duplicated for the reply), at most
 * to n, the file's size. */
int fread_fd(int fd, uint64_t n, uint64_t off, size_t size,
	     struct vfs_read *rd);
/* Releases what a read holds. */
void fread_done(struct cache *c, struct vfs_read *rd);

#endif
