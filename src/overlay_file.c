/* overlay_file.c - files of a label's tree; see overlay.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "overlay_int.h"


/* ---- files ------------------------------------------------------------ */

static void ovl_file_label(struct ovl *o, struct onode *n, struct ovl_file *f)
{
	snprintf(f->label, sizeof(f->label), "control/%s: %s", o->label,
		 n->name ? n->name : "?");
}

/* A writer opens: the content is staged and untrusted until closed. */
static int start_writing(struct ovl *o, struct onode *n, int truncate)
{
	int rc = onode_copy_up(o, n);

	if (rc == 0 && (truncate || ostream_fill_ref(o, n->ino)))
		rc = onode_materialize(o, n, truncate);
	if (rc == 0 && truncate)
		rc = ostream_change(o, n, 0, UINT64_MAX);
	if (rc == 0 && truncate && n->si.size) {
		int fd;

		rc = stage_data_open(o->st, n->ino, O_RDWR | O_TRUNC, &fd);
		if (rc == 0)
			close(fd);
		o->dchanges++;
		n->si.size = 0;
		n->si.mtime_ns = n->si.ctime_ns = now_ns();
	}
	if (rc == 0) {
		n->si.wstate = WS_WRITING;
		rc = onode_put(o, n);
	}
	return rc;
}

/* A handle on n; fd, when >= 0, is the staged copy already open (and
 * becomes the handle's). */
static int open_common(struct ovl *o, struct onode *n, int flags, int fd,
		       struct ovl_file **out)
{
	struct ovl_file *f = calloc(1, sizeof(*f));
	int rc = 0, wr = (flags & O_ACCMODE) != O_RDONLY;

	if (!f) {
		if (fd >= 0)
			close(fd);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	f->fd = fd;
	f->ino = n->ino;
	f->wr = wr;
	fread_init(&f->rd);
	ovl_file_label(o, n, f);
	if (f->fd < 0 && n->staged && n->si.data) {
		rc = stage_data_open(o->st, n->ino, wr ? O_RDWR : O_RDONLY,
				     &f->fd);
	} else if (f->fd < 0 && (!n->staged || n->si.has_orig)) {
		rc = onode_base_entry(o, n, &f->te, &f->e);
		if (rc == 0 && (!f->e || f->e->type != ET_REG))
			rc = snap_seterr(SNAP_ECORRUPT, "%s vanished from its "
					 "directory object", f->label);
	}
	if (rc) {
		cache_release(o->o.c, f->te);
		fread_destroy(&f->rd);
		free(f);
		return rc;
	}
	n->opens++;
	if (wr) {
		n->writers++;
		o->writers++;
	}
	*out = f;
	return 0;
}

int ovl_open_file(struct ovl *o, uint64_t ino, int flags,
		  struct ovl_file **out)
{
	struct onode *n;
	int rc, wr = (flags & O_ACCMODE) != O_RDONLY;

	*out = NULL;
	ovl_lock(o);
	rc = wr ? ovl_gate_wait(o) : 0;
	rc = rc ? rc : onode_get(o, ino, &n);
	if (rc == 0 && onode_is_dir(n))
		rc = snap_seterr(SNAP_EISDIR, "is a directory");
	if (rc == 0 && (n->staged ? n->si.type : n->type) != ET_REG)
		rc = snap_seterr(SNAP_EINVAL, "not a regular file");
	if (rc == 0 && wr) {
		rc = stage_begin(o->st);
		rc = rc ? rc : start_writing(o, n, (flags & O_TRUNC) != 0);
		rc = stage_end(o->st, rc);
		/* Rolled back: the node as the stage has it (a fill by
		 * reference left it naming chunks the stage no longer
		 * holds). */
		if (rc)
			o->gen++;
	}
	rc = rc ? rc : open_common(o, n, flags, -1, out);
	ovl_unlock(o);
	return rc;
}

int ovl_create(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	       const char *name, uint32_t mode, int flags, struct vfs_attr *a,
	       struct ovl_file **out)
{
	struct onode *n;
	int rc, fd = -1;
	struct ovl_new x = {.fd = &fd};

	*out = NULL;
	ovl_lock(o);
	rc = ovl_make(o, c, dir, name, S_IFREG | (mode & 07777), &x, &n);
	/* Even opened read-only (O_CREAT|O_RDONLY) the new file counts as
	 * written until it is closed. */
	rc = rc ? rc : open_common(o, n, (flags & ~O_ACCMODE) | O_RDWR, fd, out);
	if (rc == 0)
		onode_attr(o, n, a);
	ovl_unlock(o);
	return rc;
}

int ovl_read(struct ovl *o, struct ovl_file *f, uint64_t off, size_t size,
	     struct vfs_read *rd)
{
	struct onode *n;
	uint64_t fsize = 0, srefs = 0;
	int rc, fd = -1;

	ovl_lock(o);
	rc = onode_get(o, f->ino, &n);
	/* A reader that opened before a writer staged the file reads the
	 * staged copy from then on. */
	if (rc == 0 && n->staged && n->si.data && f->fd < 0) {
		rc = stage_data_open(o->st, n->ino, O_RDONLY, &f->fd);
		if (rc == 0) {
			cache_release(o->o.c, f->te);
			f->te = NULL;
			f->e = NULL;
		}
	}
	if (rc == 0 && n->staged && n->si.data) {
		fsize = n->si.size;
		srefs = n->si.srefs;
	}
	fd = f->fd;
	ovl_unlock(o);
	if (rc)
		return rc;
	if (fd >= 0 && srefs > off) {
		int done;

		SNAP_TRY(ostream_read(o, f->ino, fd, fsize, off, size, rd,
				      &done));
		if (done)
			return 0;
	}
	if (fd >= 0)
		return fread_fd(fd, fsize, off, size, rd);
	if (!f->e) {
		memset(rd, 0, sizeof(*rd));
		rd->fd = -1;
		return 0;
	}
	return fread_range(o->o.c, o->base.series, f->e, &f->rd,
			   o->o.readahead_max, off, size, rd);
}

/* A writer's staged copy: a file filled by reference (ovl_copy_ref) gets
 * its bytes local again at its next change.  o->lock held. */
static int writable_fd(struct ovl *o, struct ovl_file *f, struct onode *n)
{
	int rc;

	if (!f->wr)
		return snap_seterr(SNAP_EINVAL, "file not open for writing");
	if (f->fd >= 0)
		return 0;
	rc = stage_begin(o->st);
	if (rc == 0 && !n->si.data) {
		rc = onode_materialize(o, n, 0);
		if (rc == 0) {
			n->si.wstate = WS_WRITING;
			n->settled = 0;
			rc = onode_put(o, n);
		}
	}
	rc = stage_end(o->st, rc);
	rc = rc ? rc : stage_data_open(o->st, n->ino, O_RDWR, &f->fd);
	if (rc == 0) {
		cache_release(o->o.c, f->te);
		f->te = NULL;
		f->e = NULL;
	}
	return rc;
}

int ovl_write(struct ovl *o, struct ovl_file *f, const void *buf, size_t n,
	      uint64_t off, void *req)
{
	struct onode *nd;
	size_t done = 0;
	int rc = 0, flying;

	ovl_lock(o);
	rc = onode_get(o, f->ino, &nd);
	if (rc == 0 && f->fd < 0 && f->wr)
		(void)ostream_fill_ref(o, f->ino); /* else copied */
	rc = rc ? rc : writable_fd(o, f, nd);
	rc = rc ? rc : stage_reserve(o->st, n);
	if (rc == 0 && o->o.stage_max && off + n > nd->si.size &&
	    o->used + o->written >= o->o.stage_max) {
		o->refused++;
		rc = snap_seterr(SNAP_ENOSPC, "%s: the stage is at stage_max "
				 "(%" PRIu64 " bytes): commit first",
				 f->label, o->o.stage_max);
	}
	rc = rc ? rc : ostream_write_begin(o, nd, off, n);
	flying = rc == 0;
	/* The first write after an fsync or a close makes the content
	 * untrusted again: after a crash it reverts. */
	if (rc == 0 && nd->settled) {
		nd->si.wstate = WS_WRITING;
		rc = onode_put(o, nd);
		rc = rc ? rc : stage_must_commit(o->st);
		nd->settled = rc != 0;
	}
	ovl_unlock(o);
	while (rc == 0 && done < n) {
		ssize_t w = pwrite(f->fd, (const uint8_t *)buf + done,
				   n - done, (off_t)(off + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == ENOSPC) {
			ovl_lock(o);
			stage_reserve_free(o->st);
			stage_tight(o->st);
			ovl_unlock(o);
		}
		if (w < 0)
			rc = snap_syserr(errno, "%s: staging a write",
					 f->label);
		else
			done += (size_t)w;
	}
	ovl_lock(o);
	o->dchanges++;
	if (rc == 0 && onode_get(o, f->ino, &nd) == 0) {
		if (off + n > nd->si.size) {
			o->written += off + n - nd->si.size;
			nd->si.size = off + n;
		}
		if (!o->o.kernel_times)
			nd->si.mtime_ns = nd->si.ctime_ns = now_ns();
	}
	ovl_unlock(o);
	if (flying && ostream_wrote(o, f->ino, f->fd, off, n, rc == 0, req))
		return 1;
	return rc;
}

/* A file whose stream failed says so once (its bytes are still local:
 * nothing is lost, but the store is failing); so do changes a failed
 * batch undid, to the first close or fsync after. */
static int stream_error(struct ovl *o, struct ovl_file *f)
{
	struct onode *n;
	int rc = 0;

	ovl_lock(o);
	n = onode_find(o, f->ino);
	if (n && n->serr) {
		n->serr = 0;
		rc = snap_seterr(SNAP_EIO, "%s: streaming it failed (%s); it "
				 "stays staged for the commit", f->label,
				 o->serrmsg);
	} else if (o->lost_close) {
		o->lost_close = 0;
		rc = ovl_lost_error(o);
	}
	ovl_unlock(o);
	return rc;
}

/* Closed: the content is trusted from now on (good after kill -9, after
 * a reboot once synced), durably.  o->lock held. */
static int mark_closed(struct ovl *o, struct onode *n)
{
	int rc;

	n->si.wstate = WS_UNSYNCED;
	rc = stage_begin(o->st);
	if (rc == 0) {
		stage_durable(o->st);
		rc = stage_end(o->st, onode_put(o, n));
	}
	if (rc)
		n->si.wstate = WS_WRITING;
	return rc;
}

/* The last writer's close: the content is whole (the kernel wrote its
 * cached pages before the flush), so a file whose close(2) returned
 * survives kill -9.  (Release would come later, and no process waits
 * for it.) */
static int closed(struct ovl *o, struct ovl_file *f)
{
	struct onode *n;
	int rc = 0;

	ovl_lock(o);
	n = onode_find(o, f->ino);
	if (n && n->staged && n->writers == 1 &&
	    n->si.wstate == WS_WRITING) {
		rc = mark_closed(o, n);
		n->settled = rc == 0;
	}
	ovl_unlock(o);
	return rc;
}

int ovl_flush_slow(struct ovl *o, struct ovl_file *f)
{
	int slow;

	if (!f->wr)
		return 0;
	ovl_lock(o);
	slow = ostream_has(o, f->ino);
	ovl_unlock(o);
	return slow;
}

/* Sealing here, not at release: close(2) then returns once the file is
 * stored as far as it can be, with any error. */
int ovl_flush(struct ovl *o, struct ovl_file *f)
{
	if (!f->wr)
		return 0;
	if (f->fd >= 0)
		ostream_seal(o, f->ino, f->fd);
	SNAP_TRY(closed(o, f));
	return stream_error(o, f);
}

int ovl_fsync(struct ovl *o, struct ovl_file *f, int datasync)
{
	struct onode *n;
	int rc;

	if (f->fd >= 0 && (datasync ? fdatasync(f->fd) : fsync(f->fd)))
		return snap_syserr(errno, "%s: fsync", f->label);
	SNAP_TRY(stream_error(o, f));
	ovl_lock(o);
	rc = onode_get(o, f->ino, &n);
	if (rc == 0 && n->staged) {
		n->si.wstate = WS_CLEAN;
		rc = onode_put(o, n);
		if (rc == 0 && n->writers)
			n->settled = 1;
	}
	rc = rc ? rc : stage_flush_log(o->st);
	ovl_unlock(o);
	return rc;
}

int ovl_fallocate(struct ovl *o, struct ovl_file *f, int mode, uint64_t off,
		  uint64_t len)
{
	struct onode *n;
	struct stat st;
	int rc = 0;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return snap_seterr(SNAP_EUNSUPP, "fallocate mode %d", mode);
	ovl_lock(o);
	rc = onode_get(o, f->ino, &n);
	rc = rc ? rc : writable_fd(o, f, n);
	/* A punched range changes content: with the lock held through
	 * it, no pass reads the range meanwhile. */
	if (rc == 0 && (mode & FALLOC_FL_PUNCH_HOLE))
		rc = ostream_change(o, n, off, off + len);
	if (rc == 0 && fallocate(f->fd, mode, (off_t)off, (off_t)len))
		rc = snap_syserr(errno, "%s: fallocate", f->label);
	ovl_unlock(o);
	if (rc)
		return rc;
	if (fstat(f->fd, &st))
		return snap_syserr(errno, "%s", f->label);
	ovl_lock(o);
	o->dchanges++;
	rc = onode_get(o, f->ino, &n);
	if (rc == 0) {
		n->si.size = (uint64_t)st.st_size;
		n->si.ctime_ns = now_ns();
		if (!(mode & FALLOC_FL_KEEP_SIZE))
			n->si.mtime_ns = n->si.ctime_ns;
	}
	ovl_unlock(o);
	return rc;
}

void ovl_release(struct ovl *o, struct ovl_file *f)
{
	struct onode *n;

	if (!f)
		return;
	ovl_lock(o);
	n = onode_find(o, f->ino);
	if (n) {
		n->opens--;
		if (f->wr) {
			n->writers--;
			o->writers--;
			pthread_cond_broadcast(&o->cv);
		}
		/* Closed, unless flush said so already (it failed, or
		 * another handle wrote since); nobody waits to hear. */
		if (f->wr && n->writers == 0 && n->staged &&
		    n->si.wstate == WS_WRITING)
			(void)mark_closed(o, n);
		if (f->wr && n->writers == 0)
			n->settled = 0;
		if (n->unlinked && n->opens == 0 && n->staged &&
		    n->si.type == ET_REG && n->si.nlink == 0 &&
		    stage_begin(o->st) == 0) {
			int rc = stage_data_unlink(o->st, n->ino);

			stage_end(o->st, rc ? rc : stage_inode_del(o->st,
								   n->ino));
		}
		if (n->nlookup == 0 && n->opens == 0)
			onode_free(o, n);
	}
	ovl_unlock(o);
	if (f->fd >= 0)
		close(f->fd);
	cache_release(o->o.c, f->te);
	fread_destroy(&f->rd);
	free(f);
}

int ovl_file_src(struct ovl *o, struct ovl_file *f, struct ovl_src *src)
{
	struct onode *n;
	int rc;

	ovl_lock(o);
	rc = onode_get(o, f->ino, &n);
	if (rc == 0) {
		const struct ref *ref = n->staged ? &n->si.otree : &n->ptree;
		const char *name = n->staged ? n->si.oname : n->pname;
		int has = n->staged ? n->si.has_orig && !n->si.data
				    : n->has_loc;

		if (!has || !name || ref_is_zero(ref) ||
		    strlen(name) >= sizeof(src->name) || !f->e) {
			rc = snap_seterr(SNAP_EUNSUPP, "%s: not stored as it is",
					 f->label);
		} else {
			snprintf(src->series, sizeof(src->series), "%s",
				 o->base.series);
			src->dir = *ref;
			snprintf(src->name, sizeof(src->name), "%s", name);
			src->size = f->e->size;
		}
	}
	ovl_unlock(o);
	return rc;
}

int ovl_copy_ref(struct ovl *o, struct ovl_file *f, const struct ovl_src *src,
		 uint64_t off_in, uint64_t off_out, uint64_t len,
		 uint64_t *copied)
{
	struct onode *n;
	struct centry *pin = NULL;
	const struct tree *t;
	const struct tent *e = NULL;
	char *oname = NULL, *prev;
	struct sinode old;
	int rc;

	*copied = 0;
	/* The whole of a stored file into an empty one, in the series the
	 * next backup continues: anything else is copied as bytes. */
	if (off_in || off_out || len < src->size || !f->wr ||
	    strcmp(src->series, o->base.series) || ref_is_zero(&src->dir))
		return snap_seterr(SNAP_EUNSUPP, "not a whole-file copy "
				   "within the series");
	ovl_lock(o);
	rc = ovl_gate_wait(o);
	rc = rc ? rc : onode_get(o, f->ino, &n);
	/* Only this handle may have the staged copy open: it is about to
	 * go. */
	if (rc == 0 && (!n->staged || !n->si.data || n->si.size ||
			n->si.type != ET_REG || n->si.nlink > 1 ||
			n->si.bhl || n->opens != 1))
		rc = snap_seterr(SNAP_EUNSUPP, "%s: not a new, empty file "
				 "open once", f->label);
	/* The source's directory object is pinned by its own handle. */
	rc = rc ? rc : cache_tree(o->o.c, src->series, &src->dir, &pin, &t);
	if (rc == 0) {
		e = tree_find(t, src->name);
		if (!e || e->type != ET_REG || e->size != src->size)
			rc = snap_seterr(SNAP_EUNSUPP, "%s is not in its "
					 "directory object as it was",
					 src->name);
	}
	if (rc == 0 && !(oname = strdup(src->name)))
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	if (rc)
		goto out;
	old = n->si;
	prev = n->si.oname;
	n->si.oname = oname;
	n->si.has_orig = 1;
	n->si.otree = src->dir;
	n->si.data = 0;
	n->si.own_xattrs = 1;
	n->si.size = src->size;
	if (!o->o.kernel_times)
		n->si.mtime_ns = n->si.ctime_ns = now_ns();
	/* Recovery would put these back: the file as it is now. */
	n->si.o_mode = n->si.mode;
	n->si.o_uid = n->si.uid;
	n->si.o_gid = n->si.gid;
	n->si.o_mtime_ns = n->si.mtime_ns;
	n->si.o_ctime_ns = n->si.ctime_ns;
	n->si.o_size = src->size;
	/* Its bytes are in the store already: as good as settled. */
	n->si.wstate = WS_CLEAN;
	rc = stage_begin(o->st);
	rc = stage_end(o->st, rc ? rc : onode_put(o, n));
	if (rc) {
		free(oname);
		n->si = old;
		goto out;
	}
	free(prev);
	/* A data file left behind by a failed unlink is never read again
	 * (data is 0) and goes with the stage. */
	stage_data_unlink(o->st, n->ino);
	close(f->fd);
	f->fd = -1;
	cache_release(o->o.c, f->te);
	f->te = pin;
	f->e = e;
	pin = NULL;
	n->settled = 1;
	*copied = src->size;
out:
	cache_release(o->o.c, pin);
	ovl_unlock(o);
	return rc;
}

const char *ovl_file_name(const struct ovl_file *f)
{
	return f->label;
}

int ovl_statfs(struct ovl *o, struct statvfs *sv)
{
	uint64_t bsize, blocks, bfree, bavail;
	int rc;

	ovl_lock(o);
	rc = stage_statfs(o->st, &bsize, &blocks, &bfree, &bavail);
	ovl_unlock(o);
	if (rc)
		return rc;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = (unsigned long)bsize;
	sv->f_blocks = blocks;
	sv->f_bfree = bfree;
	sv->f_bavail = bavail;
	sv->f_files = sv->f_ffree = sv->f_favail = 1u << 30;
	sv->f_namemax = 255;
	sv->f_flag = ST_NOSUID | ST_NODEV;
	return 0;
}
