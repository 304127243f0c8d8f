/* fileread.c - reads of stored files through the cache; see fileread.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "fileread.h"

static uint8_t zeros[1u << 20]; /* holes; never written, so never resident */

void fread_init(struct fread *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
}

void fread_destroy(struct fread *f)
{
	pthread_mutex_destroy(&f->lock);
}

/* Sequential readers get a window that doubles per read up to the
 * maximum; anything else drops it, so random reads fetch only what they
 * ask for.  Returns the chunks [*from, *to) to prefetch. */
static void readahead(struct fread *f, const struct tent *e, size_t ra_max,
		      uint64_t off, uint64_t end, size_t last, size_t *from,
		      size_t *to)
{
	/* Kernel read-ahead issues requests concurrently, so a sequential
	 * stream can arrive slightly out of order. */
	uint64_t slack = 4u << 20;
	size_t i;

	pthread_mutex_lock(&f->lock);
	if (off + slack >= f->next_off && off <= f->next_off + slack) {
		f->window = f->window ? 2 * f->window : 2u << 20;
		if (f->window > ra_max)
			f->window = ra_max;
		if (end > f->next_off)
			f->next_off = end;
	} else {
		f->window = 0;
		f->next_off = end;
		f->pf_next = 0;
	}
	i = f->pf_next > last + 1 ? f->pf_next : last + 1;
	*from = i;
	while (i < e->nchunks && e->chunks[i].off < end + f->window)
		i++;
	*to = i;
	if (i > f->pf_next)
		f->pf_next = i;
	pthread_mutex_unlock(&f->lock);
}

static int rd_push(struct vfs_read *rd, const void *p, size_t n, size_t cap)
{
	if (rd->niov == (int)cap)
		return snap_seterr(SNAP_EINVAL, "read vector overflow");
	rd->iov[rd->niov].iov_base = (void *)p;
	rd->iov[rd->niov].iov_len = n;
	rd->niov++;
	rd->len += n;
	return 0;
}

static int rd_zeros(struct vfs_read *rd, uint64_t n, size_t cap)
{
	while (n) {
		size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);

		SNAP_TRY(rd_push(rd, zeros, k, cap));
		n -= k;
	}
	return 0;
}

int fread_mem(const void *p, size_t n, uint64_t off, size_t size,
	      struct vfs_read *rd)
{
	memset(rd, 0, sizeof(*rd));
	rd->fd = -1;
	if (off >= n || size == 0)
		return 0;
	if (size > n - off)
		size = n - off;
	rd->iov = malloc(sizeof(*rd->iov));
	rd->owned = malloc(size);
	if (!rd->iov || !rd->owned) {
		fread_done(NULL, rd);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	memcpy(rd->owned, (const uint8_t *)p + off, size);
	return rd_push(rd, rd->owned, size, 1);
}

int fread_own(uint8_t *buf, size_t n, struct vfs_read *rd)
{
	memset(rd, 0, sizeof(*rd));
	rd->fd = -1;
	rd->owned = buf;
	rd->iov = malloc(sizeof(*rd->iov));
	if (!rd->iov) {
		fread_done(NULL, rd);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	return rd_push(rd, buf, n, 1);
}

int fread_fd(int fd, uint64_t n, uint64_t off, size_t size,
	     struct vfs_read *rd)
{
	memset(rd, 0, sizeof(*rd));
	rd->fd = -1;
	if (off >= n || size == 0)
		return 0;
	rd->fd = dup(fd);
	if (rd->fd < 0)
		return snap_syserr(errno, "reading a staged file");
	rd->fd_off = off;
	rd->len = size < n - off ? size : (size_t)(n - off);
	return 0;
}

int fread_range(struct cache *c, const char *series, const struct tent *e,
		struct fread *f, size_t readahead_max, uint64_t off,
		size_t size, struct vfs_read *rd)
{
	uint64_t end, pos;
	size_t first, last, pf_from, pf_to, cap;
	int rc = 0;

	memset(rd, 0, sizeof(*rd));
	rd->fd = -1;
	if (off >= e->size || size == 0)
		return 0;
	end = off + size < e->size ? off + size : e->size;
	first = tent_chunk_at(e, off);
	last = first;
	while (last + 1 < e->nchunks && e->chunks[last + 1].off < end)
		last++;
	/* A chunk and the hole before it each take one vector entry; holes
	 * longer than the zero page take more. */
	cap = 2 * (last - first + 1) + 2 + (size_t)(end - off) / sizeof(zeros);
	rd->iov = calloc(cap, sizeof(*rd->iov));
	rd->pins = calloc(last - first + 1, sizeof(*rd->pins));
	if (!rd->iov || !rd->pins) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto fail;
	}
	readahead(f, e, readahead_max, off, end, last, &pf_from, &pf_to);
	/* The rest of this read is fetched alongside the first chunk. */
	for (size_t i = first + 1; i <= last && i < e->nchunks; i++)
		cache_prefetch(c, series, &e->chunks[i].r);
	for (size_t i = pf_from; i < pf_to; i++)
		cache_prefetch(c, series, &e->chunks[i].r);

	pos = off;
	for (size_t i = first; i < e->nchunks && pos < end; i++) {
		const struct chunk *ch = &e->chunks[i];
		const uint8_t *data;
		uint64_t cend = ch->off + ch->r.raw, take;

		if (ch->off >= end)
			break;
		if (ch->off > pos) {
			rc = rd_zeros(rd, ch->off - pos, cap);
			if (rc)
				goto fail;
			pos = ch->off;
		}
		rc = cache_chunk(c, series, &ch->r, &rd->pins[rd->npins], &data);
		if (rc)
			goto fail;
		rd->npins++;
		take = (cend < end ? cend : end) - pos;
		rc = rd_push(rd, data + (pos - ch->off), (size_t)take, cap);
		if (rc)
			goto fail;
		pos += take;
	}
	if (pos < end)
		rc = rd_zeros(rd, end - pos, cap);
	if (rc == 0)
		return 0;
fail:
	fread_done(c, rd);
	return rc;
}

void fread_done(struct cache *c, struct vfs_read *rd)
{
	for (int i = 0; i < rd->npins; i++)
		cache_release(c, rd->pins[i]);
	if (rd->fd >= 0)
		close(rd->fd);
	free(rd->pins);
	free(rd->iov);
	free(rd->owned);
	memset(rd, 0, sizeof(*rd));
	rd->fd = -1;
}
