/* overlay_stream.c - files of a label's tree streamed into the store while
 * they are written; see "Streaming" in overlay.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chunker.h"
#include "err.h"
#include "overlay_int.h"

/* ---- the table of streams ---------------------------------------------- */

static struct ostream *sm_find(struct ovl *o, uint64_t ino)
{
	for (size_t i = 0; i < o->nsms; i++)
		if (o->sms[i]->ino == ino)
			return o->sms[i];
	return NULL;
}

static struct ostream *sm_new(struct ovl *o, uint64_t ino)
{
	struct ostream *sm;

	if (array_grow(&o->sms, &o->smcap, o->nsms, sizeof(*o->sms), 8))
		return NULL;
	sm = calloc(1, sizeof(*sm));
	if (sm) {
		sm->ino = ino;
		o->sms[o->nsms++] = sm;
	}
	return sm;
}

/* Streams that have nothing left to do go: stopped ones once their pass
 * ended, sealed ones once every chunk is recorded. */
static void sm_sweep(struct ovl *o)
{
	size_t k = 0;

	for (size_t i = 0; i < o->nsms; i++) {
		struct ostream *sm = o->sms[i];

		if (!sm->busy && (sm->stopped || (sm->sealed && !sm->npend))) {
			free(sm->pend);
			free(sm);
		} else {
			o->sms[k++] = sm;
		}
	}
	o->nsms = k;
}

/* What was cut and not recorded is still local: it is simply forgotten. */
static void sm_stop(struct ovl *o, struct ostream *sm)
{
	struct onode *n = onode_find(o, sm->ino);

	sm->stopped = 1;
	sm->npend = 0;
	if (n)
		n->nostream = 1;
	if (o->swaiting)
		pthread_cond_broadcast(&o->cv);
}

/* A write over [a, b): chunks cut from what it changes are stale.  Cut
 * and not recorded, they are forgotten (their bytes are local, and the
 * commit chunks them); a pass that reads the range now drops them when
 * it ends.  The stream goes on. */
static void sm_forget(struct ostream *sm, uint64_t a, uint64_t b)
{
	size_t k = 0;

	if (sm->busy && a < sm->claim && b > sm->chunked) {
		if (sm->dlo >= sm->dhi || a < sm->dlo)
			sm->dlo = a;
		if (b > sm->dhi)
			sm->dhi = b;
	}
	for (size_t i = 0; i < sm->npend; i++) {
		const struct chunk *c = &sm->pend[i];

		if (c->off < b && c->off + c->r.raw > a)
			continue;
		sm->pend[k++] = *c;
	}
	sm->npend = k;
}

/* ---- recording what is durable ------------------------------------------ */

/* The chunks at the front of sm's queue whose packs have been uploaded
 * go into the stage, and their bytes out of data/<ino>.  The punch comes
 * after the stage's commit: killed between the two, the file has both,
 * and the stored chunks win. */
static void settle(struct ovl *o, struct ostream *sm)
{
	struct onode *n;
	size_t k = 0, j;
	uint64_t lo, hi;
	int rc, fd;

	while (k < sm->npend && bsession_durable(o->ss, sm->pend[k].r.pack))
		k++;
	if (!k)
		return;
	rc = stage_begin(o->st);
	for (size_t i = 0; rc == 0 && i < k; i++)
		rc = stage_sref_add(o->st, sm->ino, &sm->pend[i]);
	if (stage_end(o->st, rc))
		return; /* still local; tried again at the next pass */
	hi = sm->pend[k - 1].off + sm->pend[k - 1].r.raw;
	n = onode_find(o, sm->ino);
	if (n && n->staged && hi > n->si.srefs)
		n->si.srefs = hi;
	/* Runs of adjacent chunks: between two that are not lie bytes that
	 * stay local (a chunk a later write made stale). */
	if (stage_data_open(o->st, sm->ino, O_RDWR, &fd) == 0) {
		for (size_t i = 0; i < k; i = j) {
			lo = sm->pend[i].off;
			hi = lo + sm->pend[i].r.raw;
			for (j = i + 1; j < k && sm->pend[j].off == hi; j++)
				hi += sm->pend[j].r.raw;
			/* A failed punch only costs the space. */
			o->dchanges++;
			(void)fallocate(fd, FALLOC_FL_PUNCH_HOLE |
					    FALLOC_FL_KEEP_SIZE,
					(off_t)lo, (off_t)(hi - lo));
		}
		close(fd);
	}
	memmove(sm->pend, sm->pend + k, (sm->npend - k) * sizeof(*sm->pend));
	sm->npend -= k;
}

static void settle_all(struct ovl *o)
{
	for (size_t i = 0; o->ss && i < o->nsms; i++)
		settle(o, o->sms[i]);
	sm_sweep(o);
}

/* n's path under the label directory, for status ("g/dir/file"); a
 * name that no longer fits is cut off at the front. */
static char *onode_path(struct ovl *o, const struct onode *n)
{
	char buf[4096];
	size_t at = sizeof(buf) - 1;

	buf[at] = 0;
	for (int d = 0; d < 256 && n && n->name && n->ino != o->o.root_ino;
	     d++) {
		size_t len = strlen(n->name), sep = at < sizeof(buf) - 1;

		if (len + sep > at)
			break;
		if (sep)
			buf[--at] = '/';
		at -= len;
		memcpy(buf + at, n->name, len);
		n = onode_find(o, n->parent);
	}
	return strdup(buf + at);
}

/* The session failed: every stream stops (their bytes are local), and
 * the files say so at their next flush or fsync, and in status. */
static void fail_all(struct ovl *o)
{
	snprintf(o->serrmsg, sizeof(o->serrmsg), "%s", snap_errmsg());
	o->ss_state = SS_OFF;
	for (size_t i = 0; i < o->nsms; i++) {
		struct onode *n = onode_find(o, o->sms[i]->ino);

		if (n && !o->sms[i]->stopped && o->nsfailed < STREAM_FILES &&
		    (o->sfailed[o->nsfailed] = onode_path(o, n)))
			o->nsfailed++;
		if (n)
			n->serr = 1;
		sm_stop(o, o->sms[i]);
	}
}

/* ---- holding writers back -------------------------------------------------- */

/* May this thread block for uploads?  Each yes is paired with a drop. */
static int hold_take(struct ovl *o)
{
	struct ovl_holds *h = o->o.holds;

	if (!h || !h->max)
		return 1;
	if (atomic_fetch_add(&h->n, 1) < h->max)
		return 1;
	atomic_fetch_sub(&h->n, 1);
	return 0;
}

static void hold_drop(struct ovl *o)
{
	if (o->o.holds && o->o.holds->max)
		atomic_fetch_sub(&o->o.holds->n, 1);
}

/* Holds req back until a pass ends; 1, or 0 when it cannot. */
static int park(struct ovl *o, uint64_t ino, void *req, uint64_t len)
{
	struct opark *p;

	if (!req || !o->o.resume_write || !o->nbusy ||
	    !(p = malloc(sizeof(*p))))
		return 0;
	p->ino = ino;
	p->req = req;
	p->n = (size_t)len;
	p->next = o->parked;
	o->parked = p;
	return 1;
}

/* Writes held back go on once their stream is close enough behind (a
 * pass ended), or, with force, once no pass cuts it (its runner left:
 * nobody else would let them go).  None is left once no pass runs. */
static void unpark(struct ovl *o, int force)
{
	struct opark **pp = &o->parked, *p;

	while ((p = *pp)) {
		struct ostream *sm = o->nbusy ? sm_find(o, p->ino) : NULL;

		if (sm && (sm->busy ||
			   (!force && !sm->stopped && !sm->sealed &&
			    o->ss_state != SS_OFF &&
			    sm->hi - sm->chunked > STREAM_AHEAD))) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		o->o.resume_write(p->req, p->n);
		free(p);
	}
}

/* ---- a pass --------------------------------------------------------------- */

/* A pass's chunks: the session's workers store them (and write their
 * refs into v) while the pass goes on cutting. */
struct cut {
	struct chunk *v;
	size_t n, cap;
	uint64_t end; /* the last chunk ends here */
	struct bstore_wait w;
};

/* Cuts the data extent [d, h) of fd into chunks stored through s.  final:
 * h ends the extent for good (a hole or the file's end follows);
 * otherwise the bytes after h are still to come, and a cut needs the
 * chunker's max bytes after its start.  Sets c->end. */
static int cut_extent(const struct chunker *ch, struct bsession *s, int fd,
		      uint8_t *buf, size_t bsz, uint64_t d, uint64_t h,
		      int final, struct cut *c)
{
	uint64_t boff = d; /* file offset of buf[0] */
	size_t have = 0, at = 0;

	c->end = d;
	for (;;) {
		int eof;

		if (have - at < ch->max && boff + have < h) {
			memmove(buf, buf + at, have - at);
			boff += at;
			have -= at;
			at = 0;
			while (have < bsz && boff + have < h) {
				uint64_t want = h - (boff + have);
				ssize_t r;

				if (want > bsz - have)
					want = bsz - have;
				r = pread(fd, buf + have, (size_t)want,
					  (off_t)(boff + have));
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0)
					return snap_syserr(errno, "reading "
							   "what was written");
				if (r == 0)
					return snap_seterr(SNAP_EIO, "the "
							   "staged copy "
							   "shrank");
				have += (size_t)r;
			}
		}
		eof = final && boff + have == h;
		if (have == at || (!eof && have - at < ch->max))
			return 0;
		size_t k = chunker_cut(ch, buf + at, have - at, eof);

		if (c->n == c->cap) {
			/* Nothing may write into v while it moves. */
			int rc = bstore_wait(&c->w);

			bstore_wait_init(&c->w);
			SNAP_TRY(rc);
			SNAP_TRY(array_grow(&c->v, &c->cap, c->n,
					    sizeof(*c->v), 64));
		}
		c->v[c->n].off = boff + at;
		SNAP_TRY(bsession_store_async(s, buf + at, k, &c->v[c->n].r,
					      &c->w));
		c->n++;
		at += k;
		c->end = boff + at;
	}
}

/* Cuts [from, to) of fd, its data extents only, less the ranges of the
 * stored chunks in skip (sorted; a file filled by reference): those are
 * the file's there, whatever data/<ino> holds (a chunk brought back makes
 * its whole first and last blocks data, zeros around it), and so count
 * as holes.  final: to is the file's end and everything is cut;
 * otherwise the pass ends where no more whole chunks can be cut.
 * c->end: how far chunks now cover (holes count). */
static int cut_range(struct ovl *o, struct bsession *s, int fd,
		     uint64_t from, uint64_t to, int final,
		     const struct chunk *skip, size_t nskip, struct cut *c)
{
	const struct chunker *ch = &o->o.r->chunker;
	size_t bsz = 2 * ch->max + STREAM_STEP;
	/* A fresh 16 MiB each pass cost a page fault and a clearing per
	 * 4 KiB read, 8 % of the daemon's time in a large rsync. */
	struct buf b = bufpool_get(&o->passbufs);
	uint8_t *buf;
	uint64_t pos = from;
	int rc = 0;

	if (buf_reserve(&b, bsz)) {
		bufpool_put(&o->passbufs, &b);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	buf = b.p;
	while (pos < to && rc == 0) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;

		if (d < 0 && errno == ENXIO) {
			if (final)
				pos = to; /* only a hole is left */
			break;
		}
		if (d < 0) {
			d = (off_t)pos;
			h = (off_t)to;
		} else {
			h = lseek(fd, d, SEEK_HOLE);
			if (h < 0 || (uint64_t)h > to)
				h = (off_t)to;
		}
		if ((uint64_t)d >= to) {
			if (final)
				pos = to;
			break;
		}
		while (nskip && skip->off + skip->r.raw <= (uint64_t)d) {
			skip++;
			nskip--;
		}
		if (nskip && skip->off <= (uint64_t)d) {
			pos = skip->off + skip->r.raw < to ? skip->off + skip->r.raw
							   : to;
			continue;
		}
		if (nskip && skip->off < (uint64_t)h)
			h = (off_t)skip->off;
		/* An extent that ends before to is followed by a hole the
		 * writer left more than a window behind: a hole for good. */
		rc = cut_extent(ch, s, fd, buf, bsz, (uint64_t)d, (uint64_t)h,
				final || (uint64_t)h < to, c);
		if (rc == 0 && c->end < (uint64_t)h) {
			pos = c->end;
			break;
		}
		pos = (uint64_t)h;
	}
	bufpool_put(&o->passbufs, &b);
	c->end = pos;
	return rc;
}

/* Opens the session if there is none; o->lock held (dropped meanwhile),
 * sm busy.  0 with o->ss set, or not now. */
static int need_session(struct ovl *o)
{
	struct bsession *s = NULL;
	int rc;

	if (o->ss)
		return 0;
	if (o->ss_state != SS_NONE)
		return SNAP_EBUSY;
	o->ss_state = SS_OPENING;
	ovl_unlock(o);
	rc = o->o.stream_open(o->o.stream_ctx, &s);
	ovl_lock(o);
	if (rc) {
		o->ss_state = rc == SNAP_EBUSY ? SS_NONE : SS_OFF;
		if (rc != SNAP_EBUSY)
			snprintf(o->serrmsg, sizeof(o->serrmsg), "%s",
				 snap_errmsg());
		return SNAP_EBUSY;
	}
	o->ss = s;
	o->ss_state = SS_OPEN;
	snprintf(o->sseries, sizeof(o->sseries), "%s", bsession_series(s));
	return 0;
}

/* One pass over [sm->chunked, to) of fd; o->lock held (dropped during
 * the pass). */
static void run_pass(struct ovl *o, struct ostream *sm, int fd, uint64_t to,
		     int final)
{
	struct cut c = {0};
	struct bsession *s;
	struct chunk *skip = NULL;
	struct onode *n;
	uint64_t from = sm->chunked;
	size_t nskip = 0;
	int rc, r;

	sm->busy = 1;
	o->nbusy++;
	sm->claim = to;
	rc = need_session(o);
	s = o->ss;
	/* Stored chunks ahead, as they are now: ones a write brings back
	 * meanwhile stay uncut (their bytes are local; the commit takes
	 * them). */
	n = onode_find(o, sm->ino);
	if (rc == 0 && n && n->si.srefs > from &&
	    stage_sref_range(o->st, sm->ino, from, to, o->o.r->chunker.max,
			     &skip, &nskip))
		rc = SNAP_EBUSY; /* not now */
	if (rc == 0) {
		ovl_unlock(o);
		bstore_wait_init(&c.w);
		rc = cut_range(o, s, fd, from, to, final, skip, nskip, &c);
		r = bstore_wait(&c.w);
		rc = rc ? rc : r;
		ovl_lock(o);
	}
	free(skip);
	sm->busy = 0;
	o->nbusy--;
	if (rc && rc != SNAP_EBUSY && o->ss_state == SS_OPEN) {
		fail_all(o);
	} else if (rc == 0 && !sm->stopped) {
		int grown = 0;

		while (grown == 0 && sm->pcap < sm->npend + c.n)
			grown = array_grow(&sm->pend, &sm->pcap, sm->pcap,
					   sizeof(*sm->pend), 16);
		if (grown == 0) {
			for (size_t i = 0; i < c.n; i++)
				if (sm->dlo >= sm->dhi ||
				    c.v[i].off >= sm->dhi ||
				    c.v[i].off + c.v[i].r.raw <= sm->dlo)
					sm->pend[sm->npend++] = c.v[i];
			sm->chunked = c.end;
			if (final)
				sm->sealed = 1;
		} else {
			sm_stop(o, sm);
		}
	}
	sm->claim = sm->chunked;
	sm->dlo = sm->dhi = 0;
	settle_all(o);
	free(c.v);
	unpark(o, 0);
	if (o->swaiting)
		pthread_cond_broadcast(&o->cv);
}

/* A pass, if the mount's writers hold fewer threads than they may; 1 when
 * it ran. */
static int held_pass(struct ovl *o, struct ostream *sm, int fd, uint64_t to,
		     int final)
{
	if (!hold_take(o))
		return 0;
	run_pass(o, sm, fd, to, final);
	hold_drop(o);
	return 1;
}

/* ---- the overlay's hooks ---------------------------------------------------- */

int ostream_fill_ref(struct ovl *o, uint64_t ino)
{
	struct centry *pin = NULL;
	const struct tent *e = NULL;
	struct stage_meta m;
	struct onode *n = onode_find(o, ino);
	int rc, fd = -1;

	if (!n || !n->staged || n->si.data || !n->si.has_orig ||
	    !n->si.oname || n->si.size < STREAM_START || n->si.nlink > 1 ||
	    !o->o.stream_open || stage_get_meta(o->st, &m))
		return SNAP_EUNSUPP;
	/* The stored chunks are the base's: the next backup continues its
	 * series, which the stage names for them. */
	if (m.full || !m.base_series[0] || strcmp(m.base_series, o->base.series) ||
	    (m.stream_series[0] && strcmp(m.stream_series, m.base_series)))
		return SNAP_EUNSUPP;
	SNAP_TRY(onode_base_entry(o, n, &pin, &e));
	rc = e && e->type == ET_REG && e->size == n->si.size
		     ? stage_begin(o->st)
		     : SNAP_EUNSUPP;
	if (rc == 0) {
		if (!m.stream_series[0]) {
			memcpy(m.stream_series, m.base_series, SERIES_MAX);
			rc = stage_put_meta(o->st, &m);
		}
		rc = rc ? rc
			: stage_data_open(o->st, ino,
					  O_RDWR | O_CREAT | O_TRUNC, &fd);
		if (rc == 0 && ftruncate(fd, (off_t)e->size))
			rc = snap_syserr(errno, "staging %s", n->name);
		for (size_t i = 0; rc == 0 && i < e->nchunks; i++)
			rc = stage_sref_add(o->st, ino, &e->chunks[i]);
		if (rc == 0) {
			n->si.data = 1;
			n->si.srefs = e->size;
			rc = onode_put(o, n);
		}
		rc = stage_end(o->st, rc);
		if (fd >= 0)
			close(fd);
		o->dchanges++;
		if (rc) {
			/* Nested in the caller's batch, nothing rolled back:
			 * rows added must not outlive the copy made instead. */
			(void)stage_sref_clear(o->st, ino);
			n->si.data = 0;
			n->si.srefs = 0;
			stage_data_unlink(o->st, ino);
		}
	}
	cache_release(o->o.c, pin);
	if (rc)
		return SNAP_EUNSUPP;
	memcpy(o->sseries, m.stream_series, SERIES_MAX);
	n->inplace = 1;
	return 0;
}

/* Stored chunks over [off, end) come back into data/<ino>; with end
 * UINT64_MAX (a truncate to off) those wholly past off are dropped
 * unread. */
static int unref(struct ovl *o, struct onode *n, uint64_t off, uint64_t end)
{
	struct chunk *v;
	size_t nv;
	int rc, fd = -1;

	SNAP_TRY(stage_sref_range(o->st, n->ino, off, end,
				  o->o.r->chunker.max, &v, &nv));
	if (nv == 0)
		return 0;
	rc = stage_data_open(o->st, n->ino, O_RDWR, &fd);
	for (size_t i = 0; rc == 0 && i < nv; i++) {
		struct centry *ce = NULL;
		const uint8_t *data;
		size_t done = 0;

		if (end == UINT64_MAX && v[i].off >= off) {
			rc = stage_sref_del(o->st, n->ino, v[i].off);
			continue;
		}
		rc = cache_chunk(o->o.c, o->sseries, &v[i].r, &ce, &data);
		while (rc == 0 && done < v[i].r.raw) {
			ssize_t w = pwrite(fd, data + done, v[i].r.raw - done,
					   (off_t)(v[i].off + done));

			if (w < 0 && errno != EINTR)
				rc = snap_syserr(errno, "%s: bringing a stored "
						 "chunk back", n->name);
			else if (w > 0)
				done += (size_t)w;
		}
		cache_release(o->o.c, ce);
		rc = rc ? rc : stage_sref_del(o->st, n->ino, v[i].off);
	}
	if (fd >= 0)
		close(fd);
	o->dchanges++;
	free(v);
	return rc;
}

static int change(struct ovl *o, struct onode *n, uint64_t off, uint64_t end,
		  int write)
{
	struct ostream *sm = sm_find(o, n->ino);
	int rc = 0;

	if (sm && !sm->stopped && !write &&
	    (sm->sealed || off < sm->claim || (end == UINT64_MAX && off < sm->hi))) {
		sm_stop(o, sm);
		sm_sweep(o);
	}
	if (sm && !sm->stopped && write && sm->sealed) {
		sm_stop(o, sm);
		sm_sweep(o);
	}
	if (n->staged && n->si.srefs > off) {
		rc = stage_begin(o->st);
		rc = stage_end(o->st, rc ? rc : unref(o, n, off, end));
		if (rc == 0 && end == UINT64_MAX)
			n->si.srefs = off;
	}
	return rc;
}

int ostream_change(struct ovl *o, struct onode *n, uint64_t off, uint64_t end)
{
	return change(o, n, off, end, 0);
}

int ostream_write_begin(struct ovl *o, struct onode *n, uint64_t off,
			uint64_t len)
{
	struct ostream *sm = sm_find(o, n->ino);

	/* The writeback cache sends pages in any order, and late ones
	 * behind the cut point are common: the stream goes on. */
	if (sm && !sm->stopped && !sm->sealed && off < sm->claim)
		sm_forget(sm, off, off + len);
	SNAP_TRY(change(o, n, off, off + len, 1));
	SNAP_TRY(array_grow(&n->fly, &n->flycap, n->nfly, sizeof(*n->fly), 4));
	n->fly[n->nfly++] = off;
	return 0;
}

/* The lowest offset a write in flight may still change. */
static uint64_t fly_low(const struct onode *n)
{
	uint64_t low = UINT64_MAX;

	for (size_t i = 0; i < n->nfly; i++)
		if (n->fly[i] < low)
			low = n->fly[i];
	return low;
}

int ostream_wrote(struct ovl *o, uint64_t ino, int fd, uint64_t off,
		  uint64_t len, int ok, void *req)
{
	const struct chunker *ch = &o->o.r->chunker;
	struct ostream *sm;
	struct onode *n;
	uint64_t to;
	int parked = 0, ran = 0, inplace;

	ovl_lock(o);
	n = onode_find(o, ino);
	if (!n)
		goto out;
	for (size_t i = 0; i < n->nfly; i++)
		if (n->fly[i] == off) {
			n->fly[i] = n->fly[--n->nfly];
			break;
		}
	if (o->swaiting)
		pthread_cond_broadcast(&o->cv);
	sm = sm_find(o, ino);
	/* A failed write leaves a file nobody wants stored as it is. */
	if (!ok && sm && !sm->stopped) {
		sm_stop(o, sm);
		sm_sweep(o);
	}
	if (!ok || !n->staged || !n->si.data || !o->o.stream_open ||
	    o->ss_state == SS_OFF || n->nostream)
		goto out;
	sm = sm_find(o, ino);
	inplace = n->inplace;
	n->inplace = 0;
	/* A file is streamed from its start by a writer that extends it,
	 * or that rewrites it from its start in place. */
	if (!sm && (o->nsms >= STREAM_FILES ||
		    (inplace ? off >= STREAM_WINDOW
			     : off + len < n->si.size || n->si.srefs ||
				       n->si.size < STREAM_START ||
				       n->si.nlink > 1)))
		goto out;
	if (!sm && !(sm = sm_new(o, ino)))
		goto out;
	if (sm->stopped || sm->sealed)
		goto out;
	if (off + len > sm->hi)
		sm->hi = off + len;
	/* Cut what is due; a writer too far ahead of the cut point waits
	 * (a pass of another thread, or a write in flight behind it, is
	 * what it waits for): held back while a pass runs, else in its
	 * thread. */
	while (!sm->stopped && !sm->sealed && o->ss_state != SS_OFF) {
		uint64_t at = sm->chunked;

		to = sm->hi > STREAM_WINDOW ? sm->hi - STREAM_WINDOW : 0;
		if (fly_low(n) < to)
			to = fly_low(n);
		if (!sm->busy && o->nbusy < STREAM_BUSY &&
		    to >= sm->chunked + ch->max + STREAM_STEP &&
		    held_pass(o, sm, fd, to, 0)) {
			ran = 1;
			if (!(sm = sm_find(o, ino)) || sm->chunked == at)
				break;
			continue;
		}
		if (sm->hi - sm->chunked <= STREAM_AHEAD)
			break;
		if ((parked = park(o, ino, req, len)) || !hold_take(o))
			break;
		o->swaiting++;
		pthread_cond_wait(&o->cv, &o->lock);
		o->swaiting--;
		hold_drop(o);
		if (!(sm = sm_find(o, ino)))
			break;
	}
out:
	if (ran || !o->nbusy)
		unpark(o, 1);
	ovl_unlock(o);
	return parked;
}

int ostream_has(struct ovl *o, uint64_t ino)
{
	return sm_find(o, ino) != NULL;
}

void ostream_seal(struct ovl *o, uint64_t ino, int fd)
{
	struct ostream *sm;
	struct onode *n;

	ovl_lock(o);
	n = onode_find(o, ino);
	sm = n ? sm_find(o, ino) : NULL;
	/* Not cut now, the rest waits for the commit. */
	if (sm && !sm->stopped && !sm->sealed && !sm->busy &&
	    n->writers == 1 && !n->nfly && o->ss_state != SS_OFF &&
	    held_pass(o, sm, fd, n->si.size, 1))
		unpark(o, 1);
	ovl_unlock(o);
}

int ostream_read(struct ovl *o, uint64_t ino, int fd, uint64_t fsize,
		 uint64_t off, size_t size, struct vfs_read *rd, int *done)
{
	char series[SERIES_MAX];
	struct onode *n;
	struct chunk *v = NULL;
	size_t nv = 0, got = 0;
	uint8_t *buf;
	int rc = 0;

	*done = 0;
	if (off >= fsize)
		return 0;
	if (size > fsize - off)
		size = (size_t)(fsize - off);
	ovl_lock(o);
	n = onode_find(o, ino);
	if (n && n->staged && n->si.srefs > off)
		rc = stage_sref_range(o->st, ino, off, off + size,
				      o->o.r->chunker.max, &v, &nv);
	memcpy(series, o->sseries, sizeof(series));
	ovl_unlock(o);
	if (rc || nv == 0)
		return rc;
	buf = malloc(size ? size : 1);
	if (!buf) {
		free(v);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	/* The local bytes, then the stored chunks over them (what was
	 * punched reads as zeros locally). */
	while (got < size) {
		ssize_t r = pread(fd, buf + got, size - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	memset(buf + got, 0, size - got);
	for (size_t i = 0; rc == 0 && i < nv; i++) {
		struct centry *ce = NULL;
		const uint8_t *data;
		uint64_t a = v[i].off > off ? v[i].off : off;
		uint64_t b = v[i].off + v[i].r.raw;

		if (b > off + size)
			b = off + size;
		rc = cache_chunk(o->o.c, series, &v[i].r, &ce, &data);
		if (rc == 0)
			memcpy(buf + (a - off), data + (a - v[i].off),
			       (size_t)(b - a));
		cache_release(o->o.c, ce);
	}
	free(v);
	if (rc) {
		free(buf);
		return rc;
	}
	*done = 1;
	return fread_own(buf, size, rd);
}

void ostream_settle(struct ovl *o)
{
	settle_all(o);
}

void ostream_reset(struct ovl *o)
{
	struct stage_meta m;

	unpark(o, 1);
	for (size_t i = 0; i < o->nsms; i++) {
		free(o->sms[i]->pend);
		free(o->sms[i]);
	}
	o->nsms = 0;
	for (size_t i = 0; i < o->nsfailed; i++)
		free(o->sfailed[i]);
	o->nsfailed = 0;
	o->ss_state = SS_NONE;
	o->sseries[0] = 0;
	o->serrmsg[0] = 0;
	if (stage_get_meta(o->st, &m) == 0)
		memcpy(o->sseries, m.stream_series, sizeof(o->sseries));
}

struct bsession *ovl_stream_take(struct ovl *o)
{
	struct bsession *s;

	ovl_lock(o);
	s = o->ss;
	o->ss = NULL;
	o->ss_state = SS_NONE;
	for (size_t i = 0; i < o->nsms; i++)
		sm_stop(o, o->sms[i]);
	sm_sweep(o);
	ovl_unlock(o);
	return s;
}

int ovl_stream_error(struct ovl *o, char *buf, size_t n,
		     int (*each)(void *ctx, const char *path), void *ctx)
{
	int rc = 0;

	ovl_lock(o);
	snprintf(buf, n, "%s", o->ss_state == SS_OFF ? o->serrmsg : "");
	for (size_t i = 0; rc == 0 && buf[0] && i < o->nsfailed; i++)
		rc = each(ctx, o->sfailed[i]);
	ovl_unlock(o);
	return rc;
}
