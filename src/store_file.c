/*
 * store_file.c - the local / NFS directory backend.
 *
 * Keys map to paths under the root.  A put writes a hidden temporary file
 * beside its destination, fsyncs it, and then renames it into place (or, for
 * create-only puts, link()s it, which fails atomically when the key exists),
 * then fsyncs the directory: a crash leaves either the old state or the new
 * object, never a torn one.  Temporary files start with ".snapfs-tmp-" and
 * are never listed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "store.h"

#define TMP_PREFIX ".snapfs-tmp-"

struct fstore {
	struct store s;
	char *root; /* no trailing slash */
};

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
	hex_encode(rnd, sizeof(rnd), rhex);
	slash = strrchr(path, '/');
	snprintf(tmp, sizeof(tmp), "%.*s/" TMP_PREFIX "%s",
		 (int)(slash - path), path, rhex);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		SNAP_TRY(make_dirs(tmp, 0755, 0));
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

static int f_del(struct store *s, const char *key)
{
	struct fstore *fs = (struct fstore *)s;
	char path[PATH_MAX], *slash;

	SNAP_TRY(path_of(fs, key, path, sizeof(path)));
	if (unlink(path) && errno != ENOENT)
		return snap_syserr(errno, "%s: deleting", key);
	/* Remove directories the delete emptied, up to the root, so that a
	 * deleted series leaves nothing behind. */
	while ((slash = strrchr(path, '/')) && slash > path + strlen(fs->root)) {
		*slash = 0;
		if (rmdir(path))
			break;
	}
	return 0;
}

static void f_close(struct store *s)
{
	struct fstore *fs = (struct fstore *)s;

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
	.close = f_close,
};

int store_file_open(const char *path, struct store **out)
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
	fs->root = strdup(abs);
	fs->s.url = strdup(abs);
	if (!fs->root || !fs->s.url) {
		f_close(&fs->s);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	*out = &fs->s;
	return 0;
}
