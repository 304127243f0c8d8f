/* pack.c - pack writer and trailer reader; see pack.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "err.h"
#include "pack.h"

static const char footer_magic[4] = {'S', 'N', 'P', '1'};
static const char trailer_magic[4] = {'S', 'N', 'P', 'T'};

int pack_begin(struct pack *p)
{
	memset(p, 0, sizeof(*p));
	SNAP_TRY(random_bytes(p->id, sizeof(p->id)));
	SNAP_TRY(buf_add(&p->index, trailer_magic, 4));
	return buf_addc(&p->index, 1);
}

int pack_add(struct pack *p, enum blob_type type, const uint8_t id[ID_LEN],
	     const void *blob, size_t n, uint32_t raw, struct ref *r)
{
	size_t off = p->data.len;

	if (off > UINT32_MAX - n)
		return snap_seterr(SNAP_EINVAL, "pack overflow");
	SNAP_TRY(buf_add(&p->data, blob, n));
	SNAP_TRY(buf_addc(&p->index, type));
	SNAP_TRY(buf_add(&p->index, id, ID_LEN));
	SNAP_TRY(buf_add_varint(&p->index, off));
	SNAP_TRY(buf_add_varint(&p->index, n));
	SNAP_TRY(buf_add_varint(&p->index, raw));
	p->count++;
	if (r) {
		memcpy(r->id, id, ID_LEN);
		memcpy(r->pack, p->id, PACK_ID_LEN);
		r->off = off;
		r->len = n;
		r->raw = raw;
	}
	return 0;
}

int pack_finish(struct pack *p, const struct keys *k)
{
	uint8_t tid[ID_LEN], foot[PACK_FOOTER_LEN];
	struct buf tr = BUF_INIT;
	size_t start = p->data.len;
	int rc;

	/* The count goes last so entries can be appended as blobs arrive. */
	rc = buf_add_u32le(&p->index, p->count);
	if (rc)
		goto out;
	chunk_id(k, p->index.p, p->index.len, tid);
	rc = blob_encode(k, tid, p->index.p, p->index.len, &tr);
	if (rc)
		goto out;
	rc = buf_add(&p->data, tr.p, tr.len);
	if (rc)
		goto out;
	memcpy(foot, tid, ID_LEN);
	put_u32le(foot + 32, (uint32_t)(p->data.len - start));
	put_u32le(foot + 36, (uint32_t)p->index.len);
	memcpy(foot + 40, footer_magic, 4);
	rc = buf_add(&p->data, foot, sizeof(foot));
out:
	buf_free(&tr);
	return rc;
}

void pack_free(struct pack *p)
{
	buf_free(&p->data);
	buf_free(&p->index);
}

void pack_key(const char *series, const uint8_t pack[PACK_ID_LEN], char *out,
	      size_t n)
{
	char hex[2 * PACK_ID_LEN + 1];

	hex_encode(pack, PACK_ID_LEN, hex);
	snprintf(out, n, "data/%s/%s", series, hex);
}

int pack_parse_footer(const uint8_t *tail, size_t n, uint64_t size,
		      struct pack_footer *f)
{
	const uint8_t *foot;

	if (size < PACK_FOOTER_LEN || n < PACK_FOOTER_LEN)
		return snap_seterr(SNAP_ECORRUPT, "truncated pack (%llu bytes)",
				   (unsigned long long)(n < size ? n : size));
	if (n > size)
		return snap_seterr(SNAP_ECORRUPT,
				   "pack tail of %zu bytes is longer than the "
				   "pack (%llu bytes)",
				   n, (unsigned long long)size);
	foot = tail + n - PACK_FOOTER_LEN;
	if (memcmp(foot + 40, footer_magic, 4))
		return snap_seterr(SNAP_ECORRUPT,
				   "bad pack footer (truncated or not a pack)");
	memcpy(f->tid, foot, ID_LEN);
	f->tlen = get_u32le(foot + 32);
	f->rlen = get_u32le(foot + 36);
	/* 64-bit sums: a 32-bit tlen + footer wraps and would point the
	 * trailer anywhere. */
	f->tail = (uint64_t)f->tlen + PACK_FOOTER_LEN;
	if (f->rlen > PACK_TRAILER_MAX || f->tail > size ||
	    f->tlen > blob_bound(f->rlen))
		return snap_seterr(SNAP_ECORRUPT,
				   "bad pack footer (trailer of %u bytes, %u "
				   "plain, in a pack of %llu bytes)",
				   f->tlen, f->rlen, (unsigned long long)size);
	f->data_end = size - f->tail;
	return 0;
}

int pack_parse_trailer(const struct keys *k, const struct pack_footer *f,
		       const uint8_t *tail, size_t n,
		       struct pack_entry **ents, size_t *count)
{
	struct buf raw = BUF_INIT, scratch = BUF_INIT;
	struct pack_entry *e = NULL;
	const uint8_t *p;
	struct rd r;
	uint32_t cnt;
	int rc;

	if (n < f->tail)
		return snap_seterr(SNAP_EINVAL,
				   "pack tail of %zu bytes lacks the trailer "
				   "(%llu needed)",
				   n, (unsigned long long)f->tail);
	rc = buf_reserve(&raw, f->rlen ? f->rlen : 1);
	if (rc)
		goto out;
	rc = blob_decode(k, f->tid, tail + n - f->tail, f->tlen, raw.p,
			 f->rlen, &scratch);
	if (rc) {
		if (rc == SNAP_ECORRUPT)
			snap_seterr(rc, "pack index fails authentication");
		goto out;
	}
	p = raw.p;
	rc = snap_seterr(SNAP_ECORRUPT, "pack index is malformed");
	if (f->rlen < 9 || memcmp(p, trailer_magic, 4) || p[4] != 1)
		goto out;
	cnt = get_u32le(p + f->rlen - 4);
	/* Each entry takes at least 36 bytes: bound the allocation by what
	 * the trailer can hold before trusting the count. */
	if (cnt > (f->rlen - 9) / 36)
		goto out;
	e = calloc(cnt ? cnt : 1, sizeof(*e));
	if (!e) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	rd_init(&r, p + 5, f->rlen - 9);
	for (uint32_t i = 0; i < cnt; i++) {
		const uint8_t *id;
		uint64_t off, len, raw_len;

		e[i].type = rd_u8(&r);
		id = rd_take(&r, ID_LEN);
		if (id)
			memcpy(e[i].id, id, ID_LEN);
		off = rd_varint(&r);
		len = rd_varint(&r);
		raw_len = rd_varint(&r);
		/* off + len could wrap: compare each against the room left. */
		if (r.err || off > f->data_end || len > f->data_end - off ||
		    off + len > UINT32_MAX || raw_len > UINT32_MAX ||
		    (e[i].type != BT_DATA && e[i].type != BT_TREE))
			goto out;
		e[i].off = off;
		e[i].len = len;
		e[i].raw = raw_len;
	}
	if (r.p != r.end)
		goto out;
	*ents = e;
	*count = cnt;
	e = NULL;
	rc = 0;
out:
	free(e);
	buf_free(&raw);
	buf_free(&scratch);
	return rc;
}

int pack_read_index(struct store *s, const struct keys *k, const char *key,
		    struct pack_entry **ents, size_t *n, uint64_t *size)
{
	struct buf tail = BUF_INIT;
	struct pack_footer f;
	uint64_t psize;
	int rc;

	*ents = NULL;
	*n = 0;
	rc = store_head(s, key, &psize);
	if (rc)
		goto out;
	/* One request usually brings trailer and footer together. */
	if (psize > 0)
		rc = store_get(s, key,
			       -(int64_t)(psize < 65536 ? psize : 65536), -1,
			       &tail);
	if (rc)
		goto out;
	rc = pack_parse_footer(tail.p, tail.len, psize, &f);
	if (rc == 0 && f.tail > tail.len) {
		/* store_read_exact names the key itself. */
		rc = store_read_exact(s, key, f.data_end, f.tail, &tail);
		if (rc)
			goto out;
	}
	if (rc == 0)
		rc = pack_parse_trailer(k, &f, tail.p, tail.len, ents, n);
	if (rc) {
		snap_preerr(rc, "%s", key);
		goto out;
	}
	*size = psize;
out:
	buf_free(&tail);
	return rc;
}
