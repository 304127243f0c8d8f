/* overlay_ns.c - changes to a label's namespace; see overlay.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "overlay_int.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#endif

/* ---- helpers ---------------------------------------------------------- */

static void onode_touch_dir(struct onode *d)
{
	d->si.mtime_ns = d->si.ctime_ns = now_ns();
}

/* Names at the label level are groups: directories with a group name. */
static int group_level_ok(struct ovl *o, const struct onode *d,
			  const char *name, int is_dir)
{
	if (d->ino != o->o.root_ino)
		return 0;
	if (!is_dir)
		return snap_seterr(SNAP_EPERM,
				   "control/%s/%s: only directories (groups) "
				   "can be made at the label level",
				   o->label, name);
	return group_check(name);
}

static int name_check(const char *name)
{
	if (strlen(name) > 255)
		return snap_seterr(SNAP_ENAMETOOLONG, "name too long");
	return 0;
}

/* The directory d must not have name yet. */
static int absent(struct ovl *o, const struct onode *d, const char *name)
{
	struct onode t;
	int rc = onode_resolve(o, d, name, &t);

	if (rc == 0) {
		onode_clear(&t);
		return snap_seterr(SNAP_EEXIST, "%s exists", name);
	}
	return rc == SNAP_ENOENT ? 0 : rc;
}

/* A new staged inode named name in d. */
static int add_new(struct ovl *o, const struct ovl_ctx *c, struct onode *d,
		   const char *name, uint32_t mode, const struct ovl_new *x,
		   struct onode **out)
{
	struct onode t;
	uint8_t type = ent_type(mode);
	uint32_t gid = c->gid;
	int rc, fd = -1;

	SNAP_TRY(name_check(name));
	SNAP_TRY(group_level_ok(o, d, name, type == ET_DIR));
	SNAP_TRY(absent(o, d, name));
	SNAP_TRY(onode_copy_up(o, d));
	/* A setgid directory hands on its group, and to directories its
	 * setgid bit, as Linux filesystems do. */
	if (d->si.mode & S_ISGID) {
		gid = d->si.gid;
		if (type == ET_DIR)
			mode |= S_ISGID;
	}
	memset(&t, 0, sizeof(t));
	SNAP_TRY(ovl_new_ino(o, &t.ino));
	t.staged = 1;
	t.type = type;
	t.parent = d->ino;
	t.group = d->group ? d->group : t.ino;
	t.gen = o->gen;
	t.si.ino = t.ino;
	t.si.type = type;
	t.si.mode = mode;
	t.si.uid = c->uid;
	t.si.gid = gid;
	t.si.mtime_ns = t.si.ctime_ns = now_ns();
	t.si.nlink = 1;
	t.si.rdev_major = x->rmajor;
	t.si.rdev_minor = x->rminor;
	if (x->target) {
		t.si.target = strdup(x->target);
		t.si.size = strlen(x->target);
	}
	t.name = strdup(name);
	if (!t.name || (x->target && !t.si.target)) {
		onode_clear(&t);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	/* A file made open counts as written until it is closed; one made
	 * by mknod is complete but not yet on disk. */
	rc = type == ET_REG ? stage_data_open(o->st, t.ino,
					      O_RDWR | O_CREAT | O_TRUNC, &fd)
			    : 0;
	if (rc == 0 && type == ET_REG) {
		t.si.data = 1;
		t.si.wstate = x->fd ? WS_WRITING : WS_UNSYNCED;
		/* Open: if the daemon dies, recovery lists it by this row. */
		if (x->fd)
			stage_durable(o->st);
	}
	rc = rc ? rc : stage_inode_put(o->st, &t.si);
	rc = rc ? rc : stage_dirent_put(o->st, d->ino, name, t.ino);
	onode_touch_dir(d);
	rc = rc ? rc : onode_put(o, d);
	if (rc == 0 && x->fd)
		*x->fd = fd;
	else if (fd >= 0)
		close(fd); /* on failure the data file is an orphan, reaped */
	if (rc) {
		onode_clear(&t);
		return rc;
	}
	*out = onode_adopt(o, &t, 1);
	return *out ? 0 : SNAP_ENOMEM;
}

int ovl_make(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	     const char *name, uint32_t mode, const struct ovl_new *x,
	     struct onode **out)
{
	struct onode *d;
	int rc;

	*out = NULL;
	rc = ovl_gate_wait(o);
	rc = rc ? rc : onode_get(o, dir, &d);
	rc = rc ? rc : stage_begin(o->st);
	if (rc)
		return rc;
	rc = add_new(o, c, d, name, mode, x, out);
	rc = stage_end(o->st, rc);
	if (rc && x->fd && *x->fd >= 0) {
		close(*x->fd);
		*x->fd = -1;
	}
	return rc;
}

/* Takes name out of directory d (which is staged): a whiteout when the
 * base has the name, else the staged name goes. */
static int drop_name(struct ovl *o, struct onode *d, const char *name)
{
	const struct tree *tr;
	struct centry *pin;
	struct ref dref;
	uint8_t dkind;
	int rc, inbase;

	ovl_dir_base(d, &dkind, &dref);
	SNAP_TRY(ovl_base_listing(o, dkind, &dref, &pin, &tr));
	inbase = tree_find(tr, name) != NULL;
	cache_release(o->o.c, pin);
	rc = inbase ? stage_dirent_put(o->st, d->ino, name, 0)
		    : stage_dirent_del(o->st, d->ino, name);
	return rc;
}

/* The inode n lost a name: when it has none left and nobody has it open,
 * its row and data go. */
static int onode_lost_name(struct ovl *o, struct onode *n)
{
	if (onode_is_dir(n)) {
		n->unlinked = 1;
		return n->staged ? stage_inode_del(o->st, n->ino) : 0;
	}
	if (!n->staged) {
		/* A base name of a hardlink: others remain. */
		n->unlinked = !n->hl;
		return 0;
	}
	if (n->si.nlink > 0)
		n->si.nlink--;
	n->si.ctime_ns = now_ns();
	if (n->si.nlink > 0 || n->si.bhl)
		return onode_put(o, n);
	n->unlinked = 1;
	if (n->opens)
		return onode_put(o, n); /* reaped at release or recovery */
	SNAP_TRY(stage_data_unlink(o->st, n->ino));
	return stage_inode_del(o->st, n->ino);
}

/* ---- namespace changes ------------------------------------------------ */

/* Makes the entry and answers it like a lookup. */
static int make_answer(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
		       const char *name, uint32_t mode,
		       const struct ovl_new *x, struct vfs_attr *a)
{
	struct onode *n;
	int rc;

	ovl_lock(o);
	rc = ovl_make(o, c, dir, name, mode, x, &n);
	if (rc == 0)
		onode_attr(o, n, a);
	ovl_unlock(o);
	return rc;
}

int ovl_mknod(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	      const char *name, uint32_t mode, uint32_t rmajor,
	      uint32_t rminor, struct vfs_attr *a)
{
	uint8_t type = ent_type(mode); /* 0: a socket, never stored */
	struct ovl_new x = {.rmajor = rmajor, .rminor = rminor};

	if (!type || type == ET_DIR || type == ET_LNK)
		return snap_seterr(SNAP_EPERM, "%s: this kind of file "
				   "cannot be stored", name);
	return make_answer(o, c, dir, name, mode, &x, a);
}

int ovl_mkdir(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	      const char *name, uint32_t mode, struct vfs_attr *a)
{
	struct ovl_new x = {0};

	return make_answer(o, c, dir, name, S_IFDIR | (mode & 07777), &x, a);
}

int ovl_symlink(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
		const char *name, const char *target, struct vfs_attr *a)
{
	struct ovl_new x = {.target = target};

	if (!*target || strlen(target) > 4095)
		return snap_seterr(SNAP_ENAMETOOLONG, "bad symlink target");
	return make_answer(o, c, dir, name, S_IFLNK | 0777, &x, a);
}

int ovl_link(struct ovl *o, uint64_t ino, uint64_t dir, const char *name,
	     struct vfs_attr *a)
{
	struct onode *n, *d;
	int rc;

	ovl_lock(o);
	rc = ovl_gate_wait(o);
	rc = rc ? rc : onode_get(o, ino, &n);
	rc = rc ? rc : onode_get(o, dir, &d);
	if (rc == 0 && onode_is_dir(n))
		rc = snap_seterr(SNAP_EPERM, "hardlinks to directories");
	/* Hardlink ids are per group: a link across groups cannot be
	 * stored as one. */
	if (rc == 0 && d->group != n->group)
		rc = snap_seterr(SNAP_EXDEV, "%s: hardlinks cannot cross "
				 "groups", name);
	rc = rc ? rc : name_check(name);
	rc = rc ? rc : group_level_ok(o, d, name, 0);
	rc = rc ? rc : stage_begin(o->st);
	if (rc == 0) {
		rc = absent(o, d, name);
		rc = rc ? rc : onode_copy_up(o, n);
		rc = rc ? rc : onode_copy_up(o, d);
		rc = rc ? rc : stage_dirent_put(o->st, d->ino, name, n->ino);
		if (rc == 0) {
			n->si.nlink = (n->si.nlink ? n->si.nlink : 1) + 1;
			n->si.ctime_ns = now_ns();
			onode_touch_dir(d);
			rc = onode_put(o, n);
			rc = rc ? rc : onode_put(o, d);
		}
		rc = stage_end(o->st, rc);
		if (rc == 0) {
			n->nlookup++;
			onode_attr(o, n, a);
		}
	}
	ovl_unlock(o);
	return rc;
}

/* Removes name from d: a file (dir 0) or an empty directory (dir 1). */
static int remove_name(struct ovl *o, uint64_t dir, const char *name,
		       int want_dir)
{
	struct onode *d, t, *n;
	int rc, isdir;

	ovl_lock(o);
	rc = ovl_gate_wait(o);
	rc = rc ? rc : onode_get(o, dir, &d);
	rc = rc ? rc : onode_resolve(o, d, name, &t);
	if (rc) {
		ovl_unlock(o);
		return rc;
	}
	n = onode_adopt(o, &t, 0);
	if (!n) {
		ovl_unlock(o);
		return SNAP_ENOMEM;
	}
	isdir = n->staged ? n->si.type == ET_DIR : n->type == ET_DIR;
	if (want_dir && !isdir)
		rc = snap_seterr(SNAP_ENOTDIR, "%s: not a directory", name);
	else if (!want_dir && isdir)
		rc = snap_seterr(SNAP_EISDIR, "%s: is a directory", name);
	if (rc == 0 && isdir) {
		rc = onode_dir_empty(o, n);
		rc = rc < 0 ? rc
		     : rc  ? 0
			   : snap_seterr(SNAP_ENOTEMPTY, "%s: not empty",
					 name);
	}
	rc = rc ? rc : stage_begin(o->st);
	if (rc == 0) {
		rc = onode_copy_up(o, d);
		rc = rc ? rc : drop_name(o, d, name);
		if (rc == 0 && isdir && n->staged)
			rc = stage_dirent_clear(o->st, n->ino);
		rc = rc ? rc : onode_lost_name(o, n);
		if (rc == 0) {
			onode_touch_dir(d);
			rc = onode_put(o, d);
		}
		rc = stage_end(o->st, rc);
	}
	if (n->nlookup == 0 && n->opens == 0)
		onode_free(o, n);
	ovl_unlock(o);
	return rc;
}

int ovl_unlink(struct ovl *o, uint64_t dir, const char *name)
{
	return remove_name(o, dir, name, 0);
}

int ovl_rmdir(struct ovl *o, uint64_t dir, const char *name)
{
	return remove_name(o, dir, name, 1);
}

int ovl_rename(struct ovl *o, uint64_t dir, const char *name, uint64_t ndir,
	       const char *nname, unsigned flags)
{
	struct onode *d, *nd, *s = NULL, *x = NULL, t;
	int rc, sdir;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return snap_seterr(SNAP_EINVAL, "rename flags not supported");
	ovl_lock(o);
	rc = ovl_gate_wait(o);
	rc = rc ? rc : onode_get(o, dir, &d);
	rc = rc ? rc : onode_get(o, ndir, &nd);
	rc = rc ? rc : name_check(nname);
	if (rc == 0 && (rc = onode_resolve(o, d, name, &t)) == 0 &&
	    !(s = onode_adopt(o, &t, 0)))
		rc = SNAP_ENOMEM;
	if (rc)
		goto out;
	sdir = onode_is_dir(s);
	rc = onode_resolve(o, nd, nname, &t);
	if (rc == 0) {
		x = onode_adopt(o, &t, 0);
		if (!x) {
			rc = SNAP_ENOMEM;
			goto out;
		}
	} else if (rc != SNAP_ENOENT) {
		goto out;
	}
	rc = 0;
	if (x == s)
		goto out; /* the same file: nothing to do */
	if (x && (flags & RENAME_NOREPLACE)) {
		rc = snap_seterr(SNAP_EEXIST, "%s exists", nname);
		goto out;
	}
	if (!x && (flags & RENAME_EXCHANGE)) {
		rc = snap_seterr(SNAP_ENOENT, "%s does not exist", nname);
		goto out;
	}
	rc = group_level_ok(o, nd, nname, sdir);
	if (rc == 0 && x && (flags & RENAME_EXCHANGE))
		rc = group_level_ok(o, d, name, onode_is_dir(x));
	/* Hardlink ids are per group, and a directory from the base takes
	 * its hardlinks along unread: neither may change group. */
	if (rc == 0 && nd->group != s->group &&
	    (sdir || s->hl || (s->staged && (s->si.bhl || s->si.nlink > 1))))
		rc = snap_seterr(SNAP_EXDEV, "%s: directories and hardlinked "
				 "files cannot move to another group", name);
	if (rc == 0 && x && (flags & RENAME_EXCHANGE) && d->group != x->group &&
	    (onode_is_dir(x) || x->hl ||
	     (x->staged && (x->si.bhl || x->si.nlink > 1))))
		rc = snap_seterr(SNAP_EXDEV, "%s: directories and hardlinked "
				 "files cannot move to another group", nname);
	if (rc)
		goto out;
	if (x && !(flags & RENAME_EXCHANGE)) {
		int xdir = onode_is_dir(x);

		if (sdir && !xdir)
			rc = snap_seterr(SNAP_ENOTDIR, "%s: not a directory",
					 nname);
		else if (!sdir && xdir)
			rc = snap_seterr(SNAP_EISDIR, "%s: is a directory",
					 nname);
		else if (xdir) {
			rc = onode_dir_empty(o, x);
			rc = rc < 0 ? rc
			     : rc  ? 0
				   : snap_seterr(SNAP_ENOTEMPTY,
						 "%s: not empty", nname);
		}
		if (rc)
			goto out;
	}
	rc = stage_begin(o->st);
	if (rc)
		goto out;
	rc = onode_copy_up(o, s);
	rc = rc ? rc : (x ? onode_copy_up(o, x) : 0);
	rc = rc ? rc : onode_copy_up(o, d);
	rc = rc ? rc : onode_copy_up(o, nd);
	if (rc == 0 && x && (flags & RENAME_EXCHANGE)) {
		rc = stage_dirent_put(o->st, d->ino, name, x->ino);
		rc = rc ? rc : stage_dirent_put(o->st, nd->ino, nname, s->ino);
	} else if (rc == 0) {
		if (x && onode_is_dir(x))
			rc = stage_dirent_clear(o->st, x->ino);
		rc = rc ? rc : (x ? onode_lost_name(o, x) : 0);
		rc = rc ? rc : stage_dirent_put(o->st, nd->ino, nname, s->ino);
		rc = rc ? rc : drop_name(o, d, name);
	}
	if (rc == 0) {
		s->si.ctime_ns = now_ns();
		onode_touch_dir(d);
		onode_touch_dir(nd);
		rc = onode_put(o, s);
		rc = rc ? rc : onode_put(o, d);
		rc = rc ? rc : (nd != d ? onode_put(o, nd) : 0);
		if (rc == 0 && x && (flags & RENAME_EXCHANGE)) {
			x->si.ctime_ns = now_ns();
			rc = onode_put(o, x);
		}
	}
	rc = stage_end(o->st, rc);
	if (rc == 0) {
		char *nn = strdup(nname);

		if (nn) {
			free(s->name);
			s->name = nn;
			s->parent = nd->ino;
		}
		if (x && (flags & RENAME_EXCHANGE)) {
			char *xn = strdup(name);

			if (xn) {
				free(x->name);
				x->name = xn;
				x->parent = d->ino;
			}
		}
		if (nd->group != s->group)
			s->group = nd->group;
		if (x && (flags & RENAME_EXCHANGE) && d->group != x->group)
			x->group = d->group;
	}
out:
	if (x && x != s && x->nlookup == 0 && x->opens == 0)
		onode_free(o, x);
	if (s && s->nlookup == 0 && s->opens == 0)
		onode_free(o, s);
	ovl_unlock(o);
	return rc;
}
