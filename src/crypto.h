/*
 * crypto.h - the repository's keys and the primitives built on them.
 *
 * A repository is either plain or encrypted.  An encrypted one has a master
 * key of 16, 24 or 32 bytes: the raw contents of a key file (as Dgraph's
 * --encryption_key_file) or a random 32-byte key wrapped under a passphrase
 * with scrypt + AES-256-GCM.  From the master key HKDF-SHA-256 derives
 * independent subkeys, salted with the repository id:
 *
 *   enc   AES-GCM key of the master key's length (AES-128/192/256)
 *   id    HMAC-SHA-256 key for chunk ids (content ids leak nothing)
 *   mac   HMAC-SHA-256 key for manifests and the key check
 *   gear  seed of the chunker's gear table (boundaries leak nothing)
 *
 * A plain repository has chunk ids SHA-256(plaintext) and no MACs.
 * struct keys holds secrets: keys_wipe() clears it; nothing here logs.
 */
#ifndef SNAPFS_CRYPTO_H
#define SNAPFS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define ID_LEN 32
#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN 16
#define SEAL_OVERHEAD (GCM_NONCE_LEN + GCM_TAG_LEN)

struct keys {
	int encrypted;
	size_t enc_len; /* 16, 24 or 32 */
	uint8_t enc[32];
	uint8_t id[32];
	uint8_t mac[32];
	uint8_t gear[32];
};

/* Derives all subkeys from a master key (16/24/32 bytes).  salt is the
 * repository id.  Returns 0 or SNAP_EINVAL / SNAP_EIO. */
int keys_derive(struct keys *k, const uint8_t *master, size_t len,
		const char *salt);

void keys_plain(struct keys *k);
void keys_wipe(struct keys *k);

/* Chunk id: HMAC-SHA-256(id key, data) when encrypted, else SHA-256. */
void chunk_id(const struct keys *k, const void *data, size_t n,
	      uint8_t out[ID_LEN]);

void sha256(const void *data, size_t n, uint8_t out[32]);
void hmac_sha256(const uint8_t *key, size_t keylen, const void *data,
		 size_t n, uint8_t out[32]);

/* AES-GCM with a fresh random nonce: out receives nonce || ct || tag
 * (n + SEAL_OVERHEAD bytes).  aad is authenticated, not stored.  pt may
 * be out + GCM_NONCE_LEN (sealing in place); no other overlap. */
int gcm_seal(const uint8_t *key, size_t keylen, const void *aad,
	     size_t aadlen, const void *pt, size_t n, uint8_t *out);

/* Inverse of gcm_seal: in holds n bytes (nonce || ct || tag), out receives
 * n - SEAL_OVERHEAD bytes.  SNAP_ECORRUPT when authentication fails (wrong
 * key, flipped byte, wrong aad); the message is left to the caller, who
 * knows which object it was. */
int gcm_open(const uint8_t *key, size_t keylen, const void *aad,
	     size_t aadlen, const void *in, size_t n, uint8_t *out);

/* scrypt(passphrase) -> 32-byte key encryption key. */
struct scrypt_params {
	uint64_t N;
	uint32_t r, p;
	uint8_t salt[16];
};
int kdf_scrypt(const char *pass, size_t passlen,
	       const struct scrypt_params *sp, uint8_t out[32]);

/* Constant-time comparison. */
int ct_equal(const void *a, const void *b, size_t n);

#endif
