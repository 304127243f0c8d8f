/*
 * blob.h - how one chunk (or directory object, or pack trailer) is stored.
 *
 * Plaintext P of id I is compressed with LZ4 when that shrinks it, prefixed
 * with a one-byte codec flag, and, in an encrypted repository, sealed with
 * AES-GCM under the enc key with I as associated data:
 *
 *   plain:      flag || body
 *   encrypted:  nonce(12) || GCM(flag || body) || tag(16)      aad = I
 *
 * Decoding authenticates before anything is returned: the GCM tag (which
 * also binds the blob to the id it is fetched under), or SHA-256(P) == I in
 * a plain repository.  A mismatch is SNAP_ECORRUPT, never wrong data.
 */
#ifndef SNAPFS_BLOB_H
#define SNAPFS_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "util.h"

#define BLOB_RAW 0
#define BLOB_LZ4 1

/* The most blob_encode() appends for n bytes of plaintext. */
size_t blob_bound(size_t n);

/* Appends the encoded blob to out.  Returns 0 or a snap_err. */
int blob_encode(const struct keys *k, const uint8_t id[ID_LEN],
		const void *raw, size_t n, struct buf *out);

/* Decodes n bytes into out, which must hold raw_len bytes.  scratch is
 * reused between calls to avoid an allocation per chunk.  Returns 0,
 * SNAP_ECORRUPT (message names nothing: the caller adds the object), or
 * SNAP_ENOMEM. */
int blob_decode(const struct keys *k, const uint8_t id[ID_LEN],
		const void *enc, size_t n, uint8_t *out, size_t raw_len,
		struct buf *scratch);

#endif
