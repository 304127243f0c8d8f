/* crypto.c - key derivation, AES-GCM and MACs over OpenSSL; see crypto.h. */
#include "config.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include "crypto.h"
#include "err.h"
#include "util.h"

static int hkdf(const uint8_t *key, size_t keylen, const char *salt,
		const char *info, uint8_t *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[5], *p = params;
	int rc = SNAP_EIO;

	if (!kdf)
		goto out;
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)key, keylen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						 (void *)salt, strlen(salt));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
						 (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, params) == 1)
		rc = 0;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	if (rc)
		snap_seterr(rc, "key derivation failed");
	return rc;
}

int keys_derive(struct keys *k, const uint8_t *master, size_t len,
		const char *salt)
{
	memset(k, 0, sizeof(*k));
	if (len != 16 && len != 24 && len != 32)
		return snap_seterr(SNAP_EKEY,
				   "encryption key must be 16, 24 or 32 bytes "
				   "(AES-128/192/256), got %zu",
				   len);
	k->encrypted = 1;
	k->enc_len = len;
	SNAP_TRY(hkdf(master, len, salt, "snapfs enc", k->enc, len));
	SNAP_TRY(hkdf(master, len, salt, "snapfs id", k->id, 32));
	SNAP_TRY(hkdf(master, len, salt, "snapfs mac", k->mac, 32));
	SNAP_TRY(hkdf(master, len, salt, "snapfs gear", k->gear, 32));
	return 0;
}

void keys_plain(struct keys *k)
{
	memset(k, 0, sizeof(*k));
}

void keys_wipe(struct keys *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

void sha256(const void *data, size_t n, uint8_t out[32])
{
	SHA256(data, n, out);
}

void hmac_sha256(const uint8_t *key, size_t keylen, const void *data,
		 size_t n, uint8_t out[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len);
}

void chunk_id(const struct keys *k, const void *data, size_t n,
	      uint8_t out[ID_LEN])
{
	if (k->encrypted)
		hmac_sha256(k->id, sizeof(k->id), data, n, out);
	else
		sha256(data, n, out);
}

static const EVP_CIPHER *gcm_cipher(size_t keylen)
{
	switch (keylen) {
	case 16: return EVP_aes_128_gcm();
	case 24: return EVP_aes_192_gcm();
	case 32: return EVP_aes_256_gcm();
	}
	return NULL;
}

int gcm_seal(const uint8_t *key, size_t keylen, const void *aad,
	     size_t aadlen, const void *pt, size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t *nonce = out, *ct = out + GCM_NONCE_LEN;
	int len, rc = SNAP_EIO;

	if (!ctx || n > INT32_MAX)
		goto out;
	if (random_bytes(nonce, GCM_NONCE_LEN))
		goto out;
	if (EVP_EncryptInit_ex(ctx, gcm_cipher(keylen), NULL, key, nonce) != 1)
		goto out;
	if (aadlen && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1)
		goto out;
	if (EVP_EncryptUpdate(ctx, ct, &len, pt, (int)n) != 1)
		goto out;
	if (EVP_EncryptFinal_ex(ctx, ct + len, &len) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN,
				ct + n) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (rc)
		snap_seterr(rc, "encryption failed");
	return rc;
}

int gcm_open(const uint8_t *key, size_t keylen, const void *aad,
	     size_t aadlen, const void *in, size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	const uint8_t *nonce = in, *ct = nonce + GCM_NONCE_LEN;
	size_t ctlen;
	int len, rc = SNAP_ECORRUPT;

	if (n < SEAL_OVERHEAD || n - SEAL_OVERHEAD > INT32_MAX)
		return SNAP_ECORRUPT;
	ctlen = n - SEAL_OVERHEAD;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	if (EVP_DecryptInit_ex(ctx, gcm_cipher(keylen), NULL, key, nonce) != 1)
		goto out;
	if (aadlen && EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1)
		goto out;
	if (EVP_DecryptUpdate(ctx, out, &len, ct, (int)ctlen) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN,
				(void *)(ct + ctlen)) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, out + len, &len) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int kdf_scrypt(const char *pass, size_t passlen,
	       const struct scrypt_params *sp, uint8_t out[32])
{
	/* 128 * N * r bytes plus slack; refuse parameters that would need
	 * more than 1 GiB rather than let a hostile config exhaust memory. */
	uint64_t maxmem = 128 * sp->N * sp->r + (1 << 20);

	if (sp->N < 2 || (sp->N & (sp->N - 1)) || sp->r == 0 || sp->p == 0 ||
	    maxmem > (1ULL << 30))
		return snap_seterr(SNAP_ECORRUPT,
				   "unsupported scrypt parameters");
	if (EVP_PBE_scrypt(pass, passlen, sp->salt, sizeof(sp->salt), sp->N,
			   sp->r, sp->p, maxmem, out, 32) != 1)
		return snap_seterr(SNAP_EIO, "scrypt failed");
	return 0;
}

int ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
