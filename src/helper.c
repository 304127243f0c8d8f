/* helper.c - posting and ZooKeeper directory restores; see helper.h. */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "helper.h"

#define PROBE_TIMEOUT_MS 3000

static void say(const struct helper_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(const struct helper_opts *o, const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;

	if (!o->say)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o->say(msg, o->say_ctx);
}

/* snprintf into a path buffer of PATH_MAX; a path that does not fit is
 * an error, never silently cut. */
static int pathf(char *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int pathf(char *out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		return snap_seterr(SNAP_EINVAL, "path too long: %.64s...", out);
	return 0;
}

unsigned postings_number(const char *group)
{
	const char *p = group;
	unsigned long n;
	char *end;

	if (*p == 'g' || *p == 'p')
		p++;
	if (*p < '1' || *p > '9')
		return 0;
	errno = 0;
	n = strtoul(p, &end, 10);
	if (*end || errno || n > 0x7fffffffUL)
		return 0;
	return (unsigned)n;
}

/* Removes name below dfd and everything in it, never following a
 * symlink out of the tree. */
static int rm_tree_at(int dfd, const char *name)
{
	struct dirent *de;
	int fd, rc = 0;
	DIR *d;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return snap_syserr(errno, "removing %s", name);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return snap_syserr(errno, "removing %s", name);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return snap_syserr(errno, "removing %s", name);
	}
	while (rc == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rc = rm_tree_at(dirfd(d), de->d_name);
	closedir(d);
	if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) && errno != ENOENT)
		rc = snap_syserr(errno, "removing %s", name);
	return rc;
}

static int rm_tree(const char *path)
{
	return rm_tree_at(AT_FDCWD, path);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0 || fsync(fd))
		rc = snap_syserr(errno, "%s: fsync", path);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Splits a destination path into its parent and last component, without
 * trailing slashes. */
static int split_path(const char *path, char parent[PATH_MAX],
		      char base[NAME_MAX + 1])
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);
	char *slash;

	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(tmp))
		return snap_seterr(SNAP_EINVAL, "bad directory '%s'", path);
	memcpy(tmp, path, n);
	tmp[n] = 0;
	slash = strrchr(tmp, '/');
	if (slash)
		*slash = 0;
	if (strlen(slash ? slash + 1 : tmp) > NAME_MAX)
		return snap_seterr(SNAP_EINVAL, "name too long: %s", path);
	strcpy(base, slash ? slash + 1 : tmp);
	strcpy(parent, !slash ? "." : slash == tmp ? "/" : tmp);
	if (!base[0] || !strcmp(base, ".") || !strcmp(base, ".."))
		return snap_seterr(SNAP_EINVAL,
				   "'%s' does not name a directory to replace",
				   path);
	return 0;
}

/* The staging sibling of parent/base for one backup, after removing the
 * siblings earlier attempts left for other backups. */
static int make_stage(const struct helper_opts *o, const char *parent,
		      const char *base, const char *series, uint32_t num,
		      char stage[PATH_MAX])
{
	char prefix[NAME_MAX + 1], mine[NAME_MAX + 1];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(prefix, sizeof(prefix), ".%s.snapfs-", base);
	if ((size_t)snprintf(mine, sizeof(mine), "%s%s-%u", prefix, series,
			     num) >= sizeof(mine))
		return snap_seterr(SNAP_EINVAL, "name too long: %s", base);
	SNAP_TRY(pathf(stage, "%s/%s", parent, mine));
	d = opendir(parent);
	if (!d)
		return snap_syserr(errno, "%s", parent);
	while (rc == 0 && (de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) ||
		    !strcmp(de->d_name, mine))
			continue;
		say(o, "removing %s/%s, left by an attempt at another backup",
		    parent, de->d_name);
		rc = rm_tree_at(dirfd(d), de->d_name);
	}
	closedir(d);
	if (rc)
		return rc;
	if (access(stage, F_OK) == 0)
		say(o, "resuming into %s", stage);
	return 0;
}

/* path.bak-<UTC timestamp>, made unique. */
static int aside_name(const char *path, char out[PATH_MAX])
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	SNAP_TRY(pathf(out, "%s.bak-%s", path, ts));
	for (int i = 2; access(out, F_OK) == 0 && i < 1000; i++)
		SNAP_TRY(pathf(out, "%s.bak-%s-%d", path, ts, i));
	return 0;
}

/* rename(2) that never replaces: EEXIST when to exists.  Where the
 * filesystem has no RENAME_NOREPLACE (EINVAL), a check before the rename
 * stands in for it, racy but no worse than rename alone. */
static int rename_new(const char *from, const char *to)
{
	struct stat st;

	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (lstat(to, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

/* Trades the names a and b in one step.  -1 with errno EINVAL (or
 * ENOSYS) where the filesystem cannot (some FUSE and network ones). */
static int exchange(const char *a, const char *b)
{
	return renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

static int no_exchange(int err)
{
	return err == EINVAL || err == ENOSYS;
}

/*
 * Moves stage into dest's place and dest (if any) aside, without dest ever
 * missing: the restored directory takes the aside name, then trades places
 * with dest.  Interrupted in between, dest is as it was and the restored
 * copy sits under the aside name; never the old directory under the
 * stage's name, where the next attempt would resume into it.  Where the
 * filesystem cannot exchange, dest is missing between two renames, as
 * rename(2) alone allows.  On failure nothing has moved (aside is "").
 */
static int swap_in(const struct helper_opts *o, const char *stage,
		   const char *dest, char aside[PATH_MAX])
{
	struct stat st;
	int rc, err;

	aside[0] = 0;
	if (lstat(dest, &st)) {
		if (errno != ENOENT)
			return snap_syserr(errno, "%s", dest);
		if (rename_new(stage, dest))
			return snap_syserr(errno, "renaming %s to %s", stage,
					   dest);
		return 0;
	}
	SNAP_TRY(aside_name(dest, aside));
	if (rename_new(stage, aside)) {
		rc = snap_syserr(errno, "renaming %s to %s", stage, aside);
		aside[0] = 0;
		return rc;
	}
	if (exchange(aside, dest) == 0) {
		say(o, "moved %s aside to %s", dest, aside);
		return 0;
	}
	err = errno;
	if (rename_new(aside, stage)) {
		rc = snap_syserr(errno,
				 "replacing %s with %s: %s; then moving it "
				 "from %s back",
				 dest, stage, strerror(err), aside);
		aside[0] = 0;
		return rc;
	}
	if (!no_exchange(err)) {
		rc = snap_syserr(err, "replacing %s with %s", dest, stage);
		aside[0] = 0;
		return rc;
	}
	if (rename_new(dest, aside)) {
		rc = snap_syserr(errno, "moving %s aside", dest);
		aside[0] = 0;
		return rc;
	}
	if (rename_new(stage, dest)) {
		rc = snap_syserr(errno, "renaming %s to %s", stage, dest);
		/* Put the old one back: nothing changed after all. */
		if (rename_new(aside, dest) == 0)
			aside[0] = 0;
		return rc;
	}
	say(o, "moved %s aside to %s", dest, aside);
	return 0;
}

/* Undoes a swap_in: the old directory (if there was one) back at dest,
 * the restored one back at stage for the next attempt. */
static int swap_out(const struct helper_opts *o, const char *stage,
		    const char *dest, const char *aside)
{
	if (!aside[0]) {
		if (rename_new(dest, stage))
			return snap_syserr(errno, "renaming %s back to %s", dest,
					   stage);
	} else if (exchange(aside, dest) == 0) {
		/* dest is as it was: a restored copy left under the aside
		 * name only costs the next attempt a fresh start. */
		if (rename_new(aside, stage))
			say(o, "put %s back as it was; the restored copy stays "
			       "as %s (renaming it to %s: %s)",
			    dest, aside, stage, strerror(errno));
		else
			say(o, "put %s back as it was", dest);
		return 0;
	} else if (!no_exchange(errno)) {
		return snap_syserr(errno, "putting %s back from %s", dest,
				   aside);
	} else if (rename_new(dest, stage)) {
		return snap_syserr(errno, "renaming %s back to %s", dest,
				   stage);
	} else if (rename_new(aside, dest)) {
		return snap_syserr(errno, "renaming %s back to %s", aside,
				   dest);
	}
	say(o, "put %s back as it was", dest);
	return 0;
}

static void sum_into(struct restore_result *s, const struct restore_result *r)
{
	s->files += r->files;
	s->dirs += r->dirs;
	s->links += r->links;
	s->bytes += r->bytes;
	s->files_kept += r->files_kept;
	s->bytes_kept += r->bytes_kept;
	s->warnings += r->warnings;
}

/* Restores one group as stage (resuming what is there). */
static int stage_group(struct repo *r, const char *series, uint32_t num,
		       const struct helper_opts *o, const char *group,
		       const char *stage, struct helper_result *res)
{
	struct restore_opts ro = o->ro;
	struct restore_result rr;
	int rc;

	ro.group = group;
	ro.path = NULL;
	ro.target = stage;
	ro.flat = 1;
	ro.skip_existing = 1;
	ro.overwrite = 0;
	rc = restore_run(r, series, num, &ro, &rr);
	if (rc == 0) {
		sum_into(&res->sum, &rr);
		res->groups++;
	}
	return rc;
}

/* After a failure: a full disk gets its space back, anything else keeps
 * the stage for the next attempt. */
static void after_failure(const struct helper_opts *o, int rc,
			  const char *stage)
{
	if (access(stage, F_OK))
		return;
	if (rc == SNAP_ENOSPC) {
		rm_tree(stage);
		say(o, "removed %s to free the space it took", stage);
	} else {
		say(o, "kept %s: run the same command again to resume", stage);
	}
}

/* --- posting directories -------------------------------------------------*/

struct pgroup {
	const char *name;
	unsigned n;
	char stage[PATH_MAX], dest[PATH_MAX], aside[PATH_MAX];
};

static unsigned map_group(const struct helper_opts *o, const char *name)
{
	for (size_t i = 0; i < o->nmaps; i++)
		if (!strcmp(o->maps[i].group, name))
			return o->maps[i].n;
	return postings_number(name);
}

static int write_group_id(const char *stage, unsigned n)
{
	char path[PATH_MAX], text[16];
	struct stat st;
	int fd, len, rc = 0;

	SNAP_TRY(pathf(path, "%s/group_id", stage));
	if (lstat(path, &st) == 0)
		return 0;
	len = snprintf(text, sizeof(text), "%u\n", n);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd < 0)
		return snap_syserr(errno, "%s", path);
	if (write(fd, text, len) != len || fsync(fd))
		rc = snap_syserr(errno ? errno : EIO, "writing %s", path);
	/* Owned like the directory it describes. */
	if (rc == 0 && stat(stage, &st) == 0 && geteuid() == 0 &&
	    fchown(fd, st.st_uid, st.st_gid))
		rc = snap_syserr(errno, "%s: chown", path);
	close(fd);
	return rc;
}

/* After the swap of group failed with rc: puts back the groups before it,
 * last first, so that the posting directories are all as they were and
 * every stage is there to resume from.  Returns rc with its message, plus
 * what could not be put back. */
static int unswap(const struct helper_opts *o, const struct pgroup *pg,
		  size_t failed, int rc)
{
	char msg[1024];
	size_t len;

	rc = snap_preerr(rc, "group %s", pg[failed].name);
	len = (size_t)snprintf(msg, sizeof(msg), "%s", snap_errmsg());
	for (size_t k = failed; k-- > 0;) {
		if (swap_out(o, pg[k].stage, pg[k].dest, pg[k].aside) == 0)
			continue;
		if (len < sizeof(msg))
			len += (size_t)snprintf(msg + len, sizeof(msg) - len,
						"; %s not put back (%s)%s%s",
						pg[k].dest, snap_errmsg(),
						pg[k].aside[0] ? ": the old one is "
							       : "",
						pg[k].aside);
	}
	fsync_dir(o->postings);
	return snap_seterr(rc, "%s", msg);
}

int restore_postings(struct repo *r, const char *series, uint32_t num,
		     const struct helper_opts *o, struct helper_result *res)
{
	const char *dir = o->postings;
	struct pgroup *pg = NULL;
	struct manifest m;
	struct stat st;
	size_t n = 0, i;
	double t0 = mono_sec();
	int rc;

	memset(res, 0, sizeof(*res));
	SNAP_TRY(repo_load_manifest(r, series, num, &m));
	pg = calloc(m.ngroups ? m.ngroups : 1, sizeof(*pg));
	if (!pg) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t g = 0; g < m.ngroups; g++) {
		if (o->ro.group && strcmp(o->ro.group, m.groups[g].name))
			continue;
		pg[n].name = m.groups[g].name;
		pg[n].n = map_group(o, pg[n].name);
		if (!pg[n].n) {
			rc = snap_seterr(SNAP_EINVAL,
					 "group '%s' has no posting directory "
					 "number: map it with --map %s=pN",
					 pg[n].name, pg[n].name);
			goto out;
		}
		for (i = 0; i < n; i++)
			if (pg[i].n == pg[n].n) {
				rc = snap_seterr(SNAP_EINVAL,
						 "groups '%s' and '%s' would both "
						 "become p%u",
						 pg[i].name, pg[n].name, pg[n].n);
				goto out;
			}
		n++;
	}
	if (!n) {
		rc = snap_seterr(SNAP_ENOENT, "backup %s/%u has no group '%s'",
				 series, num, o->ro.group ? o->ro.group : "");
		goto out;
	}
	if (mkdir(dir, 0755) && errno != EEXIST) {
		rc = snap_syserr(errno, "%s", dir);
		goto out;
	}
	/* Refuse before fetching anything. */
	for (i = 0; i < n; i++) {
		char base[16];

		snprintf(base, sizeof(base), "p%u", pg[i].n);
		rc = pathf(pg[i].dest, "%s/%s", dir, base);
		if (rc)
			goto out;
		if (!o->force && lstat(pg[i].dest, &st) == 0) {
			rc = snap_seterr(SNAP_EEXIST,
					 "%s exists (--force moves it aside)",
					 pg[i].dest);
			goto out;
		}
		rc = make_stage(o, dir, base, series, num, pg[i].stage);
		if (rc)
			goto out;
	}
	for (i = 0; i < n; i++) {
		say(o, "restoring group %s into %s", pg[i].name, pg[i].dest);
		rc = stage_group(r, series, num, o, pg[i].name, pg[i].stage,
				 res);
		if (rc == 0 && o->verify) {
			struct restore_result vr;

			rc = restore_verify(r, series, num, pg[i].name,
					    pg[i].stage, &vr);
		}
		rc = rc ? rc : write_group_id(pg[i].stage, pg[i].n);
		if (rc) {
			rc = snap_preerr(rc, "group %s", pg[i].name);
			for (size_t k = 0; k <= i; k++)
				after_failure(o, rc, pg[k].stage);
			goto out;
		}
	}
	/* Every group is complete: only now touch the live directories, all
	 * of them or none. */
	for (i = 0; i < n && rc == 0; i++)
		rc = swap_in(o, pg[i].stage, pg[i].dest, pg[i].aside);
	if (rc) {
		rc = unswap(o, pg, i - 1, rc);
		for (size_t k = 0; k < n; k++)
			after_failure(o, rc, pg[k].stage);
		goto out;
	}
	for (i = 0; i < n && !res->aside[0]; i++)
		snprintf(res->aside, sizeof(res->aside), "%s", pg[i].aside);
	rc = fsync_dir(dir);
	res->sum.elapsed = mono_sec() - t0;
out:
	free(pg);
	manifest_free(&m);
	return rc;
}

/* --- ZooKeeper -----------------------------------------------------------*/

/* "snapshot.<hex>" or "log.<hex>" */
static int zk_file(const char *name)
{
	const char *p = !strncmp(name, "snapshot.", 9) ? name + 9
			: !strncmp(name, "log.", 4)    ? name + 4
						       : NULL;

	if (!p || !*p)
		return 0;
	for (; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		      (*p >= 'A' && *p <= 'F')))
			return 0;
	return 1;
}

/* Looks up a relative path of directories in a backup tree; *out is the
 * tree of the last one (empty on failure). */
static int tree_at(struct repo *r, const char *series, const struct tree *root,
		   const char *path, struct tree *out)
{
	char copy[256], *comp, *save = NULL;
	struct tree cur = {0};
	const struct tree *t = root;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	snprintf(copy, sizeof(copy), "%s", path);
	for (comp = strtok_r(copy, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		const struct tent *e = tree_find(t, comp);
		struct tree next;

		if (!e || e->type != ET_DIR) {
			rc = SNAP_ENOENT;
			break;
		}
		rc = repo_read_tree(r, series, &e->sub, &next);
		if (rc)
			break;
		tree_free(&cur);
		cur = next;
		t = &cur;
	}
	if (rc)
		tree_free(&cur);
	else
		*out = cur;
	return rc;
}

struct zk_found {
	int dcos;
	size_t snapshots, logs;
};

static void count_zk(const struct tree *t, struct zk_found *f)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->ents[i].type != ET_REG || !zk_file(t->ents[i].name))
			continue;
		if (t->ents[i].name[0] == 's')
			f->snapshots++;
		else
			f->logs++;
	}
}

/* Checks that a group is a ZooKeeper data directory, in either layout. */
static int zk_layout(struct repo *r, const char *series,
		     const struct mgroup *g, struct zk_found *f)
{
	struct tree root, a, b;
	char seen[512] = "";
	size_t len = 0;
	int rc;

	memset(f, 0, sizeof(*f));
	SNAP_TRY(repo_read_tree(r, series, &g->root, &root));
	rc = tree_at(r, series, &root, "version-2", &a);
	if (rc == 0) {
		count_zk(&a, f);
		tree_free(&a);
	} else if (rc == SNAP_ENOENT &&
		   tree_at(r, series, &root, "zookeeper/snapshot/version-2",
			   &a) == 0) {
		rc = tree_at(r, series, &root,
			     "zookeeper/transactions/version-2", &b);
		if (rc == 0) {
			f->dcos = 1;
			count_zk(&a, f);
			count_zk(&b, f);
			tree_free(&b);
		}
		tree_free(&a);
	}
	if (rc && rc != SNAP_ENOENT)
		goto out;
	if (rc == 0 && f->snapshots + f->logs)
		goto out;
	for (size_t i = 0; i < root.n && len < sizeof(seen) - 64; i++)
		len += snprintf(seen + len, sizeof(seen) - len, "%s%s%s",
				i ? ", " : "", root.ents[i].name,
				root.ents[i].type == ET_DIR ? "/" : "");
	rc = snap_seterr(SNAP_EINVAL,
			 "group '%s' is not a ZooKeeper data directory: "
			 "expected version-2/ with snapshot.<zxid> or "
			 "log.<zxid> files (or the DC/OS layout "
			 "zookeeper/snapshot/version-2 and "
			 "zookeeper/transactions/version-2); found %s",
			 g->name, root.n ? seen : "an empty directory");
out:
	tree_free(&root);
	return rc;
}

/* A live pid in a pid file: SNAP_EEXIST naming it. */
static int pid_file_alive(const char *path)
{
	char text[32] = "";
	FILE *f = fopen(path, "re");
	long pid;

	if (!f)
		return 0;
	if (!fgets(text, sizeof(text), f))
		text[0] = 0;
	fclose(f);
	pid = strtol(text, NULL, 10);
	if (pid <= 0 || (kill((pid_t)pid, 0) && errno == ESRCH))
		return 0;
	return snap_seterr(SNAP_EEXIST,
			   "ZooKeeper is running (pid %ld from %s): stop it "
			   "first",
			   pid, path);
}

/* 1 when the symlink at link (a /proc entry) points at or below dir, 0
 * when not or when it is gone (the process exited, the file was closed),
 * -1 with errno set when it cannot be read (another user's process). */
static int link_below(const char *link, const char *dir, size_t len,
		      char target[PATH_MAX])
{
	ssize_t n = readlink(link, target, PATH_MAX - 1);

	if (n < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -1;
	target[n] = 0;
	return !strncmp(target, dir, len) && (target[len] == '/' || !target[len]);
}

/* What the processes a check could not see are, for the message. */
struct unseen {
	size_t n;
	long pid;
	int err;
};

/* Whether process pid works in or has a file open below real: SNAP_EEXIST
 * when it does; what could not be read is counted in u. */
static int pid_uses(long pid, const char *real, size_t len, struct unseen *u)
{
	char link[PATH_MAX + 32], target[PATH_MAX];
	struct dirent *fe;
	DIR *fdd;
	int below, rc = 0;

	snprintf(link, sizeof(link), "/proc/%ld/cwd", pid);
	below = link_below(link, real, len, target);
	if (below > 0)
		return snap_seterr(SNAP_EEXIST,
				   "process %ld works in %s: stop ZooKeeper "
				   "first",
				   pid, target);
	snprintf(link, sizeof(link), "/proc/%ld/fd", pid);
	fdd = below == 0 ? opendir(link) : NULL;
	if (!fdd && (below < 0 || errno != ENOENT)) {
		if (!u->n++) {
			u->pid = pid;
			u->err = errno;
		}
		return 0;
	}
	for (fe = fdd ? readdir(fdd) : NULL; fe && rc == 0; fe = readdir(fdd)) {
		if (fe->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/%ld/fd/%s", pid,
			 fe->d_name);
		below = link_below(link, real, len, target);
		if (below > 0)
			rc = snap_seterr(SNAP_EEXIST,
					 "process %ld has %s open: stop "
					 "ZooKeeper first",
					 pid, target);
		else if (below < 0 && !u->n++) {
			u->pid = pid;
			u->err = errno;
		}
	}
	if (fdd)
		closedir(fdd);
	return rc;
}

/*
 * Any process with its working directory or an open file below dir.  Not
 * seeing a process is no proof that it does not use dir, so the check
 * fails closed (SNAP_EACCES): when /proc is not procfs, when it hides
 * processes (hidepid: pid 1, in every pid namespace, is missing), and for
 * processes whose entries cannot be read (other users', as non-root).
 * force takes the risk for the processes not seen, with a warning; a
 * process seen using dir is refused all the same.
 */
static int proc_uses(const struct helper_opts *o, const char *dir)
{
	char real[PATH_MAX];
	struct unseen u = {0};
	const char *why = NULL;
	struct statfs sf;
	struct dirent *p;
	DIR *procd = NULL;
	size_t len;
	int rc = 0;

	if (!realpath(dir, real)) {
		if (errno == ENOENT)
			return 0; /* no data directory yet: nobody uses it */
		return snap_syserr(errno, "%s", dir);
	}
	len = strlen(real);
	/* What can be seen is checked even when not everything can: a
	 * process seen using dir is the better message. */
	if (statfs("/proc", &sf) || sf.f_type != PROC_SUPER_MAGIC) {
		why = "/proc is not mounted";
	} else {
		if (access("/proc/1", F_OK))
			why = "/proc hides other users' processes (hidepid)";
		procd = opendir("/proc");
		if (!procd)
			why = "/proc cannot be read";
	}
	while (procd && rc == 0 && (p = readdir(procd))) {
		long pid = strtol(p->d_name, NULL, 10);

		if (pid > 0 && pid != getpid())
			rc = pid_uses(pid, real, len, &u);
	}
	if (procd)
		closedir(procd);
	if (rc)
		return rc;
	if (why && !o->force)
		return snap_seterr(SNAP_EACCES,
				   "cannot tell whether a process uses %s: %s "
				   "(stop ZooKeeper, then --force skips this "
				   "check)",
				   dir, why);
	if (u.n && !o->force)
		return snap_seterr(SNAP_EACCES,
				   "cannot tell whether a process uses %s: %zu "
				   "process(es) cannot be inspected (pid %ld: "
				   "%s): run as root with CAP_SYS_PTRACE, or "
				   "stop ZooKeeper and add --force",
				   dir, u.n, u.pid, strerror(u.err));
	if (why)
		say(o, "warning: %s: --force assumes no process uses %s", why,
		    dir);
	else if (u.n)
		say(o, "warning: %zu process(es) cannot be inspected: --force "
		       "assumes none uses %s",
		    u.n, dir);
	return 0;
}

/* A server accepting connections at HOST:PORT means ZooKeeper runs;
 * only a refused connection proves it does not. */
static int zk_probe(const char *addr)
{
	char host[256], *colon;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL, *a;
	int rc = 0, gai;

	snprintf(host, sizeof(host), "%s", addr);
	colon = strrchr(host, ':');
	if (!colon || !colon[1])
		return snap_seterr(SNAP_EINVAL, "--zk-address wants HOST:PORT, "
						"not '%s'",
				   addr);
	*colon = 0;
	if (host[0] == '[' && colon[-1] == ']') {
		colon[-1] = 0;
		memmove(host, host + 1, strlen(host));
	}
	gai = getaddrinfo(host, colon + 1, &hints, &ai);
	if (gai)
		return snap_seterr(SNAP_ENET, "--zk-address %s: %s", addr,
				   gai_strerror(gai));
	for (a = ai; a && rc == 0; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
						      SOCK_CLOEXEC,
				a->ai_protocol);
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t el = sizeof(err);

		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			err = 0;
		else if (errno != EINPROGRESS)
			err = errno;
		else if (poll(&pfd, 1, PROBE_TIMEOUT_MS) != 1)
			err = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el))
			err = errno;
		close(fd);
		if (err == 0)
			rc = snap_seterr(SNAP_EEXIST,
					 "a ZooKeeper server answers at %s: "
					 "stop it first",
					 addr);
		else if (err != ECONNREFUSED)
			rc = snap_seterr(SNAP_ENET,
					 "cannot tell whether ZooKeeper runs "
					 "at %s: %s",
					 addr, strerror(err));
	}
	freeaddrinfo(ai);
	return rc;
}

static int zk_running(const struct helper_opts *o, const char *datadir)
{
	char path[PATH_MAX];

	if (o->pid_file)
		SNAP_TRY(pid_file_alive(o->pid_file));
	SNAP_TRY(pathf(path, "%s/zookeeper_server.pid", datadir));
	SNAP_TRY(pid_file_alive(path));
	SNAP_TRY(pathf(path, "%s/zk.pid", datadir));
	SNAP_TRY(pid_file_alive(path));
	/* The server answering is the clearer message when the processes
	 * cannot all be seen. */
	if (o->zk_address)
		SNAP_TRY(zk_probe(o->zk_address));
	return proc_uses(o, datadir);
}

static int copy_file(const char *from, const char *to)
{
	uint8_t buf[4096];
	struct stat st;
	int in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1;
	ssize_t n;
	int rc = 0;

	if (in < 0 || fstat(in, &st))
		return snap_syserr(errno, "%s", from);
	unlink(to);
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   st.st_mode & 07777);
	if (out < 0) {
		rc = snap_syserr(errno, "%s", to);
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n) {
			rc = snap_syserr(errno ? errno : EIO, "writing %s", to);
			goto out;
		}
	if (n < 0 || fsync(out))
		rc = snap_syserr(errno, "copying %s", from);
	else if (geteuid() == 0 && fchown(out, st.st_uid, st.st_gid))
		rc = snap_syserr(errno, "%s: chown", to);
out:
	close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* myid identifies this node: keep the current one, drop the backup's. */
static int fix_myid(const struct helper_opts *o, const char *live,
		    const char *stage, const char *rel)
{
	char cur[PATH_MAX], mine[PATH_MAX];
	struct stat st;

	if (o->restore_myid)
		return 0;
	SNAP_TRY(pathf(cur, "%s/%s", live, rel));
	SNAP_TRY(pathf(mine, "%s/%s", stage, rel));
	if (lstat(cur, &st) == 0 && S_ISREG(st.st_mode)) {
		say(o, "keeping this node's %s", cur);
		return copy_file(cur, mine);
	}
	if (lstat(mine, &st) == 0) {
		if (unlink(mine))
			return snap_syserr(errno, "%s", mine);
		say(o, "not restoring the backup's myid: this node has none "
		       "(--restore-myid restores it)");
	}
	return 0;
}

int restore_zookeeper(struct repo *r, const char *series, uint32_t num,
		      const struct helper_opts *o, struct helper_result *res)
{
	char parent[PATH_MAX], base[NAME_MAX + 1], stage[PATH_MAX];
	char live[PATH_MAX], inner[PATH_MAX];
	const char *myid;
	const struct mgroup *g = NULL;
	struct restore_result vr;
	struct zk_found f;
	struct manifest m;
	double t0 = mono_sec();
	int rc;

	memset(res, 0, sizeof(*res));
	SNAP_TRY(repo_load_manifest(r, series, num, &m));
	for (size_t i = 0; i < m.ngroups; i++)
		if (o->ro.group ? !strcmp(o->ro.group, m.groups[i].name)
				: m.ngroups == 1)
			g = &m.groups[i];
	if (!g) {
		rc = o->ro.group ? snap_seterr(SNAP_ENOENT,
					       "backup %s/%u has no group '%s'",
					       series, num, o->ro.group)
				 : snap_seterr(SNAP_EINVAL,
					       "backup %s/%u has %zu groups: "
					       "choose one with --group",
					       series, num, m.ngroups);
		goto out;
	}
	rc = zk_layout(r, series, g, &f);
	if (rc)
		goto out;
	say(o, "group %s: ZooKeeper data directory%s, %zu snapshot(s), %zu "
	       "log(s)",
	    g->name, f.dcos ? " (DC/OS layout)" : "", f.snapshots, f.logs);
	if (!f.snapshots)
		say(o, "warning: no snapshot in the backup; ZooKeeper refuses "
		       "to start from logs alone");
	rc = zk_running(o, o->zookeeper);
	if (rc)
		goto out;
	myid = f.dcos ? "zookeeper/snapshot/myid" : "myid";
	/* DC/OS replaces DATADIR/zookeeper; a plain data directory is
	 * replaced whole. */
	if (f.dcos) {
		rc = pathf(parent, "%s", o->zookeeper);
		if (rc)
			goto out;
		strcpy(base, "zookeeper");
		if (mkdir(parent, 0755) && errno != EEXIST) {
			rc = snap_syserr(errno, "%s", parent);
			goto out;
		}
	} else {
		rc = split_path(o->zookeeper, parent, base);
		if (rc)
			goto out;
	}
	rc = pathf(live, "%s/%s", parent, base);
	rc = rc ? rc : make_stage(o, parent, base, series, num, stage);
	if (rc)
		goto out;
	/* A resumed stage may hold this node's myid from the last attempt:
	 * the backup's (or none) must be there for the verification. */
	rc = pathf(inner, "%s/%s", stage, myid);
	if (rc)
		goto out;
	if (unlink(inner) && errno != ENOENT) {
		rc = snap_syserr(errno, "%s", inner);
		goto out;
	}
	say(o, "restoring %s/%u group %s into %s", series, num, g->name,
	    stage);
	rc = stage_group(r, series, num, o, g->name, stage, res);
	if (rc == 0) {
		say(o, "verifying %s against the backup", stage);
		rc = restore_verify(r, series, num, g->name, stage, &vr);
	}
	/* myid paths are relative to DATADIR in both layouts. */
	if (rc == 0)
		rc = fix_myid(o, f.dcos ? parent : live, stage, myid);
	/* The restore took a while: nobody may have started ZooKeeper. */
	if (rc == 0)
		rc = zk_running(o, o->zookeeper);
	if (rc) {
		after_failure(o, rc, stage);
		goto out;
	}
	if (f.dcos) {
		/* The stage is the group root; its zookeeper/ goes in. */
		rc = pathf(inner, "%s/zookeeper", stage);
		rc = rc ? rc : swap_in(o, inner, live, res->aside);
		rc = rc ? rc : fsync_dir(parent);
		if (rc == 0)
			rc = rm_tree(stage);
	} else {
		rc = swap_in(o, stage, live, res->aside);
		rc = rc ? rc : fsync_dir(parent);
	}
	if (rc == 0)
		say(o, "%s restored from %s/%u", live, series, num);
	res->sum.elapsed = mono_sec() - t0;
out:
	manifest_free(&m);
	return rc;
}
