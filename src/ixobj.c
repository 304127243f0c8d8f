/*
 * ixobj.c - see ixobj.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "err.h"
#include "ixobj.h"

#define HEAD_LEN (4 + 4 + ID_LEN)
#define TOKEN_LEN 16
#define PLAIN_HEAD (TOKEN_LEN + SERIES_MAX + 4 + 4)
#define REC_LEN (PACK_ID_LEN + ID_LEN + 12)

static const uint8_t magic[4] = {'S', 'N', 'X', '1'};

void ixobj_key(const char *series, uint32_t num, char *out, size_t n)
{
	snprintf(out, n, "index/%s/%u", series, num);
}

static int cmp_pack(const void *a, const void *b)
{
	return memcmp(a, b, PACK_ID_LEN);
}

int ixobj_put(struct repo *r, const char *series, uint32_t num,
	      const struct index *ix, const uint8_t (*packs)[PACK_ID_LEN],
	      size_t npacks, char token[33])
{
	struct buf plain = BUF_INIT, obj = BUF_INIT;
	uint8_t (*sorted)[PACK_ID_LEN] = NULL, tok[TOKEN_LEN], id[ID_LEN];
	uint8_t head[PLAIN_HEAD] = {0}, rec[REC_LEN], oh[HEAD_LEN];
	char key[SERIES_MAX + 32];
	uint32_t count = 0;
	int rc;

	token[0] = 0;
	if (npacks && !(sorted = malloc(npacks * sizeof(*sorted))))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	if (npacks) {
		memcpy(sorted, packs, npacks * sizeof(*sorted));
		qsort(sorted, npacks, sizeof(*sorted), cmp_pack);
	}
	rc = random_bytes(tok, sizeof(tok));
	memcpy(head, tok, TOKEN_LEN);
	snprintf((char *)head + TOKEN_LEN, SERIES_MAX, "%s", series);
	put_u32le(head + TOKEN_LEN + SERIES_MAX, num);
	rc = rc ? rc : buf_add(&plain, head, sizeof(head));
	for (size_t i = 0; rc == 0 && npacks && i < ix->cap; i++) {
		const struct ref *s = &ix->slots[i];

		if (s->raw == UINT32_MAX ||
		    !bsearch(s->pack, sorted, npacks, PACK_ID_LEN, cmp_pack))
			continue;
		memcpy(rec, s->pack, PACK_ID_LEN);
		memcpy(rec + PACK_ID_LEN, s->id, ID_LEN);
		put_u32le(rec + PACK_ID_LEN + ID_LEN, s->off);
		put_u32le(rec + PACK_ID_LEN + ID_LEN + 4, s->len);
		put_u32le(rec + PACK_ID_LEN + ID_LEN + 8, s->raw);
		rc = buf_add(&plain, rec, sizeof(rec));
		count++;
	}
	if (rc == 0 && plain.len > IXOBJ_MAX)
		goto out; /* too large to be read back: go without one */
	if (rc)
		goto out;
	put_u32le(plain.p + TOKEN_LEN + SERIES_MAX + 4, count);
	chunk_id(&r->keys, plain.p, plain.len, id);
	memcpy(oh, magic, 4);
	put_u32le(oh + 4, (uint32_t)plain.len);
	memcpy(oh + 8, id, ID_LEN);
	rc = buf_add(&obj, oh, sizeof(oh));
	rc = rc ? rc : blob_encode(&r->keys, id, plain.p, plain.len, &obj);
	ixobj_key(series, num, key, sizeof(key));
	rc = rc ? rc : store_put(r->st, key, obj.p, obj.len, STORE_CREATE_ONLY);
	if (rc == 0)
		hex_encode(tok, sizeof(tok), token);
	else if (rc == SNAP_EEXIST)
		rc = 0;
out:
	free(sorted);
	buf_free(&plain);
	buf_free(&obj);
	return rc;
}

int ixobj_load(struct repo *r, const char *series, uint32_t num,
	       const char *token, struct index *ix, pthread_mutex_t *lock)
{
	struct buf obj = BUF_INIT, scratch = BUF_INIT;
	uint8_t *plain = NULL, tok[TOKEN_LEN];
	char key[SERIES_MAX + 32], name[SERIES_MAX + 1];
	uint32_t raw, count;
	int rc;

	ixobj_key(series, num, key, sizeof(key));
	if (strlen(token) != 2 * TOKEN_LEN || hex_decode(token, tok, TOKEN_LEN))
		return snap_seterr(SNAP_ECORRUPT, "%s: bad token", key);
	rc = store_get(r->st, key, 0, -1, &obj);
	if (rc)
		goto out;
	rc = snap_seterr(SNAP_ECORRUPT, "%s: not an index object", key);
	if (obj.len < HEAD_LEN || memcmp(obj.p, magic, 4))
		goto out;
	raw = get_u32le(obj.p + 4);
	if (raw < PLAIN_HEAD || raw > IXOBJ_MAX || (raw - PLAIN_HEAD) % REC_LEN)
		goto out;
	if (!(plain = malloc(raw))) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	if (blob_decode(&r->keys, obj.p + 8, obj.p + HEAD_LEN,
			obj.len - HEAD_LEN, plain, raw, &scratch)) {
		rc = snap_seterr(SNAP_ECORRUPT, "%s: does not authenticate",
				 key);
		goto out;
	}
	memcpy(name, plain + TOKEN_LEN, SERIES_MAX);
	name[SERIES_MAX] = 0;
	count = get_u32le(plain + TOKEN_LEN + SERIES_MAX + 4);
	if (memcmp(plain, tok, TOKEN_LEN) || strcmp(name, series) ||
	    get_u32le(plain + TOKEN_LEN + SERIES_MAX) != num ||
	    (uint64_t)count * REC_LEN != raw - PLAIN_HEAD) {
		rc = snap_seterr(SNAP_ECORRUPT, "%s: is not the one its "
				 "manifest names", key);
		goto out;
	}
	rc = 0;
	if (lock)
		pthread_mutex_lock(lock);
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		const uint8_t *p = plain + PLAIN_HEAD + (size_t)i * REC_LEN;
		struct ref e;

		memcpy(e.pack, p, PACK_ID_LEN);
		memcpy(e.id, p + PACK_ID_LEN, ID_LEN);
		e.off = get_u32le(p + PACK_ID_LEN + ID_LEN);
		e.len = get_u32le(p + PACK_ID_LEN + ID_LEN + 4);
		e.raw = get_u32le(p + PACK_ID_LEN + ID_LEN + 8);
		if (e.raw == UINT32_MAX)
			continue; /* the index's empty mark */
		rc = index_put(ix, &e);
	}
	if (lock)
		pthread_mutex_unlock(lock);
out:
	free(plain);
	buf_free(&obj);
	buf_free(&scratch);
	return rc;
}
