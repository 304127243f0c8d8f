/* overlay_attr.c - attributes and extended attributes of a label's tree; see overlay.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "acl.h"
#include "err.h"
#include "overlay_int.h"


/* ---- attributes and xattrs -------------------------------------------- */

/* Moves the base's attributes of a copied-up inode into the stage. */
static int onode_own_xattrs(struct ovl *o, struct onode *n)
{
	const struct tent *e;
	struct centry *pin;
	int rc;

	if (n->si.own_xattrs)
		return 0;
	rc = onode_base_entry(o, n, &pin, &e);
	for (size_t i = 0; e && rc == 0 && i < e->nxattrs; i++)
		rc = stage_xattr_set(o->st, n->ino, e->xattrs[i].name,
				     e->xattrs[i].val, e->xattrs[i].len);
	cache_release(o->o.c, pin);
	if (rc == 0)
		n->si.own_xattrs = 1;
	return rc;
}

/* Keeps a stored access ACL in step with a new mode, as the kernel does
 * for filesystems that hold ACLs (unless the kernel does it for us). */
static int onode_chmod_acl(struct ovl *o, struct onode *n)
{
	struct buf v = BUF_INIT;
	int rc;

	if (o->o.kernel_acl)
		return 0;
	rc = stage_xattr_get(o->st, n->ino, ACL_XATTR_ACCESS, &v);
	if (rc == SNAP_ENOENT)
		return 0;
	if (rc == 0 && acl_from_mode(v.p, v.len, n->si.mode) == 0)
		rc = stage_xattr_set(o->st, n->ino, ACL_XATTR_ACCESS, v.p,
				     v.len);
	buf_free(&v);
	return rc;
}

/* Would sa change anything kept durably?  ctime is not: it serves only
 * to tell changed files from unchanged ones in walks of a source, so a
 * setattr that sets nothing else (chmod to the mode a file has, and the
 * ctime the kernel's writeback sends after writes and renames, several
 * per file that rsync copies) needs no transaction. */
static int setattr_changes(struct ovl *o, struct onode *n,
			   const struct vfs_setattr *sa)
{
	struct vfs_attr a;

	onode_attr(o, n, &a);
	return ((sa->valid & VFS_SET_SIZE) && sa->size != a.size) ||
	       ((sa->valid & VFS_SET_MODE) &&
		(sa->mode & 07777) != (a.mode & 07777)) ||
	       ((sa->valid & VFS_SET_UID) && sa->uid != a.uid) ||
	       ((sa->valid & VFS_SET_GID) && sa->gid != a.gid) ||
	       ((sa->valid & VFS_SET_MTIME) &&
		((sa->valid & VFS_SET_MTIME_NOW) || sa->mtime_ns != a.mtime_ns));
}

/* sa, with the mode a kill of setuid and setgid leaves (VFS_SET_KILL_SUIDGID,
 * or a chown of anything but a directory) in *k.  The kernel leaves
 * the kill to us (FUSE_HANDLE_KILLPRIV): a suid file changed by someone
 * else, or given away, must not go into the backup still suid. */
static const struct vfs_setattr *kill_suidgid(struct ovl *o, struct onode *n,
					      const struct vfs_setattr *sa,
					      struct vfs_setattr *k)
{
	struct vfs_attr a;
	uint32_t m;

	if ((sa->valid & VFS_SET_MODE) ||
	    !((sa->valid & VFS_SET_KILL_SUIDGID) ||
	      ((sa->valid & (VFS_SET_UID | VFS_SET_GID)) && !onode_is_dir(n))))
		return sa;
	onode_attr(o, n, &a);
	m = a.mode & 07777 & ~(uint32_t)S_ISUID;
	if (a.mode & S_IXGRP)
		m &= ~(uint32_t)S_ISGID;
	if (m == (a.mode & 07777))
		return sa;
	*k = *sa;
	k->valid |= VFS_SET_MODE;
	k->mode = m;
	return k;
}

int ovl_setattr(struct ovl *o, uint64_t ino, const struct vfs_setattr *sa,
		struct ovl_file *f, struct vfs_attr *a)
{
	struct vfs_setattr k;
	struct onode *n;
	int64_t t = now_ns();
	int rc;

	(void)f;
	ovl_lock(o);
	rc = ovl_gate_wait(o);
	rc = rc ? rc : onode_get(o, ino, &n);
	if (rc == 0)
		sa = kill_suidgid(o, n, sa, &k);
	if (rc == 0 && (sa->valid & VFS_SET_SIZE) && !onode_is_dir(n) &&
	    (n->staged ? n->si.type : n->type) != ET_REG)
		rc = snap_seterr(SNAP_EINVAL, "not a regular file");
	if (rc == 0 && (sa->valid & VFS_SET_SIZE) && onode_is_dir(n))
		rc = snap_seterr(SNAP_EISDIR, "is a directory");
	if (rc == 0 && n->unlinked && (!n->opens || !n->staged)) {
		/* Removed, and not staged for an open handle: nothing may
		 * stage it again (the kernel's writeback sends a removed
		 * file's ctime). */
		onode_attr(o, n, a);
		goto out;
	}
	if (rc == 0 && !setattr_changes(o, n, sa)) {
		/* Kept in memory: the row takes it with its next write. */
		if (n->staged)
			n->si.ctime_ns = (sa->valid & VFS_SET_CTIME) ? sa->ctime_ns
								    : t;
		onode_attr(o, n, a);
		goto out;
	}
	rc = rc ? rc : stage_begin(o->st);
	if (rc)
		goto out;
	rc = onode_copy_up(o, n);
	if (rc == 0 && (sa->valid & VFS_SET_SIZE)) {
		rc = onode_materialize(o, n, sa->size == 0);
		rc = rc ? rc : ostream_change(o, n, sa->size, UINT64_MAX);
		if (rc == 0) {
			int fd;

			rc = stage_data_open(o->st, n->ino, O_RDWR, &fd);
			if (rc == 0) {
				o->dchanges++;
				if (ftruncate(fd, (off_t)sa->size))
					rc = snap_syserr(errno, "truncating");
				close(fd);
			}
		}
		if (rc == 0) {
			n->si.size = sa->size;
			n->si.mtime_ns = t;
			if (n->si.wstate == WS_CLEAN)
				n->si.wstate = WS_UNSYNCED;
		}
	}
	if (rc == 0 && (sa->valid & VFS_SET_MODE)) {
		n->si.mode = (n->si.mode & S_IFMT) | (sa->mode & 07777);
		if (n->si.own_xattrs)
			rc = onode_chmod_acl(o, n);
	}
	if (rc == 0 && (sa->valid & VFS_SET_UID))
		n->si.uid = sa->uid;
	if (rc == 0 && (sa->valid & VFS_SET_GID))
		n->si.gid = sa->gid;
	if (rc == 0 && (sa->valid & VFS_SET_MTIME))
		n->si.mtime_ns = (sa->valid & VFS_SET_MTIME_NOW) ? t
								   : sa->mtime_ns;
	if (rc == 0) {
		n->si.ctime_ns = (sa->valid & VFS_SET_CTIME) ? sa->ctime_ns : t;
		rc = onode_put(o, n);
	}
	rc = stage_end(o->st, rc);
	if (rc == 0)
		onode_attr(o, n, a);
out:
	ovl_unlock(o);
	return rc;
}

int ovl_getxattr(struct ovl *o, uint64_t ino, const char *name,
		 struct buf *out)
{
	struct onode *n;
	struct centry *pin = NULL;
	const struct tent *e;
	int rc;

	ovl_lock(o);
	rc = onode_get(o, ino, &n);
	if (rc == 0 && n->staged && n->si.own_xattrs) {
		rc = stage_xattr_get(o->st, n->ino, name, out);
	} else if (rc == 0) {
		rc = onode_base_entry(o, n, &pin, &e);
		if (rc == 0) {
			rc = SNAP_ENOENT;
			for (size_t i = 0; e && i < e->nxattrs; i++)
				if (strcmp(e->xattrs[i].name, name) == 0) {
					out->len = 0;
					rc = buf_add(out, e->xattrs[i].val,
						     e->xattrs[i].len);
					break;
				}
		}
		cache_release(o->o.c, pin);
	}
	ovl_unlock(o);
	if (rc == SNAP_ENOENT)
		rc = snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	return rc;
}

static int list_one(void *ctx, const char *name, const void *val, size_t len)
{
	(void)val, (void)len;
	return buf_add(ctx, name, strlen(name) + 1);
}

int ovl_listxattr(struct ovl *o, uint64_t ino, struct buf *out)
{
	struct onode *n;
	struct centry *pin = NULL;
	const struct tent *e;
	int rc;

	out->len = 0;
	ovl_lock(o);
	rc = onode_get(o, ino, &n);
	if (rc == 0 && n->staged && n->si.own_xattrs) {
		rc = stage_xattr_each(o->st, n->ino, list_one, out);
	} else if (rc == 0) {
		rc = onode_base_entry(o, n, &pin, &e);
		for (size_t i = 0; rc == 0 && e && i < e->nxattrs; i++)
			rc = buf_add(out, e->xattrs[i].name,
				     strlen(e->xattrs[i].name) + 1);
		cache_release(o->o.c, pin);
	}
	ovl_unlock(o);
	return rc;
}

/* control/<label> itself is not part of any backup. */
static int xattr_storable(struct ovl *o, const struct onode *n)
{
	if (n->ino == o->o.root_ino)
		return snap_seterr(SNAP_EUNSUPP, "control/%s keeps no "
				   "attributes (its groups do)",
				   o->label);
	return 0;
}

/* Ends an attribute change: ctime stamped and n stored when rc is 0, the
 * stage transaction ended either way. */
static int xattr_done(struct ovl *o, struct onode *n, int rc)
{
	if (rc == 0) {
		n->si.ctime_ns = now_ns();
		rc = onode_put(o, n);
	}
	return stage_end(o->st, rc);
}

int ovl_setxattr(struct ovl *o, uint64_t ino, const char *name,
		 const void *val, size_t len, int flags)
{
	struct onode *n;
	struct buf old = BUF_INIT;
	uint32_t perm = 0;
	int rc, had = SNAP_ENOENT, acl = 0, minimal = 0;

	if (strlen(name) > 255 || len > 65536)
		return snap_seterr(SNAP_ERANGE, "attribute too large");
	/* An access ACL sets the mode's permission bits, and one that says
	 * no more than the mode is not kept (as Linux filesystems do): tar
	 * and cp set one on every directory, the group directories too. */
	if (!o->o.kernel_acl && strcmp(name, ACL_XATTR_ACCESS) == 0 &&
	    acl_to_mode(val, len, &perm) == 0) {
		acl = 1;
		minimal = acl_is_minimal(val, len) == 1;
	}
	ovl_lock(o);
	rc = ovl_gate_wait(o);
	rc = rc ? rc : onode_get(o, ino, &n);
	rc = rc || minimal ? rc : xattr_storable(o, n);
	rc = rc ? rc : stage_begin(o->st);
	if (rc)
		goto out;
	rc = onode_copy_up(o, n);
	rc = rc || (minimal && xattr_storable(o, n)) ? rc : onode_own_xattrs(o, n);
	if (rc == 0 && n->si.own_xattrs) {
		had = stage_xattr_get(o->st, n->ino, name, &old);
		if (had != 0 && had != SNAP_ENOENT)
			rc = had;
		else if ((flags & XATTR_CREATE) && had == 0)
			rc = snap_seterr(SNAP_EEXIST, "%s exists", name);
		else if ((flags & XATTR_REPLACE) && had == SNAP_ENOENT)
			rc = snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	}
	if (rc == 0 && acl)
		n->si.mode = (n->si.mode & ~0777u) | perm;
	if (rc == 0 && minimal)
		rc = had == 0 ? stage_xattr_del(o->st, n->ino, name) : 0;
	else
		rc = rc ? rc : stage_xattr_set(o->st, n->ino, name, val, len);
	rc = xattr_done(o, n, rc);
out:
	buf_free(&old);
	ovl_unlock(o);
	return rc;
}

int ovl_removexattr(struct ovl *o, uint64_t ino, const char *name)
{
	struct onode *n;
	struct buf old = BUF_INIT;
	int rc;

	ovl_lock(o);
	rc = ovl_gate_wait(o);
	rc = rc ? rc : onode_get(o, ino, &n);
	if (rc == 0 && xattr_storable(o, n)) {
		rc = snap_seterr(SNAP_ENODATA, "no attribute %s", name);
		goto out;
	}
	rc = rc ? rc : stage_begin(o->st);
	if (rc)
		goto out;
	rc = onode_copy_up(o, n);
	rc = rc ? rc : onode_own_xattrs(o, n);
	if (rc == 0) {
		rc = stage_xattr_get(o->st, n->ino, name, &old);
		if (rc == SNAP_ENOENT)
			rc = snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	}
	rc = rc ? rc : stage_xattr_del(o->st, n->ino, name);
	rc = xattr_done(o, n, rc);
out:
	buf_free(&old);
	ovl_unlock(o);
	return rc;
}
