/*
 * store_file.c - the local / NFS directory backend.
 *
 * Keys map to paths under the root.  A put writes a hidden temporary file
 * beside its destination, fsyncs it, and then renames it into place (or, for
 * create-only puts, link()s it, which fails atomically when the key exists),
 * then fsyncs the directory: a crash leaves either the old state or the new
 * object, never a torn one.  Directories a put creates are made durable in
 * their parents before the object goes in.  Temporary files start with
 * ".snapfs-tmp-" and are never listed; those a killed put left behind are
 * swept (after STORE_TMP_GRACE, by their mtime, which a put still writing
 * keeps fresh) when their prefix is deleted or checked.  With direct_read,
 * large ranges are read with O_DIRECT (aligned to 4 KiB around the range
 * asked for).  limit_up and limit_down pace puts and gets over all
 * threads (an NFS mount shares its link with the hosts' own traffic).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "store.h"

#define TMP_PREFIX ".snapfs-tmp-"

/* Transfers that share a rate: each one ends no sooner than the bytes
 * before it and its own could have gone at that rate (no credit is saved
 * while idle). */
struct pace {
	pthread_mutex_t m;
	uint64_t rate; /* bytes/s; 0: none */
	double free_at; /* mono_sec() the last transfer ends */
};

struct fstore {
	struct store s;
	char *root; /* no trailing slash */
	int direct;  /* store_opts.direct_read */
	struct pace up, down;
};

static void pace(struct pace *p, uint64_t n)
{
	double now, end;

	if (!p->rate)
		return;
	now = mono_sec();
	pthread_mutex_lock(&p->m);
	end = (p->free_at > now ? p->free_at : now) + (double)n / p->rate;
	p->free_at = end;
	pthread_mutex_unlock(&p->m);
	while (now < end) {
		struct timespec ts = {(time_t)(end - now),
				      (long)((end - now - (time_t)(end - now)) *
					     1e9)};

		nanosleep(&ts, NULL);
		now = mono_sec();
	}
}

static int key_ok(const char *key)
{
	/* Keys come from the engine, but a listing of a tampered directory
	 * could feed names back in: never let one climb out of the root. */
	if (!*key || key[0] == '/' || strstr(key, "..") || strstr(key, "//"))
		return snap_seterr(SNAP_EINVAL, "invalid object key '%s'",
				   key);
	return 0;
}

static int path_of(struct fstore *fs, const char *key, char *out, size_t n)
{
	SNAP_TRY(key_ok(key));
	if ((size_t)snprintf(out, n, "%s/%s", fs->root, key) >= n)
		return snap_seterr(SNAP_EINVAL, "object key too long: %s",
				   key);
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc = 0;

	if (!slash)
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return snap_syserr(errno, "opening %s", dir);
	/* Some network filesystems refuse fsync on directories. */
	if (fsync(fd) && errno != EINVAL && errno != EROFS)
		rc = snap_syserr(errno, "syncing %s", dir);
	close(fd);
	return rc;
}

/* Creates the missing directories above path, each made durable in its
 * parent: an object renamed into a new directory survives a crash only if
 * the directory's own entry does.  One another put has just made may not
 * be durable yet either, so below the root a directory found existing is
 * synced too (this runs only when a put found its directory missing). */
static int make_parents(struct fstore *fs, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t root_len = strlen(fs->root);

	if ((size_t)snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path),
			     path) >= sizeof(dir))
		return snap_seterr(SNAP_EINVAL, "path too long: %s", path);
	for (char *p = strchr(dir + 1, '/');; p = strchr(p + 1, '/')) {
		int made;

		if (p)
			*p = 0;
		made = mkdir(dir, 0755) == 0;
		if (!made && errno != EEXIST)
			return snap_syserr(errno, "creating directory %s", dir);
		if (made || strlen(dir) > root_len)
			SNAP_TRY(fsync_dir_of(dir));
		if (!p)
			return 0;
		*p = '/';
	}
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= w;
	}
	return 0;
}

static int f_put(struct store *s, const char *key, const void *p, size_t n,
		 int flags)
{
	struct fstore *fs = (struct fstore *)s;
	char path[PATH_MAX], tmp[PATH_MAX + 64];
	const char *slash;
	unsigned char rnd[8];
	char rhex[17];
	int fd, e, rc;

	SNAP_TRY(path_of(fs, key, path, sizeof(path)));
	SNAP_TRY(random_bytes(rnd, sizeof(rnd)));
	pace(&fs->up, n);
	hex_encode(rnd, sizeof(rnd), rhex);
	slash = strrchr(path, '/');
	snprintf(tmp, sizeof(tmp), "%.*s/" TMP_PREFIX "%s",
		 (int)(slash - path), path, rhex);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		SNAP_TRY(make_parents(fs, tmp));
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	}
	if (fd < 0)
		return snap_syserr(errno, "%s: creating %s", key, tmp);
	e = write_all(fd, p, n);
	if (!e && fsync(fd))
		e = -errno;
	if (close(fd) && !e)
		e = -errno;
	if (e) {
		unlink(tmp);
		return snap_syserr(-e, "%s: writing", key);
	}
	if (flags & STORE_CREATE_ONLY) {
		if (link(tmp, path)) {
			e = errno;
			unlink(tmp);
			if (e == EEXIST)
				return snap_seterr(SNAP_EEXIST,
						   "%s: already exists", key);
			return snap_syserr(e, "%s: linking", key);
		}
		unlink(tmp);
	} else if (rename(tmp, path)) {
		e = errno;
		unlink(tmp);
		return snap_syserr(e, "%s: renaming", key);
	}
	rc = fsync_dir_of(path);
	return rc;
}

#define DIO_ALIGN 4096     /* offset, length and buffer alignment */
#define DIO_MIN (256u << 10) /* smaller reads go through the page cache */

/* Reads [off, off+want) of fd with O_DIRECT, appending to out.  Returns 0,
 * a snap_err, or 1 when the filesystem does not take O_DIRECT for this
 * file (the caller reads it normally). */
static int read_direct(int fd, uint64_t off, uint64_t want, struct buf *out)
{
	uint64_t a0 = off & ~(uint64_t)(DIO_ALIGN - 1);
	uint64_t a1 = (off + want + DIO_ALIGN - 1) & ~(uint64_t)(DIO_ALIGN - 1);
	int flags = fcntl(fd, F_GETFL);
	size_t got = 0;
	uint8_t *p;

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_DIRECT) < 0)
		return 1;
	/* Aligned reads land in out's spare room, then move into place. */
	if (buf_reserve(out, (a1 - a0) + DIO_ALIGN))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	p = (uint8_t *)(((uintptr_t)(out->p + out->len) + DIO_ALIGN - 1) &
			~(uintptr_t)(DIO_ALIGN - 1));
	while (a0 + got < a1) {
		ssize_t r = pread(fd, p + got, a1 - a0 - got, a0 + got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fcntl(fd, F_SETFL, flags);
			return 1;
		}
		if (r == 0)
			break;
		got += r;
	}
	got = got > off - a0 ? got - (off - a0) : 0;
	memmove(out->p + out->len, p + (off - a0), got < want ? got : want);
	out->len += got < want ? got : want;
	return 0;
}

static int f_get(struct store *s, const char *key, int64_t off, int64_t len,
		 struct buf *out)
{
	struct fstore *fs = (struct fstore *)s;
	char path[PATH_MAX];
	struct stat st;
	int fd, rc = 0;
	uint64_t want;

	SNAP_TRY(path_of(fs, key, path, sizeof(path)));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return snap_syserr(errno, "%s", key);
	if (fstat(fd, &st)) {
		rc = snap_syserr(errno, "%s", key);
		goto out;
	}
	if (off < 0) {
		off = -off > st.st_size ? 0 : st.st_size + off;
		len = -1;
	}
	if (off >= st.st_size)
		goto out;
	want = st.st_size - off;
	if (len >= 0 && (uint64_t)len < want)
		want = len;
	rc = buf_reserve(out, want);
	if (rc)
		goto out;
	pace(&fs->down, want);
	if (fs->direct && want >= DIO_MIN) {
		rc = read_direct(fd, off, want, out);
		if (rc != 1)
			goto out;
		rc = 0;
	}
	while (want) {
		ssize_t r = pread(fd, out->p + out->len, want, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = snap_syserr(errno, "%s: reading", key);
			goto out;
		}
		if (r == 0)
			break;
		out->len += r;
		off += r;
		want -= r;
	}
out:
	close(fd);
	return rc;
}

static int f_head(struct store *s, const char *key, uint64_t *size)
{
	struct fstore *fs = (struct fstore *)s;
	char path[PATH_MAX];
	struct stat st;

	SNAP_TRY(path_of(fs, key, path, sizeof(path)));
	if (stat(path, &st))
		return snap_syserr(errno, "%s", key);
	if (!S_ISREG(st.st_mode))
		return snap_seterr(SNAP_ENOENT, "%s: not an object", key);
	*size = st.st_size;
	return 0;
}

/* Walks dir (relative key prefix rel, "" for the root) depth first. */
static int walk(struct fstore *fs, const char *rel, const char *prefix,
		store_list_cb cb, void *ctx)
{
	char path[PATH_MAX + 64], key[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", fs->root, rel);
	d = opendir(path);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return snap_syserr(errno, "listing %s", path);
	}
	while (rc == 0 && (errno = 0, de = readdir(d))) {
		struct stat st;
		size_t kl;

		if (de->d_name[0] == '.')
			continue; /* ".", "..", temporaries */
		if ((size_t)snprintf(key, sizeof(key), "%s%s", rel,
				     de->d_name) >= sizeof(key))
			continue;
		kl = strlen(key);
		/* Prune subtrees that cannot match the prefix. */
		if (strncmp(key, prefix, kl < strlen(prefix) ? kl : strlen(prefix)))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", fs->root,
				     key) >= sizeof(path) ||
		    lstat(path, &st))
			continue; /* deleted under us */
		if (S_ISDIR(st.st_mode)) {
			if (kl + 2 > sizeof(key))
				continue;
			key[kl] = '/';
			key[kl + 1] = 0;
			rc = walk(fs, key, prefix, cb, ctx);
		} else if (S_ISREG(st.st_mode) &&
			   strncmp(key, prefix, strlen(prefix)) == 0) {
			rc = cb(key, st.st_size, ctx);
		}
	}
	if (rc == 0 && errno)
		rc = snap_syserr(errno, "listing %s", rel);
	closedir(d);
	return rc;
}

static int f_list(struct store *s, const char *prefix, store_list_cb cb,
		  void *ctx)
{
	struct fstore *fs = (struct fstore *)s;
	char start[PATH_MAX];
	const char *slash = strrchr(prefix, '/');

	if (*prefix)
		SNAP_TRY(key_ok(prefix));
	/* Start at the deepest directory the prefix names. */
	snprintf(start, sizeof(start), "%.*s",
		 slash ? (int)(slash - prefix + 1) : 0, prefix);
	return walk(fs, start, prefix, cb, ctx);
}

/* Removes the directories above path that are empty, up to the root, so
 * that a deleted series leaves nothing behind. */
static void prune_dirs(struct fstore *fs, char *path)
{
	char *slash;

	while ((slash = strrchr(path, '/')) && slash > path + strlen(fs->root)) {
		*slash = 0;
		if (rmdir(path))
			break;
	}
}

static int f_del(struct store *s, const char *key)
{
	struct fstore *fs = (struct fstore *)s;
	char path[PATH_MAX];

	SNAP_TRY(path_of(fs, key, path, sizeof(path)));
	if (unlink(path) && errno != ENOENT)
		return snap_syserr(errno, "%s: deleting", key);
	prune_dirs(fs, path);
	return 0;
}

/* Unlinks the temporaries older than cutoff in dir and below, and the
 * subdirectories that leaves empty. */
static int sweep_dir(char *dir, size_t cap, time_t cutoff)
{
	size_t n = strlen(dir);
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d)
		return errno == ENOENT || errno == ENOTDIR
			       ? 0
			       : snap_syserr(errno, "sweeping %s", dir);
	while (rc == 0 && (errno = 0, de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if ((size_t)snprintf(dir + n, cap - n, "/%s",
					     de->d_name) < cap - n) {
				rc = sweep_dir(dir, cap, cutoff);
				if (rc == 0)
					rmdir(dir); /* only if emptied */
			}
			dir[n] = 0;
		} else if (S_ISREG(st.st_mode) && st.st_mtime < cutoff &&
			   !strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) &&
			   unlinkat(dirfd(d), de->d_name, 0) && errno != ENOENT) {
			rc = snap_syserr(errno, "removing %s/%s", dir,
					 de->d_name);
		}
	}
	if (rc == 0 && errno)
		rc = snap_syserr(errno, "sweeping %s", dir);
	closedir(d);
	return rc;
}

static int f_sweep(struct store *s, const char *prefix)
{
	struct fstore *fs = (struct fstore *)s;
	size_t n = strlen(prefix);
	char dir[PATH_MAX];
	int rc;

	/* Temporaries are named at random beside their object: only those
	 * in a directory the prefix names whole belong to it. */
	if (n && prefix[n - 1] != '/')
		return 0;
	if (n)
		SNAP_TRY(key_ok(prefix));
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", fs->root, prefix) >=
	    sizeof(dir) - 1)
		return snap_seterr(SNAP_EINVAL, "prefix too long: %s", prefix);
	dir[strlen(dir) - 1] = 0; /* the trailing '/' */
	rc = sweep_dir(dir, sizeof(dir), time(NULL) - STORE_TMP_GRACE);
	if (rc == 0 && n) {
		strcat(dir, "/x"); /* as if dir/x had been deleted */
		prune_dirs(fs, dir);
	}
	return rc;
}

static void f_close(struct store *s)
{
	struct fstore *fs = (struct fstore *)s;

	pthread_mutex_destroy(&fs->up.m);
	pthread_mutex_destroy(&fs->down.m);
	free(fs->root);
	free(fs->s.url);
	free(fs);
}

static const struct store_ops file_ops = {
	.scheme = "file",
	.put = f_put,
	.get = f_get,
	.head = f_head,
	.list = f_list,
	.del = f_del,
	.sweep = f_sweep,
	.close = f_close,
};

int store_file_open(const char *path, const struct store_opts *so,
		    struct store **out)
{
	struct fstore *fs;
	char abs[PATH_MAX];
	size_t n;

	if (path[0] != '/') {
		if (!getcwd(abs, sizeof(abs)))
			return snap_syserr(errno, "getcwd");
		n = strlen(abs);
		if ((size_t)snprintf(abs + n, sizeof(abs) - n, "/%s", path) >=
		    sizeof(abs) - n)
			return snap_seterr(SNAP_EINVAL, "path too long");
	} else {
		snprintf(abs, sizeof(abs), "%s", path);
	}
	n = strlen(abs);
	while (n > 1 && abs[n - 1] == '/')
		abs[--n] = 0;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	fs->s.ops = &file_ops;
	fs->direct = so && so->direct_read;
	pthread_mutex_init(&fs->up.m, NULL);
	pthread_mutex_init(&fs->down.m, NULL);
	fs->up.rate = so ? so->limit_up : 0;
	fs->down.rate = so ? so->limit_down : 0;
	fs->root = strdup(abs);
	fs->s.url = strdup(abs);
	if (!fs->root || !fs->s.url) {
		f_close(&fs->s);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	*out = &fs->s;
	return 0;
}
