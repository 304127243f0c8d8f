/* cache.c - memory LRU of decoded blobs over an optional disk cache. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "err.h"
#include "workq.h"

enum { CE_LOADING, CE_READY, CE_FAILED };

struct centry {
	struct centry *hnext, *prev, *next; /* hash chain; LRU when ready */
	uint8_t type;
	uint8_t id[ID_LEN];
	int state, refs, err;
	char *msg;
	size_t cost;
	uint8_t *data;
	struct tree tree;
};

/* One blob file of the disk cache. */
struct dent {
	struct dent *hnext, *prev, *next;
	uint8_t id[ID_LEN];
	uint64_t size;
};

struct disk {
	char *root;
	int lockfd;
	pthread_mutex_t lock;
	struct dent **tab;
	size_t tabsz, count;
	struct dent lru; /* sentinel: next is newest */
	uint64_t used, max;
	unsigned long tmpseq;
};

struct cache {
	struct repo *r;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct centry **tab;
	size_t tabsz, count;
	struct centry lru; /* sentinel: next is most recently used */
	size_t mem_used, mem_max;
	struct workq *pq;
	int pending, max_pending;
	struct cache_stats st;
	struct disk *dk;
};

struct pjob {
	struct cache *c;
	struct centry *e;
	char series[SERIES_MAX];
	struct ref ref;
};

static size_t id_hash(const uint8_t *id, uint8_t type)
{
	uint64_t h;

	/* Ids are HMACs or SHA-256 digests: already uniformly spread. */
	memcpy(&h, id, sizeof(h));
	return (size_t)(h ^ type);
}

/* Doubles a chained hash table when it is as full as it is long. */
#define TABLE_GROW(type, tabp, szp, count, hashexpr)                           \
	do {                                                                   \
		size_t nsz_ = *(szp) ? 2 * *(szp) : 1024;                      \
		type **nt_;                                                    \
		if ((count) < *(szp))                                          \
			break;                                                 \
		nt_ = calloc(nsz_, sizeof(*nt_));                              \
		if (!nt_)                                                      \
			break; /* keep the longer chains */                    \
		for (size_t i_ = 0; i_ < *(szp); i_++) {                       \
			type *x_ = (*(tabp))[i_], *nx_;                        \
			for (; x_; x_ = nx_) {                                 \
				size_t b_ = (hashexpr) & (nsz_ - 1);           \
				nx_ = x_->hnext;                               \
				x_->hnext = nt_[b_];                           \
				nt_[b_] = x_;                                  \
			}                                                      \
		}                                                              \
		free(*(tabp));                                                 \
		*(tabp) = nt_;                                                 \
		*(szp) = nsz_;                                                 \
	} while (0)

#define LRU_UNLINK(x)                                                          \
	do {                                                                   \
		(x)->prev->next = (x)->next;                                   \
		(x)->next->prev = (x)->prev;                                   \
	} while (0)
#define LRU_PUSH(head, x)                                                      \
	do {                                                                   \
		(x)->next = (head)->next;                                      \
		(x)->prev = (head);                                            \
		(head)->next->prev = (x);                                      \
		(head)->next = (x);                                            \
	} while (0)

/* ---- disk layer ------------------------------------------------------- */

static struct dent **dent_slot(struct disk *d, const uint8_t *id)
{
	struct dent **pp = &d->tab[id_hash(id, 0) & (d->tabsz - 1)];

	while (*pp && memcmp((*pp)->id, id, ID_LEN))
		pp = &(*pp)->hnext;
	return pp;
}

static void blob_path(struct disk *d, const uint8_t *id, char *out, size_t n)
{
	char hex[2 * ID_LEN + 1];

	hex_encode(id, ID_LEN, hex);
	snprintf(out, n, "%s/blobs/%.2s/%s", d->root, hex, hex);
}

/* Forgets and deletes one file; caller holds d->lock. */
static void dent_drop(struct disk *d, struct dent **slot)
{
	struct dent *x = *slot;
	char path[4096];

	blob_path(d, x->id, path, sizeof(path));
	unlink(path);
	*slot = x->hnext;
	LRU_UNLINK(x);
	d->used -= x->size;
	d->count--;
	free(x);
}

static void disk_evict(struct disk *d, uint64_t room)
{
	while (d->lru.prev != &d->lru && d->used + room > d->max)
		dent_drop(d, dent_slot(d, d->lru.prev->id));
}

static int dent_add(struct disk *d, const uint8_t *id, uint64_t size)
{
	struct dent *x;

	TABLE_GROW(struct dent, &d->tab, &d->tabsz, d->count,
		   id_hash(x_->id, 0));
	if (*dent_slot(d, id))
		return 0;
	x = calloc(1, sizeof(*x));
	if (!x)
		return SNAP_ENOMEM;
	memcpy(x->id, id, ID_LEN);
	x->size = size;
	x->hnext = d->tab[id_hash(id, 0) & (d->tabsz - 1)];
	d->tab[id_hash(id, 0) & (d->tabsz - 1)] = x;
	LRU_PUSH(&d->lru, x);
	d->used += size;
	d->count++;
	return 0;
}

struct found {
	uint8_t id[ID_LEN];
	uint64_t size;
	int64_t mtime;
};

static int cmp_found(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	return (x->mtime > y->mtime) - (x->mtime < y->mtime);
}

/* Rebuilds the index from the files, oldest first, and drops leftovers
 * of interrupted writes. */
static int disk_scan(struct disk *d)
{
	struct found *v = NULL;
	size_t n = 0, cap = 0;
	char path[4096];
	int rc = 0;

	for (int b = 0; b < 256 && rc == 0; b++) {
		DIR *dir;
		struct dirent *de;

		snprintf(path, sizeof(path), "%s/blobs/%02x", d->root, b);
		if (mkdir(path, 0700) && errno != EEXIST)
			return snap_syserr(errno, "cache %s", path);
		dir = opendir(path);
		if (!dir)
			return snap_syserr(errno, "cache %s", path);
		while ((de = readdir(dir))) {
			struct stat sb;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			rc = array_grow(&v, &cap, n, sizeof(*v), 256);
			if (rc)
				break;
			if (strlen(de->d_name) != 2 * ID_LEN ||
			    hex_decode(de->d_name, v[n].id, ID_LEN) ||
			    fstatat(dirfd(dir), de->d_name, &sb, 0) ||
			    !S_ISREG(sb.st_mode)) {
				unlinkat(dirfd(dir), de->d_name, 0);
				continue;
			}
			v[n].size = (uint64_t)sb.st_size;
			v[n].mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
				     sb.st_mtim.tv_nsec;
			n++;
		}
		closedir(dir);
	}
	if (rc == 0 && n)
		qsort(v, n, sizeof(*v), cmp_found);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = dent_add(d, v[i].id, v[i].size);
	free(v);
	if (rc == 0)
		disk_evict(d, 0);
	return rc;
}

static void disk_free(struct disk *d)
{
	if (!d)
		return;
	while (d->lru.next != &d->lru) {
		struct dent *x = d->lru.next;

		LRU_UNLINK(x);
		free(x);
	}
	free(d->tab);
	if (d->lockfd >= 0)
		close(d->lockfd);
	pthread_mutex_destroy(&d->lock);
	free(d->root);
	free(d);
}

static int disk_open(const char *dir, const char *repo_id, uint64_t max,
		     struct disk **out, char *warning, size_t wlen)
{
	struct disk *d = calloc(1, sizeof(*d));
	char path[4096];
	int rc;

	*out = NULL;
	if (!d)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	pthread_mutex_init(&d->lock, NULL);
	d->lockfd = -1;
	d->lru.next = d->lru.prev = &d->lru;
	d->max = max;
	d->tabsz = 1024;
	d->tab = calloc(d->tabsz, sizeof(*d->tab));
	if (!d->tab) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, repo_id);
	d->root = strdup(path);
	if (!d->root) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/blobs", d->root);
	rc = make_dirs(path, 0700, 1);
	if (rc)
		goto fail;
	snprintf(path, sizeof(path), "%s/lock", d->root);
	d->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lockfd < 0) {
		rc = snap_syserr(errno, "cache lock %s", path);
		goto fail;
	}
	if (flock(d->lockfd, LOCK_EX | LOCK_NB)) {
		snprintf(warning, wlen,
			 "cache directory %s is in use by another snapfs; "
			 "running without a disk cache",
			 d->root);
		disk_free(d);
		return 0;
	}
	rc = disk_scan(d);
	if (rc)
		goto fail;
	*out = d;
	return 0;
fail:
	disk_free(d);
	return rc;
}

/* Reads a cached blob into enc: 0, 1 when not cached, -1 when indexed
 * but unreadable (gone, or of the wrong size). */
static int disk_get(struct disk *d, const struct ref *ref, struct buf *enc)
{
	char path[4096];
	struct stat sb;
	int fd, present, rc = -1;

	pthread_mutex_lock(&d->lock);
	present = *dent_slot(d, ref->id) != NULL;
	pthread_mutex_unlock(&d->lock);
	if (!present)
		return 1;
	blob_path(d, ref->id, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	enc->len = 0;
	if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size == ref->len &&
	    buf_reserve(enc, ref->len) == 0 &&
	    pread(fd, enc->p, ref->len, 0) == (ssize_t)ref->len) {
		enc->len = ref->len;
		rc = 0;
	}
	close(fd);
	return rc;
}

/* Forgets a cached blob that failed to decode (or vanished). */
static void disk_forget(struct disk *d, const uint8_t *id)
{
	struct dent **slot;

	pthread_mutex_lock(&d->lock);
	slot = dent_slot(d, id);
	if (*slot)
		dent_drop(d, slot);
	pthread_mutex_unlock(&d->lock);
}

/* Writes n bytes to path through a temporary file of its own (the
 * daemon's threads write at once, and two that shared a name could rename
 * each other's half-written file into place), synced before the rename
 * when durable.  Returns 0, or -1 when nothing was written: failures
 * only skip caching. */
static int disk_write(struct disk *d, const char *path, const void *p,
		      size_t n, int durable)
{
	char tmp[4200];
	unsigned long seq;
	int fd, ok;

	pthread_mutex_lock(&d->lock);
	seq = d->tmpseq++;
	pthread_mutex_unlock(&d->lock);
	snprintf(tmp, sizeof(tmp), "%s.tmp%lu", path, seq);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	ok = write(fd, p, n) == (ssize_t)n;
	ok = ok && (!durable || fsync(fd) == 0);
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Writes an authenticated blob to disk; failures only skip caching. */
static void disk_put(struct disk *d, const uint8_t *id, const uint8_t *p,
		     size_t n)
{
	char path[4096];

	if (n > d->max)
		return;
	pthread_mutex_lock(&d->lock);
	if (*dent_slot(d, id)) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	disk_evict(d, n);
	pthread_mutex_unlock(&d->lock);

	blob_path(d, id, path, sizeof(path));
	/* Not synced: blobs are many, and a torn one fails authentication
	 * at its next read and is fetched again. */
	if (disk_write(d, path, p, n, 0))
		return;
	pthread_mutex_lock(&d->lock);
	if (dent_add(d, id, n))
		unlink(path);
	pthread_mutex_unlock(&d->lock);
}

/* ---- memory layer ----------------------------------------------------- */

static struct centry **ce_slot(struct cache *c, const uint8_t *id,
			       uint8_t type)
{
	struct centry **pp = &c->tab[id_hash(id, type) & (c->tabsz - 1)];

	while (*pp && ((*pp)->type != type || memcmp((*pp)->id, id, ID_LEN)))
		pp = &(*pp)->hnext;
	return pp;
}

static void ce_free(struct centry *e)
{
	free(e->data);
	tree_free(&e->tree);
	free(e->msg);
	free(e);
}

static void ce_unhash(struct cache *c, struct centry *e)
{
	struct centry **slot = ce_slot(c, e->id, e->type);

	if (*slot == e) {
		*slot = e->hnext;
		c->count--;
	}
}

/* Drops unpinned blobs from the cold end until within budget. */
static void mem_evict(struct cache *c)
{
	struct centry *e = c->lru.prev;

	while (c->mem_used > c->mem_max && e != &c->lru) {
		struct centry *prev = e->prev;

		if (e->refs == 0) {
			LRU_UNLINK(e);
			ce_unhash(c, e);
			c->mem_used -= e->cost;
			ce_free(e);
		}
		e = prev;
	}
}

/* Inserts a loading entry pinned once; caller holds c->lock. */
static struct centry *ce_new(struct cache *c, const uint8_t *id, uint8_t type)
{
	struct centry *e;
	size_t b;

	TABLE_GROW(struct centry, &c->tab, &c->tabsz, c->count,
		   id_hash(x_->id, x_->type));
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	memcpy(e->id, id, ID_LEN);
	e->type = type;
	e->state = CE_LOADING;
	e->refs = 1;
	b = id_hash(id, type) & (c->tabsz - 1);
	e->hnext = c->tab[b];
	c->tab[b] = e;
	c->count++;
	return e;
}

static int decode(struct cache *c, const char *series, const struct ref *ref,
		  struct centry *e, const uint8_t *enc, struct buf *scratch)
{
	if (e->type == BT_TREE)
		return repo_decode_tree(c->r, series, ref, enc, &e->tree);
	if (!e->data)
		e->data = malloc(ref->raw ? ref->raw : 1);
	if (!e->data)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	return repo_decode_blob(c->r, series, ref, enc, e->data, scratch);
}

/* Fills a loading entry from disk or store; runs without c->lock. */
static int load(struct cache *c, const char *series, const struct ref *ref,
		struct centry *e, int *from_disk)
{
	struct buf enc = BUF_INIT, scratch = BUF_INIT;
	int rc, hit;

	*from_disk = 0;
	hit = c->dk ? disk_get(c->dk, ref, &enc) : 1;
	if (hit == 0) {
		if (decode(c, series, ref, e, enc.p, &scratch) == 0) {
			*from_disk = 1;
			rc = 0;
			goto out;
		}
		tree_free(&e->tree);
	}
	if (hit <= 0)
		disk_forget(c->dk, ref->id);
	rc = repo_read_pack(c->r, series, ref->pack, ref->off, ref->len, &enc);
	if (rc == 0)
		rc = decode(c, series, ref, e, enc.p, &scratch);
	if (rc == 0 && c->dk)
		disk_put(c->dk, ref->id, enc.p, enc.len);
out:
	buf_free(&enc);
	buf_free(&scratch);
	return rc;
}

/* Publishes the outcome of a load and drops the loader's pin unless
 * keep.  Returns rc. */
static int finish(struct cache *c, struct centry *e, const struct ref *ref,
		  int rc, int from_disk, int keep)
{
	pthread_mutex_lock(&c->lock);
	if (rc == 0) {
		e->state = CE_READY;
		e->cost = e->type == BT_TREE
				  ? 2 * (size_t)ref->raw +
					    e->tree.n * sizeof(struct tent)
				  : ref->raw;
		c->mem_used += e->cost;
		LRU_PUSH(&c->lru, e);
		if (from_disk)
			c->st.disk_hits++;
		else {
			c->st.fetches++;
			c->st.fetch_bytes += ref->len;
		}
	} else {
		e->state = CE_FAILED;
		e->err = rc;
		e->msg = strdup(snap_errmsg());
		ce_unhash(c, e);
	}
	if (!keep && --e->refs == 0 && e->state == CE_FAILED)
		ce_free(e);
	mem_evict(c);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int get(struct cache *c, const char *series, const struct ref *ref,
	       uint8_t type, struct centry **out)
{
	struct centry *e;
	int rc, from_disk;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	e = c->tabsz ? *ce_slot(c, ref->id, type) : NULL;
	if (!e) {
		e = ce_new(c, ref->id, type);
		pthread_mutex_unlock(&c->lock);
		if (!e)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		rc = load(c, series, ref, e, &from_disk);
		rc = finish(c, e, ref, rc, from_disk, 1);
		if (rc == 0) {
			*out = e;
			return 0;
		}
		cache_release(c, e);
		return rc;
	}
	e->refs++;
	if (e->state == CE_READY)
		c->st.mem_hits++;
	while (e->state == CE_LOADING)
		pthread_cond_wait(&c->cond, &c->lock);
	if (e->state == CE_FAILED) {
		rc = snap_seterr(e->err, "%s", e->msg ? e->msg : "fetch failed");
		if (--e->refs == 0)
			ce_free(e);
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	LRU_UNLINK(e);
	LRU_PUSH(&c->lru, e);
	pthread_mutex_unlock(&c->lock);
	*out = e;
	return 0;
}

int cache_chunk(struct cache *c, const char *series, const struct ref *ref,
		struct centry **e, const uint8_t **data)
{
	int rc = get(c, series, ref, BT_DATA, e);

	*data = rc ? NULL : (*e)->data;
	return rc;
}

int cache_tree(struct cache *c, const char *series, const struct ref *ref,
	       struct centry **e, const struct tree **t)
{
	int rc = get(c, series, ref, BT_TREE, e);

	*t = rc ? NULL : &(*e)->tree;
	return rc;
}

void cache_release(struct cache *c, struct centry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&c->lock);
	if (--e->refs == 0 && e->state == CE_FAILED)
		ce_free(e);
	else if (e->refs == 0)
		mem_evict(c);
	pthread_mutex_unlock(&c->lock);
}

static void prefetch_job(void *arg)
{
	struct pjob *j = arg;
	struct cache *c = j->c;
	int from_disk, rc;

	rc = load(c, j->series, &j->ref, j->e, &from_disk);
	finish(c, j->e, &j->ref, rc, from_disk, 0);
	pthread_mutex_lock(&c->lock);
	c->pending--;
	pthread_mutex_unlock(&c->lock);
	free(j);
}

void cache_prefetch(struct cache *c, const char *series, const struct ref *ref)
{
	struct pjob *j;

	pthread_mutex_lock(&c->lock);
	if ((c->tabsz && *ce_slot(c, ref->id, BT_DATA)) ||
	    c->pending >= c->max_pending) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j)
		j->e = ce_new(c, ref->id, BT_DATA);
	if (!j || !j->e) {
		free(j);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->pending++;
	c->st.prefetches++;
	pthread_mutex_unlock(&c->lock);
	j->c = c;
	snprintf(j->series, sizeof(j->series), "%s", series);
	j->ref = *ref;
	/* The queue holds max_pending jobs, so this never blocks. */
	if (workq_submit(c->pq, prefetch_job, j)) {
		finish(c, j->e, ref, snap_seterr(SNAP_ENOMEM, "out of memory"),
		       0, 0);
		pthread_mutex_lock(&c->lock);
		c->pending--;
		pthread_mutex_unlock(&c->lock);
		free(j);
	}
}

static void manifest_path(struct disk *d, const char *series, uint32_t num,
			  char *out, size_t n)
{
	snprintf(out, n, "%s/manifests/%s/%u.json", d->root, series, num);
}

static int read_whole(const char *path, struct buf *out)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

	if (fd < 0)
		return -1;
	out->len = 0;
	if (fstat(fd, &sb) == 0 && sb.st_size > 0 &&
	    (uint64_t)sb.st_size <= MANIFEST_MAX &&
	    buf_reserve(out, (size_t)sb.st_size) == 0 &&
	    pread(fd, out->p, (size_t)sb.st_size, 0) == sb.st_size) {
		out->len = (size_t)sb.st_size;
		rc = 0;
	}
	close(fd);
	return rc;
}

int cache_manifest(struct cache *c, const char *series, uint32_t num,
		   struct buf *text, struct manifest *m)
{
	char path[4096], dir[4200];
	int rc;

	if (c->dk) {
		manifest_path(c->dk, series, num, path, sizeof(path));
		if (read_whole(path, text) == 0) {
			rc = manifest_parse((char *)text->p, text->len,
					    &c->r->keys, series, num, m);
			if (rc != SNAP_ECORRUPT && rc != SNAP_EUNSUPP)
				return rc;
			/* A torn write, a bad disk, a hand: the store's copy
			 * decides, and replaces this one if it parses. */
			unlink(path);
		}
	}
	rc = repo_manifest_text(c->r, series, num, text);
	if (rc == 0)
		rc = manifest_parse((char *)text->p, text->len, &c->r->keys,
				    series, num, m);
	if (rc || !c->dk)
		return rc;
	snprintf(dir, sizeof(dir), "%s/manifests/%s", c->dk->root, series);
	/* Synced: a remount browses from these without asking the store. */
	if (make_dirs(dir, 0700, 1) == 0)
		disk_write(c->dk, path, text->p, text->len, 1);
	return 0;
}

void cache_get_stats(struct cache *c, struct cache_stats *s)
{
	pthread_mutex_lock(&c->lock);
	*s = c->st;
	s->mem_used = c->mem_used;
	pthread_mutex_unlock(&c->lock);
	if (c->dk) {
		pthread_mutex_lock(&c->dk->lock);
		s->disk_used = c->dk->used;
		s->disk_files = c->dk->count;
		pthread_mutex_unlock(&c->dk->lock);
	}
}

int cache_open(struct repo *r, const struct cache_opts *o, struct cache **out,
	       char *warning, size_t wlen)
{
	struct cache *c = calloc(1, sizeof(*c));
	int threads = o->prefetch_threads > 0 ? o->prefetch_threads : 4, rc;

	*out = NULL;
	if (wlen)
		warning[0] = 0;
	if (!c)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	c->r = r;
	c->mem_max = o->mem_bytes;
	c->lru.next = c->lru.prev = &c->lru;
	c->max_pending = 4 * threads;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	rc = workq_create(&c->pq, threads, (size_t)c->max_pending);
	if (rc)
		goto fail;
	if (o->dir) {
		rc = disk_open(o->dir, r->id, o->disk_bytes, &c->dk, warning,
			       wlen);
		if (rc)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	cache_close(c);
	return rc;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	if (c->pq)
		workq_destroy(c->pq);
	while (c->lru.next != &c->lru) {
		struct centry *e = c->lru.next;

		LRU_UNLINK(e);
		ce_free(e);
	}
	free(c->tab);
	disk_free(c->dk);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}
