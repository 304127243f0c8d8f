/* backup.c - the backup engine; see backup.h for the pipeline. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backup.h"
#include "backup_int.h"
#include "exclude.h"
#include "blob.h"
#include "err.h"
#include "index.h"
#include "ixobj.h"
#include "lease.h"
#include "tombstone.h"
#include "workq.h"

void add_stat(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

/* A pack of the session is durable: its chunks may be relied on. */
static void landed(struct eng *e, const uint8_t id[PACK_ID_LEN])
{
	pthread_mutex_lock(&e->plock);
	for (size_t i = 0; i < e->nflying; i++)
		if (memcmp(e->flying[i], id, PACK_ID_LEN) == 0) {
			memcpy(e->flying[i], e->flying[--e->nflying],
			       PACK_ID_LEN);
			break;
		}
	pthread_mutex_unlock(&e->plock);
}

static void upload_job(void *arg)
{
	struct pack *p = arg;
	struct eng *e = (struct eng *)((void **)p)[-1];
	char key[160];
	int rc = 0;

	if (!failed(e)) {
		pack_key(e->series, p->id, key, sizeof(key));
		rc = store_put(e->r->st, key, p->data.p, p->data.len, 0);
		if (rc)
			fail(e, rc);
		else
			add_stat(&e->res->bytes_new, p->data.len);
		if (rc == 0)
			landed(e, p->id);
		if (rc == 0 && e->on_pack)
			e->on_pack(e->pack_ctx, p->id, p->data.len);
	}
	bufpool_put(&e->pbufs, &p->data);
	pack_free(p);
	free((void **)p - 1);
}

/* Seals a detached pack and queues its upload.  The engine pointer rides in
 * front of the pack so the upload job needs no wrapper allocation. */
static int ship(struct eng *e, void **slot)
{
	struct pack *p = (struct pack *)(slot + 1);
	int rc = pack_finish(p, &e->r->keys);

	if (rc) {
		bufpool_put(&e->pbufs, &p->data);
		pack_free(p);
		free(slot);
		return rc;
	}
	add_stat(&e->res->packs, 1);
	return workq_submit(e->uq, upload_job, p);
}

/* Pack slot of a blob type. */
static int kind(enum blob_type type)
{
	return type == BT_TREE;
}

/* Takes a current pack out of the engine for shipping and records its id
 * for the manifest.  Caller holds plock. */
static int detach(struct eng *e, int k, void ***out)
{
	void **slot;

	SNAP_TRY(array_grow(&e->packs, &e->packcap, e->npacks,
			    sizeof(*e->packs), 64));
	SNAP_TRY(array_grow(&e->flying, &e->flycap, e->nflying,
			    sizeof(*e->flying), 8));
	slot = malloc(sizeof(void *) + sizeof(struct pack));
	if (!slot)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	slot[0] = e;
	memcpy(slot + 1, &e->cur[k], sizeof(e->cur[k]));
	memcpy(e->packs[e->npacks++], e->cur[k].id, PACK_ID_LEN);
	memcpy(e->flying[e->nflying++], e->cur[k].id, PACK_ID_LEN);
	e->cur_open[k] = 0;
	*out = slot;
	return 0;
}

/* Stores one blob unless the series has it; *r receives where it is. */
static int store_blob(struct eng *e, enum blob_type type, const uint8_t *data,
		      size_t len, struct ref *r, int *isnew)
{
	struct buf enc;
	uint8_t id[ID_LEN];
	void **full = NULL;
	int rc = 0, hit, k = kind(type);
	struct pack *cur = &e->cur[k];

	*isnew = 0;
	chunk_id(&e->r->keys, data, len, id);
	pthread_mutex_lock(&e->plock);
	hit = index_get(e->ix, id, r);
	pthread_mutex_unlock(&e->plock);
	if (hit)
		return 0;
	enc = bufpool_get(&e->bufs);
	/* Sized for the largest chunk at once, like the chunk buffers. */
	rc = buf_reserve(&enc, blob_bound(e->r->chunker.max));
	rc = rc ? rc : blob_encode(&e->r->keys, id, data, len, &enc);
	if (rc)
		goto out;
	pthread_mutex_lock(&e->plock);
	if (index_get(e->ix, id, r))
		goto unlock; /* another worker stored it meanwhile */
	if (!e->cur_open[k]) {
		rc = pack_begin(cur);
		if (rc == 0)
			cur->data = bufpool_get(&e->pbufs);
		/* Data packs fill up at once: reserve them whole. */
		if (rc == 0 && kind(type) == 0)
			rc = buf_reserve(&cur->data,
					 e->r->pack_size + CHUNK_MAX + 65536);
		if (rc) {
			pack_free(cur);
			goto unlock;
		}
		e->cur_open[k] = 1;
	}
	rc = pack_add(cur, type, id, enc.p, enc.len, len, r);
	rc = rc ? rc : index_put(e->ix, r);
	if (rc)
		goto unlock;
	*isnew = 1;
	if (cur->data.len >= e->r->pack_size)
		rc = detach(e, k, &full);
unlock:
	pthread_mutex_unlock(&e->plock);
	if (rc == 0 && full)
		rc = ship(e, full);
out:
	bufpool_put(&e->bufs, &enc);
	return rc;
}

static void bdir_free(struct bdir *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct tent *t = &d->ents[i];

		free(t->name);
		free(t->chunks);
		free(t->target);
		xattrs_free(t->xattrs, t->nxattrs);
	}
	free(d->ents);
	free(d->ccap);
	free(d->kids);
	free(d);
}

/* A directory object of version v goes only into a repository of format v
 * or later: older snapfs then refuse the repository by its version rather
 * than call the object corrupt. */
static int need_format(struct eng *e, int v)
{
	int upgraded, rc = repo_require_format(e->r, v, &upgraded);

	if (rc == 0 && upgraded && e->o->info) {
		char msg[128];

		snprintf(msg, sizeof(msg),
			 "repository upgraded to format %d: older snapfs "
			 "cannot read FIFOs/devices", v);
		e->o->info(msg, e->o->warn_ctx);
	}
	return rc;
}

/* Encodes a finished directory and hands its ref to the parent; finishes
 * ancestors that were only waiting for it. */
static void dir_done(struct eng *e, struct bdir *d)
{
	while (d) {
		struct bdir *parent = d->parent;
		struct buf raw = BUF_INIT;
		struct ref ref;
		size_t kept = 0;
		int dec = -1, isnew, rc = 0, ns = 0;

		memset(&ref, 0, sizeof(ref));
		if (!failed(e)) {
			/* Drop skipped entries; order stays sorted. */
			for (size_t i = 0; i < d->n; i++) {
				for (size_t x = 0; x < d->ents[i].nxattrs; x++)
					ns |= xattr_ns_of(
						d->ents[i].xattrs[x].name);
				if (d->ents[i].type) {
					struct tent tmp = d->ents[kept];

					d->ents[kept++] = d->ents[i];
					d->ents[i] = tmp;
				}
			}
			__atomic_fetch_or(&e->xattr_ns, ns, __ATOMIC_RELAXED);
			rc = need_format(e, tree_version(d->ents, kept));
			rc = rc ? rc : tree_encode(d->ents, kept, &raw);
			rc = rc ? rc
				: store_blob(e, BT_TREE, raw.p, raw.len, &ref,
					     &isnew);
			if (rc)
				fail(e, rc);
		}
		buf_free(&raw);
		pthread_mutex_lock(&e->lock);
		if (parent) {
			struct tent *pe = &parent->ents[d->pidx];

			pe->sub = ref;
			pe->sub_files = d->files;
			pe->sub_bytes = d->bytes;
			parent->files += d->files;
			parent->bytes += d->bytes;
			dec = --parent->pending;
		} else {
			d->group->root = ref;
			d->group->files = d->files;
			d->group->bytes = d->bytes;
			e->roots_pending--;
			pthread_cond_broadcast(&e->cv);
		}
		pthread_mutex_unlock(&e->lock);
		bdir_free(d);
		d = dec == 0 ? parent : NULL;
	}
}

void release(struct eng *e, struct bdir *d)
{
	int dec;

	pthread_mutex_lock(&e->lock);
	dec = --d->pending;
	pthread_mutex_unlock(&e->lock);
	if (dec == 0)
		dir_done(e, d);
}

static void chunk_work(void *arg)
{
	struct cjob *j = arg;
	struct eng *e = j->e;
	struct ref ref;
	int isnew = 0, rc = 0;

	if (!failed(e)) {
		rc = store_blob(e, BT_DATA, j->data.p, j->data.len, &ref,
				&isnew);
		if (rc)
			fail(e, rc);
	}
	bufpool_put(&e->bufs, &j->data);
	pthread_mutex_lock(&e->lock);
	if (rc == 0 && !failed(e)) {
		struct chunk *c = &j->d->ents[j->ei].chunks[j->ci];

		c->off = j->off;
		c->r = ref;
		if (isnew)
			e->res->chunks_new++;
		else
			e->res->chunks_dedup++;
	}
	pthread_mutex_unlock(&e->lock);
	release(e, j->d);
	free(j);
}

/* Queues one chunk of entry ei; takes data (from e->bufs) over. */
static int submit_chunk(struct eng *e, struct bdir *d, size_t ei,
			uint64_t off, struct buf *data)
{
	struct tent *t = &d->ents[ei];
	struct cjob *j = malloc(sizeof(*j));
	int rc = 0;

	if (!j) {
		bufpool_put(&e->bufs, data);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&e->lock);
	rc = array_grow(&t->chunks, &d->ccap[ei], t->nchunks,
			sizeof(*t->chunks), 4);
	if (rc == 0) {
		j->ci = t->nchunks++;
		d->pending++;
	}
	pthread_mutex_unlock(&e->lock);
	if (rc) {
		free(j);
		bufpool_put(&e->bufs, data);
		return rc;
	}
	j->e = e;
	j->d = d;
	j->ei = ei;
	j->off = off;
	j->data = *data;
	return workq_submit(e->cq, chunk_work, j);
}

int chunk_range(struct eng *e, struct bdir *d, size_t ei, src_read rd,
		void *src, uint64_t start, uint64_t end, uint64_t *got)
{
	const struct chunker *ch = &e->r->chunker;
	uint64_t foff = start;
	size_t have = 0, at = 0;
	int eof = 0;

	for (;;) {
		if (!eof && have - at < ch->max) {
			memmove(e->rbuf, e->rbuf + at, have - at);
			foff += at;
			have -= at;
			at = 0;
			while (have < READ_BUF && !eof) {
				uint64_t want = end - (foff + have);
				ssize_t n;

				if (want > READ_BUF - have)
					want = READ_BUF - have;
				if (want == 0) {
					eof = 1;
					break;
				}
				n = rd(src, e->rbuf + have, want, foff + have);
				if (n == -EINTR)
					continue;
				if (n < 0)
					return snap_syserr(-n, "reading");
				if (n == 0)
					eof = 1;
				have += n;
			}
		}
		if (have == at)
			break;
		size_t cut = chunker_cut(ch, e->rbuf + at, have - at, eof);
		struct buf data = bufpool_get(&e->bufs);

		/* A pooled buffer is grown to the largest chunk once: grown
		 * step by step to each chunk's size, the realloc moved it to
		 * fresh pages again and again (a third of the page faults). */
		if (buf_reserve(&data, ch->max) ||
		    buf_add(&data, e->rbuf + at, cut)) {
			bufpool_put(&e->bufs, &data);
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		}
		add_stat(&e->res->bytes_read, cut);
		progress_add(e->o->progress, 0, cut);
		SNAP_TRY(submit_chunk(e, d, ei, foff + at, &data));
		at += cut;
		if (failed(e))
			return failed(e);
	}
	*got = foff + have;
	return 0;
}

static ssize_t fd_read(void *src, uint8_t *buf, size_t n, uint64_t off)
{
	ssize_t r = pread(*(int *)src, buf, n, off);

	return r < 0 ? -errno : r;
}

int chunk_fd(struct eng *e, struct bdir *d, size_t ei, int fd,
	     const char *path, uint64_t size)
{
	struct tent *t = &d->ents[ei];
	uint64_t off = 0, got = 0;
	int rc = 0;

	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	pthread_mutex_lock(&e->lock);
	t->size = size;
	pthread_mutex_unlock(&e->lock);
	while (off < size && rc == 0) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break; /* only a hole remains */
		if (data < 0) {
			data = off; /* no SEEK_DATA here: all data */
			hole = size;
		} else {
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0 || (uint64_t)hole > size)
				hole = size;
		}
		if ((uint64_t)data >= size)
			break;
		rc = chunk_range(e, d, ei, fd_read, &fd, data, hole, &got);
		if (rc == 0 && got < (uint64_t)hole) {
			/* Shrank under us: keep what was read. */
			warn(e, "%s: file shrank while being read", path);
			size = got;
			pthread_mutex_lock(&e->lock);
			t->size = got;
			pthread_mutex_unlock(&e->lock);
		}
		off = hole;
	}
	return rc;
}

/* Chunks the data extents of a regular file; holes are skipped so that a
 * 64 MiB preallocated log holding 4 KiB costs 4 KiB. */
static int read_file(struct eng *e, struct bdir *d, size_t ei, int dfd,
		     const char *path, const struct stat *st)
{
	struct tent *t = &d->ents[ei];
	struct stat after;
	int fd, rc;

	fd = openat(dfd, t->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, t->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		warn(e, "skipping %s: %s", path, strerror(errno));
		t->type = 0;
		return 0;
	}
	rc = chunk_fd(e, d, ei, fd, path, st->st_size);
	if (rc == 0 && fstat(fd, &after) == 0 &&
	    (after.st_mtim.tv_sec != st->st_mtim.tv_sec ||
	     after.st_mtim.tv_nsec != st->st_mtim.tv_nsec))
		warn(e, "%s: file changed while being read", path);
	close(fd);
	if (rc && rc != SNAP_ENOMEM && !failed(e)) {
		/* A read error loses this file, not the backup. */
		warn(e, "skipping %s: %s", path, snap_errmsg());
		pthread_mutex_lock(&e->lock);
		t->type = 0;
		pthread_mutex_unlock(&e->lock);
		rc = 0;
	}
	return rc;
}

static int read_xattrs(struct eng *e, const char *path, struct tent *t)
{
	char names[65536];
	uint8_t val[65536]; /* the largest value Linux allows */
	ssize_t n = llistxattr(path, names, sizeof(names));

	if (n <= 0)
		return 0; /* none, or unsupported here */
	for (char *nm = names; nm < names + n; nm += strlen(nm) + 1) {
		ssize_t vl = lgetxattr(path, nm, val, sizeof(val));

		if (vl < 0) {
			if (errno != ENODATA) /* not gone meanwhile */
				warn(e, "%s: xattr %s: %s", path, nm,
				     strerror(errno));
			continue;
		}
		SNAP_TRY(xattr_append(&t->xattrs, &t->nxattrs, nm, val,
				      (size_t)vl));
	}
	return 0;
}

/* Group-wide hardlink ids for files with more than one link. */
static int hardlink_id(struct eng *e, const struct stat *st, uint64_t *id)
{
	size_t i;

	if (e->nhl * 2 >= e->hlcap) {
		size_t cap = e->hlcap ? 2 * e->hlcap : 256;
		struct hlink *n = calloc(cap, sizeof(*n));

		if (!n)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		for (i = 0; i < e->hlcap; i++) {
			if (!e->hl[i].id)
				continue;
			size_t s = (e->hl[i].ino * 31 + e->hl[i].dev) & (cap - 1);

			while (n[s].id)
				s = (s + 1) & (cap - 1);
			n[s] = e->hl[i];
		}
		free(e->hl);
		e->hl = n;
		e->hlcap = cap;
	}
	i = (st->st_ino * 31 + st->st_dev) & (e->hlcap - 1);
	while (e->hl[i].id) {
		if (e->hl[i].ino == st->st_ino && e->hl[i].dev == st->st_dev) {
			*id = e->hl[i].id;
			return 0;
		}
		i = (i + 1) & (e->hlcap - 1);
	}
	e->hl[i] = (struct hlink){st->st_dev, st->st_ino, ++e->nhl};
	*id = e->nhl;
	return 0;
}

int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_names(int dfd, const char *path, char ***out, size_t *n)
{
	char **v = NULL;
	size_t cap = 0;
	struct dirent *de;
	int fd = dup(dfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;

	*n = 0;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return snap_syserr(errno, "%s", path);
	}
	while ((errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (array_grow(&v, &cap, *n, sizeof(*v), 32))
			goto nomem;
		v[*n] = strdup(de->d_name);
		if (!v[*n])
			goto nomem;
		(*n)++;
	}
	closedir(dir);
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_str);
	*out = v;
	return 0;
nomem:
	closedir(dir);
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	free(v);
	return snap_seterr(SNAP_ENOMEM, "out of memory");
}

struct bdir *bdir_new(struct bdir *parent, size_t pidx)
{
	struct bdir *d = calloc(1, sizeof(*d));

	if (!d) {
		snap_seterr(SNAP_ENOMEM, "out of memory");
		return NULL;
	}
	d->parent = parent;
	d->pidx = pidx;
	d->pending = 1;
	return d;
}

int bdir_reserve(struct bdir *d, int with_kids)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		struct tent *ents = realloc(d->ents, cap * sizeof(*ents));
		size_t *ccap = ents ? realloc(d->ccap, cap * sizeof(*ccap))
				    : NULL;
		struct bdir **kids = ccap && with_kids
			? realloc(d->kids, cap * sizeof(*kids)) : NULL;

		if (ents)
			d->ents = ents;
		if (ccap)
			d->ccap = ccap;
		if (kids)
			d->kids = kids;
		if (!ccap || (with_kids && !kids))
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		d->cap = cap;
	}
	memset(&d->ents[d->n], 0, sizeof(d->ents[d->n]));
	d->ccap[d->n] = 0;
	if (with_kids)
		d->kids[d->n] = NULL;
	return 0;
}

static int walk(struct eng *e, struct bdir *d, int dfd, const char *path,
		const struct tree *pt);

static int walk_subdir(struct eng *e, struct bdir *d, size_t i, int dfd,
		       const char *cpath, const struct tent *pent, int empty)
{
	struct tree ptree = {0}, *ptp = NULL;
	struct bdir *child;
	int fd, rc;

	child = bdir_new(d, i);
	if (!child)
		return SNAP_ENOMEM;
	pthread_mutex_lock(&e->lock);
	d->pending++;
	pthread_mutex_unlock(&e->lock);
	if (pent && pent->type == ET_DIR) {
		if (repo_read_tree(e->r, e->series, &pent->sub, &ptree) == 0)
			ptp = &ptree;
		else
			warn(e, "%s: parent backup unreadable (%s); reading "
				"everything", cpath, snap_errmsg());
	}
	fd = empty ? -1
		   : openat(dfd, d->ents[i].name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (!empty)
			warn(e, "%s: %s (stored as an empty directory)", cpath,
			     strerror(errno));
		release(e, child);
		rc = 0;
	} else {
		rc = walk(e, child, fd, cpath, ptp);
		close(fd);
	}
	tree_free(&ptree);
	return rc;
}

/* Whether path p of a walk from a group given as a path of plen bytes,
 * whose absolute path is abs, matches an exclude pattern. */
static int excluded(const struct excl *x, const char *abs, size_t plen,
		    const char *p)
{
	char full[PATH_MAX];

	if (!x || !abs)
		return 0;
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", abs,
			     p + plen + strspn(p + plen, "/")) >= sizeof(full))
		return 0;
	return excl_path(x, full);
}

/* Whether directory name in dfd holds an exclusion tag (exclude.h). */
static int dir_tagged(struct eng *e, int dfd, const char *name)
{
	const char *why;
	int fd, hit;

	if (!excl_has_tags(e->o->excl))
		return 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0; /* walk_subdir says why */
	hit = excl_tagged(e->o->excl, fd, &why);
	close(fd);
	return hit;
}

/* Fills entry i from the source; returns 0 with t->type == 0 to skip. */
static int walk_entry(struct eng *e, struct bdir *d, size_t i, int dfd,
		      const char *cpath, const struct tree *pt,
		      uint64_t *files, uint64_t *bytes)
{
	struct tent *t = &d->ents[i];
	const struct tent *pent = pt ? tree_find(pt, t->name) : NULL;
	struct stat st;
	char target[4097];
	ssize_t n;

	if (excluded(e->o->excl, e->grp_abs, e->grp_plen, cpath))
		return 0;
	if (fstatat(dfd, t->name, &st, AT_SYMLINK_NOFOLLOW)) {
		warn(e, "skipping %s: %s", cpath, strerror(errno));
		return 0;
	}
	t->mode = st.st_mode;
	t->uid = st.st_uid;
	t->gid = st.st_gid;
	t->mtime_ns = ts_ns(&st.st_mtim);
	t->ctime_ns = ts_ns(&st.st_ctim);
	t->ino = st.st_ino;
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		t->type = ET_REG;
		t->size = st.st_size;
		if (st.st_nlink > 1)
			SNAP_TRY(hardlink_id(e, &st, &t->hardlink));
		SNAP_TRY(read_xattrs(e, cpath, t));
		(*files)++;
		*bytes += st.st_size;
		add_stat(&e->res->files, 1);
		add_stat(&e->res->bytes, st.st_size);
		if (pent && pent->type == ET_REG && pent->size == t->size &&
		    pent->mtime_ns == t->mtime_ns &&
		    pent->ctime_ns == t->ctime_ns && pent->ino == t->ino) {
			t->chunks = malloc(pent->nchunks * sizeof(*t->chunks) + 1);
			if (!t->chunks)
				return snap_seterr(SNAP_ENOMEM, "out of memory");
			if (pent->nchunks)
				memcpy(t->chunks, pent->chunks,
				       pent->nchunks * sizeof(*t->chunks));
			t->nchunks = d->ccap[i] = pent->nchunks;
			add_stat(&e->res->files_reused, 1);
			progress_add(e->o->progress, 1, t->size);
			return 0;
		}
		add_stat(&e->res->files_new, 1);
		SNAP_TRY(read_file(e, d, i, dfd, cpath, &st));
		progress_add(e->o->progress, 1, 0);
		return 0;
	case S_IFDIR: {
		/* Another filesystem's mount point stays, empty, as restic
		 * keeps it: a restore recreates the place to mount it.  It is
		 * not entered, not even for a tag. */
		int other = excl_is_one_fs(e->o->excl) && st.st_dev != e->grp_dev;

		if (!other && dir_tagged(e, dfd, t->name))
			return 0;
		t->type = ET_DIR;
		SNAP_TRY(read_xattrs(e, cpath, t));
		add_stat(&e->res->dirs, 1);
		return walk_subdir(e, d, i, dfd, cpath, pent, other);
	}
	case S_IFLNK:
		n = readlinkat(dfd, t->name, target, sizeof(target) - 1);
		if (n <= 0) {
			warn(e, "skipping %s: %s", cpath,
			     n < 0 ? strerror(errno) : "empty link");
			return 0;
		}
		target[n] = 0;
		t->type = ET_LNK;
		t->size = n;
		t->target = strdup(target);
		if (!t->target)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		return read_xattrs(e, cpath, t);
	case S_IFIFO:
	case S_IFCHR:
	case S_IFBLK:
		t->type = ent_type(st.st_mode);
		if (t->type != ET_FIFO) {
			t->rdev_major = major(st.st_rdev);
			t->rdev_minor = minor(st.st_rdev);
		}
		return read_xattrs(e, cpath, t);
	case S_IFSOCK:
		/* A socket is made by the program that listens on it and
		 * means nothing without it (restic and Borg skip them too). */
		note(e, "skipping %s: sockets are not backed up", cpath);
		return 0;
	default:
		warn(e, "skipping %s: unknown file type %o", cpath,
		     st.st_mode & S_IFMT);
		return 0;
	}
}

static int walk(struct eng *e, struct bdir *d, int dfd, const char *path,
		const struct tree *pt)
{
	char **names = NULL, *cpath = NULL;
	size_t n = 0;
	uint64_t files = 0, bytes = 0;
	int rc;

	rc = read_names(dfd, path, &names, &n);
	if (rc) {
		warn(e, "%s (stored as an empty directory)", snap_errmsg());
		rc = 0;
		goto out;
	}
	d->ents = calloc(n ? n : 1, sizeof(*d->ents));
	d->ccap = calloc(n ? n : 1, sizeof(*d->ccap));
	if (!d->ents || !d->ccap) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	d->n = n;
	for (size_t i = 0; i < n; i++) {
		d->ents[i].name = names[i];
		names[i] = NULL;
	}
	for (size_t i = 0; i < n && rc == 0 && !failed(e); i++) {
		rc = path_join(&cpath, path, d->ents[i].name);
		if (rc == 0)
			rc = walk_entry(e, d, i, dfd, cpath, pt, &files, &bytes);
	}
out:
	if (rc)
		fail(e, rc);
	for (size_t i = 0; i < n; i++)
		free(names ? names[i] : NULL);
	free(names);
	free(cpath);
	pthread_mutex_lock(&e->lock);
	d->files += files;
	d->bytes += bytes;
	pthread_mutex_unlock(&e->lock);
	release(e, d);
	return rc;
}

/* The scanner sums what the backup will read so progress can show an ETA;
 * it runs beside the backup and never delays it. */
static __thread struct progress *scan_prog;
static __thread uint64_t scan_files, scan_bytes;
static __thread const struct excl *scan_excl;
static __thread const char *scan_abs;
static __thread size_t scan_plen;

static int scan_one(const char *p, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	if (ftw->level > 0 && excluded(scan_excl, scan_abs, scan_plen, p))
		return flag == FTW_D ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
	if (flag == FTW_D && ftw->level > 0 && excl_has_tags(scan_excl)) {
		const char *why;
		int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int hit = fd >= 0 && excl_tagged(scan_excl, fd, &why);

		if (fd >= 0)
			close(fd);
		if (hit)
			return FTW_SKIP_SUBTREE;
	}
	if (flag == FTW_F && S_ISREG(st->st_mode)) {
		scan_files++;
		scan_bytes += st->st_size;
		if (scan_files % 1024 == 0)
			progress_totals(scan_prog, scan_files, scan_bytes, 0);
	}
	return FTW_CONTINUE;
}

struct scanner {
	const struct backup_opts *o;
	pthread_t th;
};

static void *scan_main(void *arg)
{
	struct scanner *s = arg;

	scan_prog = s->o->progress;
	scan_excl = s->o->excl;
	for (size_t g = 0; g < s->o->ngroups; g++) {
		char *abs = realpath(s->o->groups[g].path, NULL);

		scan_abs = abs;
		scan_plen = strlen(s->o->groups[g].path);
		nftw(s->o->groups[g].path, scan_one, 64,
		     FTW_PHYS | FTW_ACTIONRETVAL |
			     (excl_is_one_fs(scan_excl) ? FTW_MOUNT : 0));
		free(abs);
	}
	progress_totals(scan_prog, scan_files, scan_bytes, 1);
	return NULL;
}

static int backup_group(struct eng *e, const struct backup_group *g,
			struct mgroup *mg, const struct manifest *parent)
{
	struct tree ptree = {0}, *ptp = NULL;
	struct stat st;
	struct bdir *root;
	int fd, rc;

	if (stat(g->path, &st) == 0 && S_ISREG(st.st_mode)) {
		if (excl_any(e->o->excl))
			return snap_seterr(SNAP_EINVAL, "group %s: %s is an "
					   "archive; excludes apply to "
					   "directories", g->name, g->path);
		return backup_archive(e, g, mg);
	}
	fd = open(g->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return snap_syserr(errno, "group %s: %s", g->name, g->path);
	if (fstat(fd, &st)) {
		rc = snap_syserr(errno, "%s", g->path);
		close(fd);
		return rc;
	}
	mg->mode = st.st_mode;
	mg->uid = st.st_uid;
	mg->gid = st.st_gid;
	mg->mtime_ns = ts_ns(&st.st_mtim);
	free(e->grp_abs);
	e->grp_abs = NULL;
	if (excl_any(e->o->excl) && !(e->grp_abs = realpath(g->path, NULL))) {
		rc = snap_syserr(errno, "group %s: %s", g->name, g->path);
		close(fd);
		return rc;
	}
	e->grp_plen = strlen(g->path);
	e->grp_dev = st.st_dev;
	{
		/* The group directory's own attributes go in the manifest. */
		struct tent gt = {.name = (char *)g->name};

		rc = read_xattrs(e, g->path, &gt);
		mg->xattrs = gt.xattrs;
		mg->nxattrs = gt.nxattrs;
		if (rc) {
			close(fd);
			return rc;
		}
	}
	for (size_t i = 0; parent && i < parent->ngroups; i++) {
		if (strcmp(parent->groups[i].name, g->name))
			continue;
		rc = repo_read_tree(e->r, e->series, &parent->groups[i].root,
				    &ptree);
		if (rc)
			warn(e, "group %s: parent backup unreadable (%s); "
				"reading everything", g->name, snap_errmsg());
		else
			ptp = &ptree;
	}
	root = bdir_new(NULL, 0);
	if (!root) {
		close(fd);
		tree_free(&ptree);
		return SNAP_ENOMEM;
	}
	root->group = mg;
	pthread_mutex_lock(&e->lock);
	e->roots_pending++;
	pthread_mutex_unlock(&e->lock);
	rc = walk(e, root, fd, g->path, ptp);
	close(fd);
	tree_free(&ptree);
	return rc;
}

/* Whether the full policy ends series at this base; says so through
 * info.  The newest number stands for the count: numbers only grow. */
static int policy_due(struct eng *e, const struct bsession_opts *o,
		      uint32_t last, int *due)
{
	const struct full_policy *p = o->full_policy;
	char msg[300];
	int64_t first = 0;

	*due = 0;
	if (!p || (!p->every && ret_span_zero(&p->after)))
		return 0;
	if (!ret_span_zero(&p->after)) {
		struct manifest m;

		SNAP_TRY(repo_load_manifest(e->r, e->series, 1, &m));
		first = m.created;
		manifest_free(&m);
	}
	*due = ret_full_due(p->every, &p->after, last, first, now_ns());
	if (*due && o->info) {
		snprintf(msg, sizeof(msg),
			 p->every && last >= p->every
				 ? "series %s holds %u backups (full every %u): "
				   "starting a new series"
				 : "series %s began longer ago than full after "
				   "allows: starting a new series",
			 e->series, last, p->every);
		o->info(msg, o->warn_ctx);
	}
	return 0;
}

/* Decides series and number: the next backup of the base (given, or the
 * label's newest series), or backupNum 1 of a new series. */
static int choose_series(struct eng *e, const struct bsession_opts *o,
			 struct manifest *parent, int *have_parent)
{
	char uuid[37];
	uint32_t last = 0;
	int rc = SNAP_ENOENT, due = 0;

	*have_parent = 0;
	if (!o->full && o->base_series) {
		snprintf(e->series, sizeof(e->series), "%s", o->base_series);
		last = o->base_num;
		rc = 0;
	} else if (!o->full) {
		rc = repo_newest_series(e->r, o->label, e->series);
		rc = rc ? rc : repo_latest_num(e->r, e->series, &last);
		if (rc && rc != SNAP_ENOENT)
			return rc;
	}
	if (rc == 0)
		SNAP_TRY(policy_due(e, o, last, &due));
	if (rc == 0 && !due) {
		SNAP_TRY(repo_load_manifest(e->r, e->series, last, parent));
		*have_parent = 1;
		e->res->num = last + 1;
		e->res->full = 0;
		return 0;
	}
	if (o->new_series && o->new_series[0]) {
		snprintf(e->series, sizeof(e->series), "%s", o->new_series);
	} else {
		SNAP_TRY(uuid_v7(uuid));
		snprintf(e->series, sizeof(e->series), "%s-%s", o->label,
			 uuid);
	}
	e->res->num = 1;
	e->res->full = 1;
	return 0;
}

static int check_groups(const struct backup_opts *o)
{
	if (o->ngroups == 0)
		return snap_seterr(SNAP_EINVAL, "nothing to back up: give at "
						"least one directory");
	for (size_t i = 0; i < o->ngroups; i++) {
		SNAP_TRY(group_check(o->groups[i].name));
		for (size_t j = 0; j < i; j++)
			if (strcmp(o->groups[i].name, o->groups[j].name) == 0)
				return snap_seterr(
					SNAP_EINVAL,
					"group '%s' given twice: name them "
					"with NAME=PATH",
					o->groups[i].name);
	}
	return 0;
}

struct bsession {
	struct eng e;
	struct backup_opts bo; /* what the engine reads of the options */
	struct backup_result res;
	struct manifest parent, m;
	int have_parent;
	size_t max_groups;
	char token[33];
	uint64_t ino_next;
	double t0;
	int threads, uploads, scanning, committed, next_on_conflict;
	struct scanner scan;
	struct lease *lease; /* on e.series, from open to free (lease.h) */
};

/* 0 while e's series is not being deleted; else what it put is removed
 * (its manifest num, 0: none yet) and the backup fails. */
static int tombstoned(struct eng *e, uint32_t num)
{
	int rc = tomb_exists(e->r->st, e->series);

	if (rc == 1)
		rc = tomb_withdraw(e->r->st, e->series, num,
				   (const uint8_t(*)[PACK_ID_LEN])e->packs,
				   e->npacks);
	return rc;
}

static int write_manifest(struct bsession *s)
{
	struct eng *e = &s->e;
	struct manifest *m = &s->m;
	const struct manifest *parent = s->have_parent ? &s->parent : NULL;
	struct buf text = BUF_INIT;
	char key[160];
	int rc, ns;

	snprintf(m->series, sizeof(m->series), "%s", e->series);
	snprintf(m->label, sizeof(m->label), "%s", s->bo.label);
	m->num = e->res->num;
	m->full = e->res->full;
	m->parent = parent ? parent->num : 0;
	m->since = parent ? parent->created : 0;
	m->created = now_ns();
	m->encrypted = e->r->keys.encrypted;
	snprintf(m->status, sizeof(m->status), "%s", STATUS_READY);
	m->packs = e->packs;
	m->npacks = e->npacks;
	m->bytes_new = e->res->bytes_new;
	m->bytes_reused = e->res->bytes - e->res->bytes_read;
	m->files_new = e->res->files_new;
	m->files_reused = e->res->files_reused;
	m->elapsed = e->res->elapsed;
	ns = __atomic_load_n(&e->xattr_ns, __ATOMIC_RELAXED);
	for (size_t i = 0; i < m->ngroups; i++)
		for (size_t x = 0; x < m->groups[i].nxattrs; x++)
			ns |= xattr_ns_of(m->groups[i].xattrs[x].name);
	/* What was taken unread uses what the parent's entries used. */
	if (e->used_refs)
		ns = parent && parent->xattr_ns >= 0 ? ns | parent->xattr_ns
						     : -1;
	m->xattr_ns = ns;
	m->ino_next = s->ino_next;
	snprintf(m->stage_token, sizeof(m->stage_token), "%s", s->token);
	free(m->excludes);
	m->excludes = e->o ? excl_json(e->o->excl) : NULL;
	for (int tries = 0;; tries++) {
		uint32_t last = 0;

		manifest_key(e->series, m->num, key, sizeof(key));
		rc = s->lease ? lease_lapsed(s->lease) : 0;
		/* Before the manifest, which names it (ixobj.h). */
		rc = rc ? rc : ixobj_put(e->r, e->series, m->num, e->ix,
					 (const uint8_t(*)[PACK_ID_LEN])e->packs,
					 e->npacks, m->index_token);
		text.len = 0;
		rc = rc ? rc : manifest_encode(m, &e->r->keys, &text);
		rc = rc ? rc : tombstoned(e, 0);
		rc = rc ? rc : store_put(e->r->st, key, text.p, text.len,
					 STORE_CREATE_ONLY);
		/* The series may have gone between the check and the put
		 * (tombstone.h): then the manifest goes too. */
		rc = rc ? rc : tombstoned(e, m->num);
		if (rc != SNAP_EEXIST || !s->next_on_conflict || tries == 8)
			break;
		/* Another writer took the number: ours is a whole tree of
		 * its own (its parent stays what it was built on), so it
		 * can follow theirs as the next number. */
		rc = repo_latest_num(e->r, e->series, &last);
		if (rc)
			break;
		m->num = last >= m->num ? last + 1 : m->num + 1;
		e->res->num = m->num;
	}
	m->packs = NULL;
	m->npacks = 0;
	if (rc == SNAP_EEXIST)
		rc = snap_seterr(rc,
				 "backup %s/%u was written by another backup "
				 "running at the same time; run this one again",
				 e->series, m->num);
	buf_free(&text);
	return rc;
}

int bsession_open(struct repo *r, const struct bsession_opts *o,
		  struct bsession **out)
{
	struct bsession *s = calloc(1, sizeof(*s));
	struct eng *e;
	int rc;

	*out = NULL;
	if (!s)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	e = &s->e;
	s->t0 = mono_sec();
	s->bo.label = o->label;
	s->bo.full = o->full;
	s->bo.warn = o->warn;
	s->bo.warn_ctx = o->warn_ctx;
	s->bo.info = o->info;
	s->max_groups = o->max_groups;
	s->ino_next = o->ino_next;
	s->next_on_conflict = o->next_on_conflict;
	snprintf(s->token, sizeof(s->token), "%s", o->token ? o->token : "");
	e->r = r;
	e->o = &s->bo;
	e->res = &s->res;
	e->on_pack = o->on_pack;
	e->pack_ctx = o->pack_ctx;
	errstate_init(&e->es, o->warn, o->warn_ctx);
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->plock, NULL);
	pthread_cond_init(&e->cv, NULL);
	index_init(&e->own_ix);
	e->ix = &e->own_ix;
	s->threads = o->threads > 0 ? o->threads : cpu_count();
	s->uploads = o->uploads > 0 ? o->uploads : 2;
	/* Idle buffers for every chunk that can exist at once: queued,
	 * running (its bytes and its sealed form), and the reader's next.
	 * Packs: one per upload running or queued, one per worker waiting
	 * to queue one, and the two being filled.  A buffer that leaves the
	 * pool is freed, and the next one faults its pages in afresh: on
	 * this VM that was up to a quarter of the backup's CPU. */
	bufpool_init(&e->bufs, CHUNK_QUEUE + 2 * (size_t)s->threads + 2);
	bufpool_init(&e->pbufs, (size_t)s->uploads + (size_t)s->threads + 3);
	rc = label_check(o->label);
	rc = rc ? rc : choose_series(e, o, &s->parent, &s->have_parent);
	if (rc)
		goto fail;
	snprintf(s->res.series, sizeof(s->res.series), "%s", e->series);
	/* Before the first pack: check --repair must not take it. */
	rc = lease_take(r->st, e->series, &s->lease);
	if (rc)
		goto fail;
	/* The caller's index is its base's series, which the session then
	 * continues. */
	if (s->have_parent && o->index && o->base_series && !o->full) {
		e->ix = o->index;
	} else if (s->have_parent) {
		struct index_load il;

		rc = index_load_backups(e->ix, r, e->series, &s->parent,
					4 * s->threads, &il);
		if (rc)
			goto fail;
		if (il.bad)
			warn(e, "%zu pack(s) of series %s are missing or fail "
				"authentication; their chunks are stored again "
				"(run 'snapctl check')",
			     il.bad, e->series);
	}
	s->m.groups = calloc(o->max_groups ? o->max_groups : 1,
			     sizeof(*s->m.groups));
	e->rbuf = malloc(READ_BUF);
	if (!s->m.groups || !e->rbuf) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto fail;
	}
	rc = workq_create(&e->cq, s->threads, CHUNK_QUEUE);
	rc = rc ? rc : workq_create(&e->uq, s->uploads, 1);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	bsession_free(s);
	return rc;
}

const struct manifest *bsession_parent(const struct bsession *s)
{
	return s->have_parent ? &s->parent : NULL;
}

const char *bsession_series(const struct bsession *s)
{
	return s->e.series;
}

uint32_t bsession_num(const struct bsession *s)
{
	return s->res.num;
}

static int new_group(struct bsession *s, const struct mgroup *g,
		     struct mgroup **out)
{
	struct mgroup *mg;

	if (s->m.ngroups == s->max_groups)
		return snap_seterr(SNAP_EINVAL, "more groups than announced");
	for (size_t i = 0; i < s->m.ngroups; i++)
		if (strcmp(s->m.groups[i].name, g->name) == 0)
			return snap_seterr(SNAP_EINVAL, "group '%s' given "
					   "twice", g->name);
	SNAP_TRY(group_check(g->name));
	mg = &s->m.groups[s->m.ngroups];
	SNAP_TRY(mgroup_copy(mg, g));
	s->m.ngroups++;
	*out = mg;
	return 0;
}

int bsession_group(struct bsession *s, const struct mgroup *g,
		   struct bdir **out)
{
	struct eng *e = &s->e;
	struct mgroup *mg;
	struct bdir *root;
	int rc;

	*out = NULL;
	if ((rc = failed(e)))
		return errstate_result(&e->es);
	rc = new_group(s, g, &mg);
	if (rc == 0 && !(root = bdir_new(NULL, 0)))
		rc = SNAP_ENOMEM;
	if (rc) {
		fail(e, rc);
		return rc;
	}
	memset(&mg->root, 0, sizeof(mg->root));
	root->group = mg;
	pthread_mutex_lock(&e->lock);
	e->roots_pending++;
	pthread_mutex_unlock(&e->lock);
	*out = root;
	return 0;
}

int bsession_group_ref(struct bsession *s, const struct mgroup *g)
{
	struct mgroup *mg;
	int rc = new_group(s, g, &mg);

	if (rc) {
		fail(&s->e, rc);
		return rc;
	}
	s->e.used_refs = 1;
	add_stat(&s->res.files, g->files);
	add_stat(&s->res.bytes, g->bytes);
	add_stat(&s->res.files_reused, g->files);
	return 0;
}

/* Room for one more entry of d, appended under the lock the chunk
 * workers take (they index d->ents).  Entries must come in name order. */
static int bdir_append(struct eng *e, struct bdir *d, const char *name,
		       size_t *idx)
{
	int rc = 0;

	if (!name_ok(name, strlen(name)))
		return snap_seterr(SNAP_EINVAL, "bad entry name '%s'", name);
	pthread_mutex_lock(&e->lock);
	if (d->n && strcmp(d->ents[d->n - 1].name, name) >= 0)
		rc = snap_seterr(SNAP_EINVAL, "entries out of order: '%s' "
				 "after '%s'", name, d->ents[d->n - 1].name);
	rc = rc ? rc : bdir_reserve(d, 0);
	if (rc == 0)
		*idx = d->n++;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* Copies e's metadata, name, target and attributes into entry t; the
 * chunk list only with chunks. */
static int copy_tent(struct tent *t, const struct tent *e, int chunks)
{
	t->type = e->type;
	t->mode = e->mode;
	t->uid = e->uid;
	t->gid = e->gid;
	t->mtime_ns = e->mtime_ns;
	t->ctime_ns = e->ctime_ns;
	t->ino = e->ino;
	t->size = e->size;
	t->hardlink = e->hardlink;
	t->sub = e->sub;
	t->sub_files = e->sub_files;
	t->sub_bytes = e->sub_bytes;
	t->rdev_major = e->rdev_major;
	t->rdev_minor = e->rdev_minor;
	if (!(t->name = strdup(e->name)))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	if (e->target && !(t->target = strdup(e->target)))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	for (size_t i = 0; i < e->nxattrs; i++)
		SNAP_TRY(xattr_append(&t->xattrs, &t->nxattrs, e->xattrs[i].name,
				      e->xattrs[i].val, e->xattrs[i].len));
	if (chunks) {
		t->chunks = malloc(e->nchunks * sizeof(*t->chunks) + 1);
		if (!t->chunks)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		if (e->nchunks)
			memcpy(t->chunks, e->chunks,
			       e->nchunks * sizeof(*t->chunks));
		t->nchunks = e->nchunks;
	}
	return 0;
}

/* Appends a copy of e (with its chunks when by_ref) to d. */
static int add_entry(struct bsession *s, struct bdir *d, const struct tent *e,
		     int by_ref, size_t *out)
{
	struct eng *e2 = &s->e;
	size_t i = 0;
	int rc;

	if ((rc = failed(e2)))
		return errstate_result(&e2->es);
	rc = bdir_append(e2, d, e->name, &i);
	if (rc == 0) {
		/* Entry i is ours until the chunk workers get it. */
		rc = copy_tent(&d->ents[i], e, by_ref);
		d->ccap[i] = d->ents[i].nchunks;
		if (rc)
			d->ents[i].type = 0;
	}
	if (rc) {
		fail(e2, rc);
		return rc;
	}
	*out = i;
	return 0;
}

int bdir_add(struct bsession *s, struct bdir *d, const struct tent *e)
{
	struct eng *en = &s->e;
	size_t i;

	SNAP_TRY(add_entry(s, d, e, e->type == ET_REG, &i));
	pthread_mutex_lock(&en->lock);
	if (e->type == ET_REG) {
		d->files++;
		d->bytes += e->size;
	} else if (e->type == ET_DIR) {
		d->files += e->sub_files;
		d->bytes += e->sub_bytes;
		en->used_refs = 1;
	}
	pthread_mutex_unlock(&en->lock);
	if (e->type == ET_REG) {
		add_stat(&s->res.files, 1);
		add_stat(&s->res.bytes, e->size);
		add_stat(&s->res.files_reused, 1);
		en->used_refs = 1;
	} else if (e->type == ET_DIR) {
		add_stat(&s->res.files, e->sub_files);
		add_stat(&s->res.bytes, e->sub_bytes);
		add_stat(&s->res.files_reused, e->sub_files);
	}
	return 0;
}

int bdir_add_dir(struct bsession *s, struct bdir *d, const struct tent *meta,
		 struct bdir **child)
{
	struct eng *e = &s->e;
	struct bdir *c;
	size_t i;

	*child = NULL;
	SNAP_TRY(add_entry(s, d, meta, 0, &i));
	d->ents[i].type = ET_DIR;
	c = bdir_new(d, i);
	if (!c) {
		d->ents[i].type = 0;
		fail(e, SNAP_ENOMEM);
		return SNAP_ENOMEM;
	}
	pthread_mutex_lock(&e->lock);
	d->pending++;
	pthread_mutex_unlock(&e->lock);
	add_stat(&s->res.dirs, 1);
	*child = c;
	return 0;
}

/* A new file entry whose bytes are read now; its size is what was read. */
static int add_read(struct bsession *s, struct bdir *d, const struct tent *meta,
		    size_t *out)
{
	SNAP_TRY(add_entry(s, d, meta, 0, out));
	d->ents[*out].type = ET_REG;
	d->ents[*out].nchunks = 0;
	add_stat(&s->res.files, 1);
	add_stat(&s->res.files_new, 1);
	return 0;
}

static void read_done(struct bsession *s, struct bdir *d, size_t i)
{
	struct eng *e = &s->e;
	uint64_t size;

	pthread_mutex_lock(&e->lock);
	size = d->ents[i].size;
	d->files++;
	d->bytes += size;
	pthread_mutex_unlock(&e->lock);
	add_stat(&s->res.bytes, size);
}

int bdir_add_fd(struct bsession *s, struct bdir *d, const struct tent *meta,
		int fd, const char *path)
{
	struct eng *e = &s->e;
	size_t i;
	int rc;

	SNAP_TRY(add_read(s, d, meta, &i));
	rc = chunk_fd(e, d, i, fd, path, meta->size);
	if (rc) {
		fail(e, rc);
		return rc;
	}
	read_done(s, d, i);
	return failed(e) ? errstate_result(&e->es) : 0;
}

/* A stored chunk taken as it is into entry i of d. */
static int add_chunk(struct eng *e, struct bdir *d, size_t i, uint64_t off,
		     const struct ref *r)
{
	struct tent *t = &d->ents[i];
	int rc;

	pthread_mutex_lock(&e->lock);
	rc = array_grow(&t->chunks, &d->ccap[i], t->nchunks,
			sizeof(*t->chunks), 4);
	if (rc == 0) {
		t->chunks[t->nchunks].off = off;
		t->chunks[t->nchunks++].r = *r;
		e->res->chunks_dedup++;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int bdir_add_read(struct bsession *s, struct bdir *d,
		  const struct tent *meta, src_segment next, src_read rd,
		  void *src)
{
	struct eng *e = &s->e;
	struct bseg g;
	uint64_t off = 0, got;
	size_t i;
	int rc, r;

	SNAP_TRY(add_read(s, d, meta, &i));
	for (rc = 0; rc == 0;) {
		memset(&g, 0, sizeof(g));
		r = next(src, off, &g);
		if (r <= 0) {
			rc = r;
			break;
		}
		if (g.ref) {
			rc = add_chunk(e, d, i, g.start, g.ref);
		} else {
			rc = chunk_range(e, d, i, rd, src, g.start, g.end,
					 &got);
			if (rc == 0 && got < g.end)
				rc = snap_seterr(SNAP_EIO, "%s: short read",
						 meta->name);
		}
		off = g.end;
	}
	if (rc) {
		fail(e, rc);
		return rc;
	}
	read_done(s, d, i);
	return failed(e) ? errstate_result(&e->es) : 0;
}

/* One data chunk stored (or found) for a stream. */
static int eng_store(struct eng *e, const uint8_t *p, size_t n, struct ref *r)
{
	int isnew = 0, rc;

	if (failed(e))
		return errstate_result(&e->es);
	rc = store_blob(e, BT_DATA, p, n, r, &isnew);
	if (rc) {
		fail(e, rc);
		return rc;
	}
	pthread_mutex_lock(&e->lock);
	if (isnew)
		e->res->chunks_new++;
	else
		e->res->chunks_dedup++;
	e->res->bytes_read += n;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

struct sjob {
	struct eng *e;
	struct bstore_wait *w;
	struct ref *out;
	struct buf data; /* from e->bufs */
};

static void store_work(void *arg)
{
	struct sjob *j = arg;
	struct bstore_wait *w = j->w;
	int rc = eng_store(j->e, j->data.p, j->data.len, j->out);

	bufpool_put(&j->e->bufs, &j->data);
	free(j);
	pthread_mutex_lock(&w->lock);
	if (rc && !w->rc) {
		w->rc = rc;
		snprintf(w->msg, sizeof(w->msg), "%s", snap_errmsg());
	}
	if (--w->pending == 0)
		pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

void bstore_wait_init(struct bstore_wait *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->pending = 0;
	w->rc = 0;
	w->msg[0] = 0;
}

int bsession_store_async(struct bsession *s, const uint8_t *p, size_t n,
			 struct ref *r, struct bstore_wait *w)
{
	struct eng *e = &s->e;
	struct sjob *j = malloc(sizeof(*j));
	int rc;

	if (!j)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	j->e = e;
	j->w = w;
	j->out = r;
	j->data = bufpool_get(&e->bufs);
	if (buf_reserve(&j->data, e->r->chunker.max) ||
	    buf_add(&j->data, p, n)) {
		bufpool_put(&e->bufs, &j->data);
		free(j);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&w->lock);
	w->pending++;
	pthread_mutex_unlock(&w->lock);
	rc = workq_submit(e->cq, store_work, j);
	if (rc) {
		bufpool_put(&e->bufs, &j->data);
		free(j);
		pthread_mutex_lock(&w->lock);
		w->pending--;
		pthread_mutex_unlock(&w->lock);
	}
	return rc;
}

int bstore_wait(struct bstore_wait *w)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	while (w->pending)
		pthread_cond_wait(&w->cv, &w->lock);
	rc = w->rc;
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cv);
	/* Errors are per thread: the worker's message is carried over. */
	return rc ? snap_seterr(rc, "%s", w->msg) : 0;
}

int bsession_durable(struct bsession *s, const uint8_t pack[PACK_ID_LEN])
{
	struct eng *e = &s->e;
	int durable = 1;

	pthread_mutex_lock(&e->plock);
	for (int k = 0; k < 2; k++)
		if (e->cur_open[k] && !memcmp(e->cur[k].id, pack, PACK_ID_LEN))
			durable = 0;
	for (size_t i = 0; durable && i < e->nflying; i++)
		if (!memcmp(e->flying[i], pack, PACK_ID_LEN))
			durable = 0;
	pthread_mutex_unlock(&e->plock);
	return durable;
}

int bsession_error(struct bsession *s)
{
	return errstate_result(&s->e.es);
}

int bsession_prepare(struct bsession *s, const char *token,
		     uint64_t ino_next, size_t max_groups)
{
	struct mgroup *g;

	if (s->m.ngroups)
		return snap_seterr(SNAP_EINVAL, "groups were added already");
	g = calloc(max_groups ? max_groups : 1, sizeof(*g));
	if (!g)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	free(s->m.groups);
	s->m.groups = g;
	s->max_groups = max_groups;
	snprintf(s->token, sizeof(s->token), "%s", token ? token : "");
	s->ino_next = ino_next;
	return 0;
}

void bdir_close(struct bsession *s, struct bdir *d)
{
	release(&s->e, d);
}

int bsession_commit(struct bsession *s, struct backup_result *res)
{
	struct eng *e = &s->e;
	int rc;

	/* Wait for every chunk and directory object, then the last pack. */
	workq_wait(e->cq);
	pthread_mutex_lock(&e->lock);
	while (e->roots_pending)
		pthread_cond_wait(&e->cv, &e->lock);
	pthread_mutex_unlock(&e->lock);
	for (int k = 0; k < 2 && !failed(e); k++) {
		void **slot;

		if (!e->cur_open[k] || !e->cur[k].count)
			continue;
		rc = detach(e, k, &slot);
		rc = rc ? rc : ship(e, slot);
		if (rc)
			fail(e, rc);
	}
	workq_wait(e->uq);
	rc = errstate_result(&e->es);
	s->res.elapsed = mono_sec() - s->t0;
	rc = rc ? rc : write_manifest(s);
	s->res.elapsed = mono_sec() - s->t0;
	s->res.warnings = e->es.warnings;
	s->committed = rc == 0;
	*res = s->res;
	return rc;
}

void bsession_free(struct bsession *s)
{
	struct eng *e;

	if (!s)
		return;
	e = &s->e;
	if (s->scanning)
		pthread_join(s->scan.th, NULL);
	/* Abandoned midway: the workers stop at their next check, before
	 * anything they use goes (the message of the caller's error stays
	 * as it is). */
	pthread_mutex_lock(&e->es.lock);
	if (!e->es.err && !s->committed)
		e->es.err = SNAP_ECANCELED;
	pthread_mutex_unlock(&e->es.lock);
	workq_destroy(e->cq);
	workq_destroy(e->uq);
	for (int k = 0; k < 2; k++)
		if (e->cur_open[k]) {
			bufpool_put(&e->pbufs, &e->cur[k].data);
			pack_free(&e->cur[k]);
		}
	bufpool_destroy(&e->bufs);
	bufpool_destroy(&e->pbufs);
	manifest_free(&s->m);
	manifest_free(&s->parent);
	index_free(&e->own_ix);
	lease_drop(s->lease);
	free(e->packs);
	free(e->flying);
	free(e->hl);
	free(e->grp_abs);
	free(e->rbuf);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->plock);
	pthread_cond_destroy(&e->cv);
	errstate_destroy(&e->es);
	free(s);
}

int backup_run(struct repo *r, const struct backup_opts *o,
	       struct backup_result *res)
{
	struct bsession_opts so = {
		.label = o->label, .full = o->full, .max_groups = o->ngroups,
		.full_policy = o->full_policy, .threads = o->threads,
		.uploads = o->uploads, .warn = o->warn, .info = o->info,
		.warn_ctx = o->warn_ctx};
	struct bsession *s;
	int rc;

	memset(res, 0, sizeof(*res));
	SNAP_TRY(label_check(o->label));
	SNAP_TRY(check_groups(o));
	SNAP_TRY(bsession_open(r, &so, &s));
	s->bo = *o;
	s->scan.o = &s->bo;
	if (o->progress && o->progress->enabled)
		s->scanning = pthread_create(&s->scan.th, NULL, scan_main,
					     &s->scan) == 0;
	for (size_t g = 0; g < o->ngroups && !failed(&s->e); g++) {
		struct mgroup meta = {.name = (char *)o->groups[g].name};
		struct mgroup *mg;

		rc = new_group(s, &meta, &mg);
		rc = rc ? rc
			: backup_group(&s->e, &o->groups[g], mg,
				       bsession_parent(s));
		if (rc) {
			fail(&s->e, rc);
			break;
		}
	}
	rc = bsession_commit(s, res);
	bsession_free(s);
	return rc;
}
