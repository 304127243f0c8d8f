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

static int parse_trailer(const uint8_t *p, size_t n, uint64_t pack_size,
			 struct pack_entry **ents, size_t *count)
{
	struct rd r;
	uint32_t cnt;
	struct pack_entry *e = NULL;

	if (n < 9 || memcmp(p, trailer_magic, 4) || p[4] != 1)
		return SNAP_ECORRUPT;
	cnt = get_u32le(p + n - 4);
	/* Each entry takes at least 36 bytes: bound the allocation by what
	 * the trailer can hold before trusting the count. */
	if (cnt > (n - 9) / 36)
		return SNAP_ECORRUPT;
	e = calloc(cnt ? cnt : 1, sizeof(*e));
	if (!e)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	rd_init(&r, p + 5, n - 9);
	for (uint32_t i = 0; i < cnt; i++) {
		const uint8_t *id;

		e[i].type = rd_u8(&r);
		id = rd_take(&r, ID_LEN);
		if (id)
			memcpy(e[i].id, id, ID_LEN);
		uint64_t off = rd_varint(&r), len = rd_varint(&r),
			 raw = rd_varint(&r);
		if (r.err || off + len > pack_size || raw > UINT32_MAX ||
		    (e[i].type != BT_DATA && e[i].type != BT_TREE)) {
			free(e);
			return SNAP_ECORRUPT;
		}
		e[i].off = off;
		e[i].len = len;
		e[i].raw = raw;
	}
	if (r.p != r.end) {
		free(e);
		return SNAP_ECORRUPT;
	}
	*ents = e;
	*count = cnt;
	return 0;
}

int pack_read_index(struct store *s, const struct keys *k, const char *key,
		    struct pack_entry **ents, size_t *n, uint64_t *size)
{
	struct buf tail = BUF_INIT, scratch = BUF_INIT, raw = BUF_INIT;
	const uint8_t *foot;
	uint32_t tlen, rlen;
	uint64_t psize;
	int rc;

	*ents = NULL;
	*n = 0;
	rc = store_head(s, key, &psize);
	if (rc)
		goto out;
	if (psize < PACK_FOOTER_LEN) {
		rc = snap_seterr(SNAP_ECORRUPT, "%s: truncated pack (%llu bytes)",
				 key, (unsigned long long)psize);
		goto out;
	}
	/* One request usually brings trailer and footer together. */
	rc = store_get(s, key, -(int64_t)(psize < 65536 ? psize : 65536), -1,
		       &tail);
	if (rc)
		goto out;
	foot = tail.p + tail.len - PACK_FOOTER_LEN;
	tlen = get_u32le(foot + 32);
	rlen = get_u32le(foot + 36);
	if (tail.len < PACK_FOOTER_LEN || memcmp(foot + 40, footer_magic, 4) ||
	    tlen > psize - PACK_FOOTER_LEN || rlen > (64u << 20)) {
		rc = snap_seterr(SNAP_ECORRUPT,
				 "%s: bad pack footer (truncated or not a pack)",
				 key);
		goto out;
	}
	if (tlen + PACK_FOOTER_LEN > tail.len) {
		rc = store_read_exact(s, key, psize - PACK_FOOTER_LEN - tlen,
				      tlen + PACK_FOOTER_LEN, &tail);
		if (rc)
			goto out;
		foot = tail.p + tail.len - PACK_FOOTER_LEN;
	}
	rc = buf_reserve(&raw, rlen);
	if (rc)
		goto out;
	uint8_t tid[ID_LEN];
	memcpy(tid, foot, ID_LEN);
	rc = blob_decode(k, tid, foot - tlen, tlen, raw.p, rlen, &scratch);
	if (rc == 0)
		rc = parse_trailer(raw.p, rlen, psize - PACK_FOOTER_LEN - tlen,
				   ents, n);
	if (rc == SNAP_ECORRUPT)
		snap_seterr(rc, "%s: pack index fails authentication", key);
	*size = psize;
out:
	buf_free(&tail);
	buf_free(&scratch);
	buf_free(&raw);
	return rc;
}
