/* blob.c - compress, seal, open and verify one stored blob; see blob.h. */
#include "config.h"

#include <string.h>

#include <lz4.h>

#include "blob.h"
#include "err.h"

size_t blob_bound(size_t n)
{
	return 1 + (size_t)LZ4_compressBound((int)n) + SEAL_OVERHEAD;
}

int blob_encode(const struct keys *k, const uint8_t id[ID_LEN],
		const void *raw, size_t n, struct buf *out)
{
	/* Encrypted, the body is built where its ciphertext goes (after the
	 * nonce) and sealed in place: no second buffer, no extra pass. */
	size_t start = out->len, blen;
	uint8_t *body;
	int bound, clen;

	if (n > LZ4_MAX_INPUT_SIZE)
		return snap_seterr(SNAP_EINVAL, "blob too large (%zu bytes)",
				   n);
	bound = LZ4_compressBound((int)n);
	SNAP_TRY(buf_reserve(out, blob_bound(n)));
	body = out->p + start + (k->encrypted ? GCM_NONCE_LEN : 0);
	clen = LZ4_compress_default(raw, (char *)body + 1, (int)n, bound);
	if (clen > 0 && (size_t)clen < n) {
		body[0] = BLOB_LZ4;
		blen = 1 + (size_t)clen;
	} else {
		body[0] = BLOB_RAW;
		memcpy(body + 1, raw, n);
		blen = 1 + n;
	}
	if (!k->encrypted) {
		out->len = start + blen;
		return 0;
	}
	SNAP_TRY(gcm_seal(k->enc, k->enc_len, id, ID_LEN, body, blen,
			  out->p + start));
	out->len = start + blen + SEAL_OVERHEAD;
	return 0;
}

int blob_decode(const struct keys *k, const uint8_t id[ID_LEN],
		const void *enc, size_t n, uint8_t *out, size_t raw_len,
		struct buf *scratch)
{
	const uint8_t *body = enc;
	size_t blen = n;
	uint8_t check[ID_LEN];

	if (k->encrypted) {
		if (n < SEAL_OVERHEAD + 1)
			return SNAP_ECORRUPT;
		scratch->len = 0;
		SNAP_TRY(buf_reserve(scratch, n));
		if (gcm_open(k->enc, k->enc_len, id, ID_LEN, enc, n,
			     scratch->p))
			return SNAP_ECORRUPT;
		body = scratch->p;
		blen = n - SEAL_OVERHEAD;
	}
	if (blen < 1 || raw_len > INT32_MAX)
		return SNAP_ECORRUPT;
	switch (body[0]) {
	case BLOB_RAW:
		if (blen - 1 != raw_len)
			return SNAP_ECORRUPT;
		memmove(out, body + 1, raw_len);
		break;
	case BLOB_LZ4:
		if (blen - 1 > INT32_MAX ||
		    LZ4_decompress_safe((const char *)body + 1, (char *)out,
					(int)(blen - 1),
					(int)raw_len) != (int)raw_len)
			return SNAP_ECORRUPT;
		break;
	default:
		return SNAP_ECORRUPT;
	}
	if (!k->encrypted) {
		sha256(out, raw_len, check);
		if (memcmp(check, id, ID_LEN) != 0)
			return SNAP_ECORRUPT;
	}
	return 0;
}
