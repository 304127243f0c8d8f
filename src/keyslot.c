/* keyslot.c - the secrets that open a repository; see keyslot.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "err.h"
#include "keyslot.h"
#include "util.h"

#define SCRYPT_N 32768
#define SCRYPT_R 8
#define SCRYPT_P 1
#define KEY_CHECK_MSG "snapfs key check"
#define SLOT_FORMAT 3 /* snapfs.json version that has slots */

static json_t *hexj(const uint8_t *p, size_t n)
{
	char h[2 * 64 + 1];

	hex_encode(p, n, h);
	return json_string(h);
}

/* A hex field of n bytes, or of any length up to cap (n == 0: *got). */
static int hexget(json_t *o, const char *name, uint8_t *out, size_t n,
		  size_t cap, size_t *got)
{
	const char *s = json_string_value(json_object_get(o, name));
	size_t len = s ? strlen(s) / 2 : 0;

	if (!s || strlen(s) % 2 || (n && len != n) || (!n && len > cap) ||
	    hex_decode(s, out, len))
		return -1;
	if (got)
		*got = len;
	return 0;
}

static void slot_aad(const char *repo_id, const char *slot, char *aad,
		     size_t n)
{
	if (*slot)
		snprintf(aad, n, "snapfs master key %s slot %s", repo_id, slot);
	else
		snprintf(aad, n, "snapfs master key %s", repo_id);
}

/* key_check: HMAC-SHA-256(mac subkey, "snapfs key check"). */
static int key_check(const char *id, const uint8_t *master, size_t mlen,
		     uint8_t kc[32])
{
	struct keys k;

	SNAP_TRY(keys_derive(&k, master, mlen, id));
	hmac_sha256(k.mac, 32, KEY_CHECK_MSG, strlen(KEY_CHECK_MSG), kc);
	keys_wipe(&k);
	return 0;
}

/* Whether master passes the repository's key check. */
static int checks(const char *id, const uint8_t *master, size_t mlen,
		  const uint8_t want[32])
{
	uint8_t kc[32];

	return key_check(id, master, mlen, kc) == 0 && ct_equal(kc, want, 32);
}

static int read_kdf(json_t *o, struct scrypt_params *sp)
{
	json_t *kdf = json_object_get(o, "kdf");

	if (!json_is_integer(json_object_get(kdf, "N")) ||
	    !json_is_integer(json_object_get(kdf, "r")) ||
	    !json_is_integer(json_object_get(kdf, "p")) ||
	    hexget(kdf, "salt", sp->salt, 16, 0, NULL))
		return snap_seterr(SNAP_ECORRUPT,
				   "snapfs.json: bad kdf parameters");
	sp->N = json_integer_value(json_object_get(kdf, "N"));
	sp->r = json_integer_value(json_object_get(kdf, "r"));
	sp->p = json_integer_value(json_object_get(kdf, "p"));
	return 0;
}

/* Unwraps o's wrapped_key under kek; 1 when it opens and checks. */
static int unwrap(const char *id, const char *slot, json_t *o,
		  const uint8_t kek[32], const uint8_t want[32],
		  uint8_t master[32], size_t *mlen)
{
	uint8_t wrapped[32 + SEAL_OVERHEAD];
	size_t n = 0;
	char aad[128];

	if (hexget(o, "wrapped_key", wrapped, 0, sizeof(wrapped), &n) ||
	    n < 16 + SEAL_OVERHEAD)
		return 0;
	slot_aad(id, slot, aad, sizeof(aad));
	if (gcm_open(kek, 32, aad, strlen(aad), wrapped, n, master))
		return 0;
	*mlen = n - SEAL_OVERHEAD;
	return (*mlen == 16 || *mlen == 24 || *mlen == 32) &&
	       checks(id, master, *mlen, want);
}

static int open_by_pass(const char *id, const char *slot, json_t *o,
			const char *pass, const uint8_t want[32],
			uint8_t master[32], size_t *mlen)
{
	struct scrypt_params sp;
	uint8_t kek[32];
	int ok;

	SNAP_TRY(read_kdf(o, &sp));
	SNAP_TRY(kdf_scrypt(pass, strlen(pass), &sp, kek));
	ok = unwrap(id, slot, o, kek, want, master, mlen);
	OPENSSL_cleanse(kek, sizeof(kek));
	return ok;
}

static void slot_kek(const uint8_t *key, size_t n, const char *slot,
		     uint8_t kek[32])
{
	char info[64];

	snprintf(info, sizeof(info), "snapfs slot %s", slot);
	hmac_sha256(key, n, info, strlen(info), kek);
}

struct secrets {
	char *pass;          /* or NULL */
	uint8_t key[2][32];  /* the key file's readings */
	size_t klen[2];
	int nkeys;
};

static void secrets_wipe(struct secrets *s)
{
	free_secret(s->pass);
	OPENSSL_cleanse(s->key, sizeof(s->key));
}

/* The secrets given, each loaded once however many slots are tried. */
static int load_secrets(const struct open_opts *ko, struct secrets *s)
{
	memset(s, 0, sizeof(*s));
	if (keysrc_given(&ko->pass))
		SNAP_TRY(keysrc_pass(&ko->pass, &s->pass));
	if (keysrc_given(&ko->key))
		SNAP_TRY(keysrc_keys(&ko->key, s->key, s->klen, &s->nkeys));
	return 0;
}

/* Tries the slots of enc with the secrets; 1 when one opens. */
static int try_slots(const char *id, json_t *enc, const struct secrets *s,
		     const uint8_t want[32], uint8_t master[32], size_t *mlen,
		     char slot[SLOT_ID_LEN + 1])
{
	json_t *slots = json_object_get(enc, "slots"), *o;
	size_t i;

	json_array_foreach(slots, i, o) {
		const char *sid = json_string_value(json_object_get(o, "id"));
		const char *kind = json_string_value(json_object_get(o, "kind"));
		int ok = 0;

		if (!sid || strlen(sid) != SLOT_ID_LEN || !kind)
			continue;
		/* A slot this snapfs cannot read (a malformed kdf) is no
		 * reason not to try the others. */
		if (!strcmp(kind, "passphrase") && s->pass)
			ok = open_by_pass(id, sid, o, s->pass, want, master,
					  mlen) > 0;
		for (int k = 0; !ok && !strcmp(kind, "keyfile") &&
				k < s->nkeys; k++) {
			uint8_t kek[32];

			slot_kek(s->key[k], s->klen[k], sid, kek);
			ok = unwrap(id, sid, o, kek, want, master, mlen);
			OPENSSL_cleanse(kek, sizeof(kek));
		}
		if (ok) {
			snprintf(slot, SLOT_ID_LEN + 1, "%s", sid);
			return 1;
		}
	}
	return 0;
}

static json_t *find_slot(json_t *enc, const char *id, size_t *at);

static int slot_is_pass(json_t *enc, const char *slot)
{
	const char *k = json_string_value(
		json_object_get(find_slot(enc, slot, NULL), "kind"));

	return k && !strcmp(k, "passphrase");
}

static int has_slot_kind(json_t *enc, const char *kind)
{
	json_t *o;
	size_t i;

	json_array_foreach(json_object_get(enc, "slots"), i, o) {
		const char *k = json_string_value(json_object_get(o, "kind"));

		if (k && !strcmp(k, kind))
			return 1;
	}
	return 0;
}

int keyslot_unlock(const char *id, const char *url, json_t *enc,
		   const struct open_opts *ko, uint8_t master[32],
		   size_t *mlen, char slot[SLOT_ID_LEN + 1], int *by_pass)
{
	const char *kind = json_string_value(json_object_get(enc, "key"));
	uint8_t want[32];
	struct secrets s;
	int rc, ok = 0, primary_pass;

	slot[0] = 0;
	if (hexget(enc, "key_check", want, 32, 0, NULL) || !kind ||
	    (strcmp(kind, "passphrase") && strcmp(kind, "keyfile")))
		return snap_seterr(kind && strcmp(kind, "passphrase") &&
						   strcmp(kind, "keyfile")
					   ? SNAP_EUNSUPP
					   : SNAP_ECORRUPT,
				   "snapfs.json: bad encryption section");
	primary_pass = !strcmp(kind, "passphrase");
	/* No secret of a kind anything here takes: say which is wanted. */
	if ((!keysrc_given(&ko->pass) && !keysrc_given(&ko->key)) ||
	    (!keysrc_given(&ko->pass) && primary_pass &&
	     !has_slot_kind(enc, "keyfile")) ||
	    (!keysrc_given(&ko->key) && !primary_pass &&
	     !has_slot_kind(enc, "passphrase")))
		return snap_seterr(
			SNAP_EKEY, primary_pass
				? "repository is encrypted with a passphrase: "
				  "give --password-file or --password-command "
				  "(SNAPFS_PASSWORD_FILE, SNAPFS_PASSWORD_COMMAND)"
				: "repository is encrypted with a key file: give "
				  "--encryption-key-file or --key-command "
				  "(SNAPFS_KEY_FILE, SNAPFS_KEY_COMMAND)");
	rc = load_secrets(ko, &s);
	if (rc)
		goto out;
	if (primary_pass && s.pass)
		ok = open_by_pass(id, "", enc, s.pass, want, master, mlen);
	*by_pass = ok > 0;
	/* The key file of a keyfile repository is the master key; of two
	 * readings of it, the key check picks. */
	for (int k = 0; ok == 0 && !primary_pass && k < s.nkeys; k++)
		if (checks(id, s.key[k], s.klen[k], want)) {
			memcpy(master, s.key[k], s.klen[k]);
			*mlen = s.klen[k];
			ok = 1;
		}
	if (ok == 0) {
		ok = try_slots(id, enc, &s, want, master, mlen, slot);
		*by_pass = ok > 0 && slot_is_pass(enc, slot);
	}
	if (ok < 0)
		rc = ok;
	else if (!ok)
		rc = snap_seterr(SNAP_EKEY, "wrong %s for repository %s",
				 s.pass && !s.nkeys ? "passphrase"
				 : s.pass ? "passphrase or encryption key"
					  : "encryption key",
				 url);
out:
	secrets_wipe(&s);
	return rc;
}

/* --- changes -------------------------------------------------------------*/


/* A new secret, read once: a command that prompts is asked once, and
 * what is wrapped is what is then proved to open. */
struct newsec {
	char *pass;     /* or */
	uint8_t key[32];
	size_t klen;
};

static int newsec_load(const struct key_source *pass,
		       const struct key_source *key, struct newsec *n)
{
	memset(n, 0, sizeof(*n));
	return pass ? keysrc_pass(pass, &n->pass)
		    : keysrc_key(key, n->key, &n->klen);
}

static void newsec_wipe(struct newsec *n)
{
	free_secret(n->pass);
	OPENSSL_cleanse(n, sizeof(*n));
}

/* The key encryption key of secret n for slot: scrypt under o's kdf (a
 * new salt when fresh), or the HMAC of a key. */
static int newsec_kek(const struct newsec *n, json_t *o, const char *slot,
		      int fresh, uint8_t kek[32])
{
	struct scrypt_params sp = {SCRYPT_N, SCRYPT_R, SCRYPT_P, {0}};

	if (!n->pass) {
		slot_kek(n->key, n->klen, slot, kek);
		return 0;
	}
	if (!fresh)
		SNAP_TRY(read_kdf(o, &sp));
	else if (random_bytes(sp.salt, sizeof(sp.salt)) ||
		 json_object_set_new(o, "kdf", json_pack(
			"{s:s,s:I,s:i,s:i,s:o}", "name", "scrypt", "N",
			(json_int_t)sp.N, "r", (int)sp.r, "p", (int)sp.p,
			"salt", hexj(sp.salt, 16))))
		return snap_seterr(SNAP_ENOMEM, "cannot make a kdf salt");
	return kdf_scrypt(n->pass, strlen(n->pass), &sp, kek);
}

/* Wraps master (mlen bytes) of repository id under secret n into o's kdf
 * and wrapped_key, then proves that n opens o again: nothing is written
 * that the new secret would not open. */
static int wrap_into(const char *id, const uint8_t *master, size_t mlen,
		     const struct newsec *n, json_t *o, const char *slot)
{
	uint8_t kek[32], wrapped[32 + SEAL_OVERHEAD], want[32], got[32];
	size_t glen = 0;
	char aad[128];
	int rc;

	rc = newsec_kek(n, o, slot, 1, kek);
	if (rc == 0) {
		slot_aad(id, slot, aad, sizeof(aad));
		rc = gcm_seal(kek, 32, aad, strlen(aad), master, mlen, wrapped);
	}
	if (rc == 0 &&
	    json_object_set_new(o, "wrapped_key",
				hexj(wrapped, mlen + SEAL_OVERHEAD)))
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	OPENSSL_cleanse(kek, sizeof(kek));
	rc = rc ? rc : key_check(id, master, mlen, want);
	rc = rc ? rc : newsec_kek(n, o, slot, 0, kek);
	if (rc == 0 && !(unwrap(id, slot, o, kek, want, got, &glen) &&
			 glen == mlen && ct_equal(got, master, mlen)))
		rc = snap_seterr(SNAP_EIO, "the new secret does not open what "
				 "was wrapped: nothing written");
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(got, sizeof(got));
	return rc;
}

struct change {
	struct repo *r;
	struct newsec n;
	const char *remove;
	char id[SLOT_ID_LEN + 1];
};

static const char *cipher_name(size_t keylen)
{
	return keylen == 16 ? "aes-128-gcm"
	       : keylen == 24 ? "aes-192-gcm"
			      : "aes-256-gcm";
}

int keyslot_create(const char *id, const struct open_opts *ko, json_t **out)
{
	uint8_t master[32], kc[32];
	size_t mlen = 32;
	json_t *enc = NULL;
	int pass = !keysrc_given(&ko->key), rc;

	*out = NULL;
	if (!keysrc_given(&ko->key) && !keysrc_given(&ko->pass))
		return snap_seterr(SNAP_EKEY, "an encrypted repository needs "
				   "--encryption-key-file, --key-command, "
				   "--password-file or --password-command "
				   "(or --no-encryption)");
	/* A key file is the master key; a passphrase wraps a random one. */
	rc = pass ? random_bytes(master, 32)
		  : keysrc_key(&ko->key, master, &mlen);
	if (rc == 0 && !(enc = json_pack("{s:s,s:s}", "cipher",
					 cipher_name(mlen), "key",
					 pass ? "passphrase" : "keyfile")))
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	if (rc == 0 && pass) {
		struct newsec n;

		rc = newsec_load(&ko->pass, NULL, &n);
		rc = rc ? rc : wrap_into(id, master, mlen, &n, enc, "");
		newsec_wipe(&n);
	}
	if (rc == 0) {
		rc = key_check(id, master, mlen, kc);
		if (rc == 0 && json_object_set_new(enc, "key_check",
						   hexj(kc, 32)))
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	OPENSSL_cleanse(master, sizeof(master));
	if (rc) {
		json_decref(enc);
		return rc;
	}
	*out = enc;
	return 0;
}

static json_t *slots_of(json_t *enc)
{
	json_t *slots = json_object_get(enc, "slots");

	if (!json_is_array(slots)) {
		slots = json_array();
		if (json_object_set_new(enc, "slots", slots))
			return NULL;
	}
	return slots;
}

static int raise_version(json_t *cfg)
{
	json_t *v = json_object_get(cfg, "version");

	if (json_integer_value(v) < SLOT_FORMAT &&
	    json_object_set_new(cfg, "version", json_integer(SLOT_FORMAT)))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	return 0;
}

static int do_add(json_t *cfg, void *ctx)
{
	struct change *c = ctx;
	json_t *enc = json_object_get(cfg, "encryption");
	json_t *slots = slots_of(enc), *o;
	uint8_t rnd[SLOT_ID_LEN / 2];
	char created[40];
	int rc;

	if (!slots)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	SNAP_TRY(random_bytes(rnd, sizeof(rnd)));
	hex_encode(rnd, sizeof(rnd), c->id);
	format_time(now_ns(), created);
	o = json_pack("{s:s,s:s,s:s}", "id", c->id, "kind",
		      c->n.pass ? "passphrase" : "keyfile", "created", created);
	if (!o)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	rc = wrap_into(c->r->id, c->r->master, c->r->master_len, &c->n, o,
		       c->id);
	if (rc == 0 && json_array_append_new(slots, o))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	if (rc)
		json_decref(o);
	return rc ? rc : raise_version(cfg);
}

static int encrypted(struct repo *r)
{
	if (!r->keys.encrypted)
		return snap_seterr(SNAP_EINVAL, "%s is not encrypted: it has "
				   "no keys to manage", r->st->url);
	return 0;
}

int keyslot_add(struct repo *r, const struct key_source *pass,
		const struct key_source *key, char id[SLOT_ID_LEN + 1])
{
	struct change c = {.r = r};
	int rc;

	SNAP_TRY(encrypted(r));
	SNAP_TRY(newsec_load(pass, key, &c.n));
	rc = repo_update_config(r, do_add, &c);
	newsec_wipe(&c.n);
	if (rc == 0)
		memcpy(id, c.id, SLOT_ID_LEN + 1);
	return rc;
}

static json_t *find_slot(json_t *enc, const char *id, size_t *at)
{
	json_t *o;
	size_t i;

	json_array_foreach(json_object_get(enc, "slots"), i, o) {
		const char *s = json_string_value(json_object_get(o, "id"));

		if (s && !strcmp(s, id)) {
			if (at)
				*at = i;
			return o;
		}
	}
	return NULL;
}

static int do_passwd(json_t *cfg, void *ctx)
{
	struct change *c = ctx;
	json_t *enc = json_object_get(cfg, "encryption");
	json_t *o = c->r->slot[0] ? find_slot(enc, c->r->slot, NULL) : enc;

	if (!o)
		return snap_seterr(SNAP_ENOENT, "the slot that opened the "
				   "repository is gone");
	return wrap_into(c->r->id, c->r->master, c->r->master_len, &c->n, o,
			 c->r->slot);
}

int keyslot_passwd(struct repo *r, const struct key_source *pass)
{
	struct change c = {.r = r};
	int rc;

	SNAP_TRY(encrypted(r));
	if (!r->opened_by_pass)
		return snap_seterr(SNAP_EINVAL, "the repository was opened "
				   "with a key file, not a passphrase: add a "
				   "passphrase with 'snapctl key add'");
	SNAP_TRY(newsec_load(pass, NULL, &c.n));
	rc = repo_update_config(r, do_passwd, &c);
	newsec_wipe(&c.n);
	return rc;
}

static int do_remove(json_t *cfg, void *ctx)
{
	struct change *c = ctx;
	json_t *enc = json_object_get(cfg, "encryption");
	size_t at;

	if (!find_slot(enc, c->remove, &at))
		return snap_seterr(SNAP_ENOENT, "%s has no key slot %s",
				   c->r->st->url, c->remove);
	if (json_array_remove(json_object_get(enc, "slots"), at))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	return 0;
}

int keyslot_remove(struct repo *r, const char *id)
{
	struct change c = {.r = r, .remove = id};

	SNAP_TRY(encrypted(r));
	return repo_update_config(r, do_remove, &c);
}

static int do_list(json_t *cfg, void *ctx)
{
	json_t **out = ctx, *enc = json_object_get(cfg, "encryption"), *o;
	json_t *slots = json_array();
	size_t i;

	json_array_foreach(json_object_get(enc, "slots"), i, o)
		json_array_append_new(slots, json_pack(
			"{s:s?,s:s?,s:s?}", "id",
			json_string_value(json_object_get(o, "id")), "kind",
			json_string_value(json_object_get(o, "kind")), "created",
			json_string_value(json_object_get(o, "created"))));
	*out = json_pack("{s:s?,s:o}", "primary",
			 json_string_value(json_object_get(enc, "key")),
			 "slots", slots);
	if (!*out)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	return 1; /* nothing to write */
}

int keyslot_list(struct repo *r, json_t **out)
{
	int rc;

	*out = NULL;
	SNAP_TRY(encrypted(r));
	rc = repo_update_config(r, do_list, out);
	if (rc == 0 &&
	    json_object_set_new(*out, "opened_with", json_string(r->slot)))
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	return rc;
}
