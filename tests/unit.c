/*
 * unit.c - cmocka unit tests for the format pieces of libsnapfs: chunker,
 * blob codec, crypto, pack trailer, tree codec, manifest validation,
 * labels, chunk index.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "blob.h"
#include "bufpool.h"
#include "chunker.h"
#include "cred.h"
#include "crypto.h"
#include "err.h"
#include "exclude.h"
#include "http.h"
#include "index.h"
#include "itab.h"
#include "manifest.h"
#include "pack.h"
#include "retention.h"
#include "sigv4.h"
#include "store.h"
#include "tree.h"
#include "util.h"

static uint8_t *rand_data(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n);
	uint64_t x = seed * 2654435761u + 1;

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x >> 24;
	}
	return p;
}

/* Cuts a whole buffer into chunks and returns their ids. */
static size_t chunk_all(const struct chunker *c, const uint8_t *p, size_t n,
			uint8_t (*ids)[32], size_t max, size_t *sizes)
{
	size_t k = 0;
	struct keys plain;

	keys_plain(&plain);
	while (n && k < max) {
		size_t cut = chunker_cut(c, p, n, 1);

		assert_true(cut > 0 && cut <= n);
		chunk_id(&plain, p, cut, ids[k]);
		if (sizes)
			sizes[k] = cut;
		k++;
		p += cut;
		n -= cut;
	}
	return k;
}

static void test_chunker_sizes(void **state)
{
	struct chunker c;
	uint8_t seed[32] = {1};
	size_t n = 64u << 20, sizes[256], k;
	uint8_t (*ids)[32] = malloc(256 * 32);
	uint8_t *data = rand_data(n, 7);
	uint64_t total = 0;

	(void)state;
	assert_int_equal(chunker_init(&c, seed, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX), 0);
	k = chunk_all(&c, data, n, ids, 256, sizes);
	for (size_t i = 0; i < k; i++) {
		if (i + 1 < k)
			assert_true(sizes[i] >= CHUNK_MIN);
		assert_true(sizes[i] <= CHUNK_MAX);
		total += sizes[i];
	}
	assert_int_equal(total, n);
	/* Normalised chunking keeps the mean near the target (1 MiB). */
	assert_true(n / k > 700u << 10 && n / k < 1600u << 10);
	free(ids);
	free(data);
}

static void test_chunker_insertion(void **state)
{
	struct chunker c;
	uint8_t seed[32] = {9};
	size_t n = 32u << 20, ka, kb, shared = 0;
	uint8_t (*a)[32] = malloc(128 * 32), (*b)[32] = malloc(128 * 32);
	uint8_t *data = rand_data(n, 3), *edited = malloc(n + 10);

	(void)state;
	assert_int_equal(chunker_init(&c, seed, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX), 0);
	/* Ten bytes inserted 100 KiB into the file. */
	memcpy(edited, data, 100 << 10);
	memset(edited + (100 << 10), 'X', 10);
	memcpy(edited + (100 << 10) + 10, data + (100 << 10), n - (100 << 10));
	ka = chunk_all(&c, data, n, a, 128, NULL);
	kb = chunk_all(&c, edited, n + 10, b, 128, NULL);
	for (size_t i = 0; i < kb; i++)
		for (size_t j = 0; j < ka; j++)
			if (!memcmp(b[i], a[j], 32)) {
				shared++;
				break;
			}
	/* All but the chunk or two around the edit survive. */
	assert_true(shared + 2 >= ka);
	free(a);
	free(b);
	free(data);
	free(edited);
}

static void test_chunker_seed_matters(void **state)
{
	struct chunker c1, c2;
	uint8_t s1[32] = {1}, s2[32] = {2};
	uint8_t *data = rand_data(8u << 20, 5);

	(void)state;
	chunker_init(&c1, s1, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX);
	chunker_init(&c2, s2, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX);
	assert_int_not_equal(chunker_cut(&c1, data, 8u << 20, 1),
			     chunker_cut(&c2, data, 8u << 20, 1));
	assert_int_equal(chunker_init(&c1, s1, 100, 1000, 5000), SNAP_EINVAL);
	free(data);
}

static void keys_for(struct keys *k, size_t len)
{
	uint8_t master[32];

	memset(master, 0x5a, sizeof(master));
	assert_int_equal(keys_derive(k, master, len, "repo-id"), 0);
}

static void roundtrip(const struct keys *k, const uint8_t *data, size_t n)
{
	struct buf enc = BUF_INIT, scratch = BUF_INIT;
	uint8_t id[ID_LEN], *out = malloc(n + 1);

	chunk_id(k, data, n, id);
	assert_int_equal(blob_encode(k, id, data, n, &enc), 0);
	assert_int_equal(blob_decode(k, id, enc.p, enc.len, out, n, &scratch), 0);
	assert_memory_equal(out, data, n);
	/* Every single flipped byte is caught. */
	for (size_t i = 0; i < enc.len; i += enc.len / 7 + 1) {
		enc.p[i] ^= 0x10;
		assert_int_equal(blob_decode(k, id, enc.p, enc.len, out, n, &scratch),
				 SNAP_ECORRUPT);
		enc.p[i] ^= 0x10;
	}
	/* The blob is bound to its id. */
	id[0] ^= 1;
	assert_int_equal(blob_decode(k, id, enc.p, enc.len, out, n, &scratch),
			 SNAP_ECORRUPT);
	buf_free(&enc);
	buf_free(&scratch);
	free(out);
}

static void test_blob_codecs(void **state)
{
	struct keys plain, k128, k192, k256;
	uint8_t *rnd = rand_data(100000, 1);
	uint8_t text[100000];

	(void)state;
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "abcabcabd"[i % 9];
	keys_plain(&plain);
	keys_for(&k128, 16);
	keys_for(&k192, 24);
	keys_for(&k256, 32);
	const struct keys *all[] = {&plain, &k128, &k192, &k256};
	for (int i = 0; i < 4; i++) {
		roundtrip(all[i], rnd, 100000);
		roundtrip(all[i], text, sizeof(text));
		roundtrip(all[i], text, 1);
	}
	/* Compressible plaintext shrinks; random data costs one byte more. */
	struct buf enc = BUF_INIT;
	uint8_t id[ID_LEN];
	chunk_id(&plain, text, sizeof(text), id);
	blob_encode(&plain, id, text, sizeof(text), &enc);
	assert_true(enc.len < sizeof(text) / 10);
	enc.len = 0;
	chunk_id(&plain, rnd, 100000, id);
	blob_encode(&plain, id, rnd, 100000, &enc);
	assert_int_equal(enc.len, 100001);
	buf_free(&enc);
	free(rnd);
}

static void test_crypto_keys(void **state)
{
	struct keys a, b;
	uint8_t master[32] = {0}, bad[20] = {0};
	uint8_t ida[ID_LEN], idb[ID_LEN], plain_id[ID_LEN];
	struct keys plain;

	(void)state;
	assert_int_equal(keys_derive(&a, master, 32, "repo1"), 0);
	assert_int_equal(keys_derive(&b, master, 32, "repo2"), 0);
	/* Subkeys are independent and salted by repository. */
	assert_memory_not_equal(a.enc, a.id, 32);
	assert_memory_not_equal(a.id, a.mac, 32);
	assert_memory_not_equal(a.enc, b.enc, 32);
	chunk_id(&a, "x", 1, ida);
	chunk_id(&b, "x", 1, idb);
	keys_plain(&plain);
	chunk_id(&plain, "x", 1, plain_id);
	assert_memory_not_equal(ida, idb, ID_LEN);
	assert_memory_not_equal(ida, plain_id, ID_LEN);
	assert_int_equal(keys_derive(&a, bad, sizeof(bad), "r"), SNAP_EKEY);

	/* scrypt is deterministic for the same salt, different otherwise. */
	struct scrypt_params sp = {1024, 8, 1, {1}};
	uint8_t k1[32], k2[32], k3[32];
	assert_int_equal(kdf_scrypt("pw", 2, &sp, k1), 0);
	assert_int_equal(kdf_scrypt("pw", 2, &sp, k2), 0);
	assert_memory_equal(k1, k2, 32);
	sp.salt[0] = 2;
	assert_int_equal(kdf_scrypt("pw", 2, &sp, k3), 0);
	assert_memory_not_equal(k1, k3, 32);
	sp.N = 1000; /* not a power of two */
	assert_int_equal(kdf_scrypt("pw", 2, &sp, k3), SNAP_ECORRUPT);
	sp.N = 1u << 30; /* would need 1 TiB */
	assert_int_equal(kdf_scrypt("pw", 2, &sp, k3), SNAP_ECORRUPT);

	/* SHA-256 of "abc" (FIPS 180-2 test vector). */
	uint8_t d[32];
	char hex[65];
	sha256("abc", 3, d);
	hex_encode(d, 32, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* HMAC-SHA-256, RFC 4231 test case 2. */
	hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, d);
	hex_encode(d, 32, hex);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_labels(void **state)
{
	(void)state;
	assert_int_equal(label_check("abc"), 0);
	assert_int_equal(label_check("zk-prod_1.2"), 0);
	assert_int_equal(label_check(".ab"), 0);
	assert_int_equal(label_check("abcdefghijklmnopqrstuvwxy"), 0);
	const char *bad[] = {"ab", "..a", "...", "a b", "a/b", "abcdefghijklmnopqrstuvwxyz",
			     "ünï", "", "a\nb", NULL};
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(label_check(bad[i]), SNAP_EINVAL);
		assert_non_null(strstr(snap_errmsg(), "3-25 characters"));
	}
	assert_int_equal(series_check("zk1-0f8e1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b"), 0);
	assert_int_equal(series_check("zk1-0F8E1A2B-3C4D-4E5F-8A6B-7C8D9E0F1A2B"), SNAP_EINVAL);
	assert_int_equal(series_check("zk1"), SNAP_EINVAL);
	assert_int_equal(series_check("z-0f8e1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b"), SNAP_EINVAL);
	char lbl[LABEL_MAX + 1];
	series_label("a-b-c-0f8e1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b", lbl);
	assert_string_equal(lbl, "a-b-c");
}

static struct tent mkfile(const char *name, struct chunk *c, size_t n,
			  uint64_t size)
{
	struct tent t = {0};

	t.name = (char *)name;
	t.type = ET_REG;
	t.mode = 0100644;
	t.uid = 1000;
	t.gid = 100;
	t.mtime_ns = -5; /* before the epoch: zigzag must carry it */
	t.size = size;
	t.chunks = c;
	t.nchunks = n;
	return t;
}

static void test_tree_roundtrip(void **state)
{
	struct chunk c[2];
	struct xattr x = {"user.k", (uint8_t *)"\0v", 2};
	struct tent ents[3];
	struct buf b = BUF_INIT;
	struct tree t;

	(void)state;
	memset(c, 0, sizeof(c));
	c[0].off = 4096; /* a hole before the first chunk */
	c[0].r.raw = 100;
	c[0].r.pack[0] = 7;
	c[1].off = 8192;
	c[1].r.raw = 50;
	c[1].r.pack[0] = 8;
	c[1].r.off = 12345;
	ents[0] = mkfile("a file", c, 2, 1 << 20);
	ents[0].xattrs = &x;
	ents[0].nxattrs = 1;
	ents[0].hardlink = 3;
	memset(&ents[1], 0, sizeof(ents[1]));
	ents[1].name = "dir";
	ents[1].type = ET_DIR;
	ents[1].mode = 040755;
	ents[1].sub.pack[0] = 7;
	ents[1].sub_files = 10;
	ents[1].sub_bytes = 99;
	memset(&ents[2], 0, sizeof(ents[2]));
	ents[2].name = "link";
	ents[2].type = ET_LNK;
	ents[2].mode = 0120777;
	ents[2].target = "../x";
	assert_int_equal(tree_encode(ents, 3, &b), 0);
	assert_int_equal(tree_decode(b.p, b.len, &t), 0);
	assert_int_equal(t.n, 3);
	assert_string_equal(t.ents[0].name, "a file");
	assert_int_equal(t.ents[0].mtime_ns, -5);
	assert_int_equal(t.ents[0].nchunks, 2);
	assert_int_equal(t.ents[0].chunks[0].off, 4096);
	assert_int_equal(t.ents[0].chunks[1].off, 8192);
	assert_int_equal(t.ents[0].chunks[1].r.off, 12345);
	assert_int_equal(t.ents[0].chunks[1].r.pack[0], 8);
	assert_int_equal(t.ents[0].hardlink, 3);
	assert_memory_equal(t.ents[0].xattrs[0].val, "\0v", 2);
	assert_int_equal(t.ents[1].sub_files, 10);
	assert_string_equal(t.ents[2].target, "../x");
	assert_non_null(tree_find(&t, "dir"));
	assert_null(tree_find(&t, "nope"));
	/* Every truncation fails cleanly. */
	for (size_t n = 0; n < b.len; n++) {
		struct tree u;
		assert_int_equal(tree_decode(b.p, n, &u), SNAP_ECORRUPT);
	}
	tree_free(&t);
	buf_free(&b);
}

static void expect_hostile(struct tent *ents, size_t n)
{
	struct buf b = BUF_INIT;
	struct tree t;

	assert_int_equal(tree_encode(ents, n, &b), 0);
	assert_int_equal(tree_decode(b.p, b.len, &t), SNAP_ECORRUPT);
	buf_free(&b);
}

static void test_tree_hostile(void **state)
{
	struct chunk c = {0};
	struct tent e[2];

	(void)state;
	c.r.raw = 10;
	const char *names[] = {"..", ".", "a/b", "/etc", "", NULL};
	for (int i = 0; names[i]; i++) {
		e[0] = mkfile(names[i], &c, 1, 10);
		expect_hostile(e, 1);
	}
	/* Duplicates and unsorted names. */
	e[0] = mkfile("b", &c, 1, 10);
	e[1] = mkfile("b", &c, 1, 10);
	expect_hostile(e, 2);
	e[1] = mkfile("a", &c, 1, 10);
	expect_hostile(e, 2);
	/* A chunk past the end of the file. */
	c.off = 5;
	e[0] = mkfile("f", &c, 1, 10);
	expect_hostile(e, 1);
}

static struct tent mknode(const char *name, uint8_t type, uint32_t mode)
{
	struct tent t = {0};

	t.name = (char *)name;
	t.type = type;
	t.mode = mode;
	t.uid = 7;
	t.gid = 8;
	t.mtime_ns = 1700000000123456789;
	return t;
}

static void test_tree_special(void **state)
{
	struct chunk c = {0};
	struct xattr x = {"trusted.k", (uint8_t *)"v", 1};
	struct tent ents[4];
	struct buf b = BUF_INIT, v1 = BUF_INIT;
	struct tree t;

	(void)state;
	c.r.raw = 10;
	ents[0] = mkfile("a", &c, 1, 10);
	ents[1] = mknode("blk", ET_BLK, 060660);
	ents[1].rdev_major = 8;
	ents[1].rdev_minor = UINT32_MAX; /* the whole range survives */
	ents[2] = mknode("chr", ET_CHR, 020600);
	ents[2].rdev_major = 1;
	ents[2].rdev_minor = 3;
	ents[2].xattrs = &x;
	ents[2].nxattrs = 1;
	ents[3] = mknode("fifo", ET_FIFO, 010640);
	assert_int_equal(tree_version(ents, 4), 2);
	assert_int_equal(tree_encode(ents, 4, &b), 0);
	assert_int_equal(b.p[4], 2);
	assert_int_equal(tree_decode(b.p, b.len, &t), 0);
	assert_int_equal(t.n, 4);
	assert_int_equal(t.ents[1].type, ET_BLK);
	assert_int_equal(t.ents[1].mode, 060660);
	assert_int_equal(t.ents[1].rdev_major, 8);
	assert_int_equal(t.ents[1].rdev_minor, UINT32_MAX);
	assert_int_equal(t.ents[2].type, ET_CHR);
	assert_int_equal(t.ents[2].rdev_minor, 3);
	assert_int_equal(t.ents[2].uid, 7);
	assert_int_equal(t.ents[2].mtime_ns, 1700000000123456789);
	assert_string_equal(t.ents[2].xattrs[0].name, "trusted.k");
	assert_int_equal(t.ents[3].type, ET_FIFO);
	assert_int_equal(t.ents[3].mode, 010640);
	tree_free(&t);
	for (size_t n = 0; n < b.len; n++) {
		struct tree u;
		assert_int_equal(tree_decode(b.p, n, &u), SNAP_ECORRUPT);
	}
	/* Without special files the object stays version 1, byte for byte
	 * what snapfs 0.1 wrote: unchanged directories keep their ids. */
	assert_int_equal(tree_version(ents, 1), 1);
	assert_int_equal(tree_encode(ents, 1, &v1), 0);
	assert_int_equal(v1.p[4], 1);
	/* A version-1 object cannot hold them, nor version 3 exist yet. */
	b.p[4] = 1;
	assert_int_equal(tree_decode(b.p, b.len, &t), SNAP_ECORRUPT);
	b.p[4] = 3;
	assert_int_equal(tree_decode(b.p, b.len, &t), SNAP_ECORRUPT);
	b.p[4] = 0;
	assert_int_equal(tree_decode(b.p, b.len, &t), SNAP_ECORRUPT);
	/* A mode whose type is not the entry's is refused, both ways. */
	ents[0].mode = 020644;
	assert_int_equal(tree_encode(ents, 1, &b), SNAP_EINVAL);
	for (uint8_t ty = ET_REG; ty <= ET_BLK; ty++) {
		assert_int_equal(ent_type(ent_ifmt(ty)), ty);
		assert_int_equal(ent_type(ent_ifmt(ty) | 0755), ty);
	}
	assert_int_equal(ent_type(0140755), 0); /* a socket */
	buf_free(&b);
	buf_free(&v1);
}

/* What snapfs 0.1 (format 1) wrote for these entries: a directory without
 * special files must encode to the same bytes, or every directory would
 * get a new id (and be stored again) at the first backup after upgrading. */
static void test_tree_v1_bytes(void **state)
{
	static const char golden[] =
		"534e545201010700000000000000000000000000000002016601a48302e8"
		"0764098080d0e2c6bfce972f2a8040030106757365722e6b020076018020"
		"ab00000000000000000000000000000000000000000000000000000000000000"
		"00b9605a64016c03ffc30200000000000100000166";
	struct chunk c = {0};
	struct xattr x = {"user.k", (uint8_t *)"\0v", 2};
	struct tent e[2];
	struct buf b = BUF_INIT;
	char hex[sizeof(golden)];

	(void)state;
	memset(e, 0, sizeof(e));
	c.off = 4096;
	c.r.raw = 100;
	c.r.pack[0] = 7;
	c.r.id[0] = 0xab;
	c.r.off = 12345;
	c.r.len = 90;
	e[0] = mkfile("f", &c, 1, 8192);
	e[0].ctime_ns = 1700000000000000000;
	e[0].ino = 42;
	e[0].hardlink = 3;
	e[0].xattrs = &x;
	e[0].nxattrs = 1;
	e[1].name = "l";
	e[1].type = ET_LNK;
	e[1].mode = 0120777;
	e[1].target = "f";
	e[1].size = 1;
	assert_int_equal(tree_encode(e, 2, &b), 0);
	assert_int_equal(2 * b.len, strlen(golden));
	for (size_t i = 0; i < b.len; i++)
		snprintf(hex + 2 * i, 3, "%02x", b.p[i]);
	assert_string_equal(hex, golden);
	buf_free(&b);
}

/* A one-entry object built by hand: version, type, mode, then more
 * varints after the common fields (what a hostile writer could put). */
static int decode_one(int ver, uint8_t type, uint64_t mode,
		      const uint64_t *more, size_t nmore)
{
	struct buf b = BUF_INIT;
	struct tree t;
	int rc;

	buf_add(&b, "SNTR", 4);
	buf_addc(&b, (uint8_t)ver);
	buf_add_varint(&b, 0); /* packs */
	buf_add_varint(&b, 1); /* entries */
	buf_add_bytes(&b, "n", 1);
	buf_addc(&b, type);
	buf_add_varint(&b, mode);
	for (int i = 0; i < 8; i++) /* uid .. nxattrs */
		buf_add_varint(&b, 0);
	for (size_t i = 0; i < nmore; i++)
		buf_add_varint(&b, more[i]);
	rc = tree_decode(b.p, b.len, &t);
	if (rc == 0)
		tree_free(&t);
	buf_free(&b);
	return rc;
}

static void test_tree_special_hostile(void **state)
{
	const uint64_t dev[] = {1, 3}, bigmaj[] = {1ull << 32, 3},
		       bigmin[] = {1, 1ull << 32};

	(void)state;
	assert_int_equal(decode_one(2, ET_FIFO, 010644, NULL, 0), 0);
	assert_int_equal(decode_one(2, ET_CHR, 020644, dev, 2), 0);
	assert_int_equal(decode_one(2, ET_BLK, 060644, dev, 2), 0);
	/* Special files in a version-1 object. */
	assert_int_equal(decode_one(1, ET_FIFO, 010644, NULL, 0), SNAP_ECORRUPT);
	assert_int_equal(decode_one(1, ET_CHR, 020644, dev, 2), SNAP_ECORRUPT);
	/* Device numbers beyond 32 bits, a missing minor, trailing bytes. */
	assert_int_equal(decode_one(2, ET_CHR, 020644, bigmaj, 2), SNAP_ECORRUPT);
	assert_int_equal(decode_one(2, ET_BLK, 060644, bigmin, 2), SNAP_ECORRUPT);
	assert_int_equal(decode_one(2, ET_CHR, 020644, dev, 1), SNAP_ECORRUPT);
	assert_int_equal(decode_one(2, ET_FIFO, 010644, dev, 2), SNAP_ECORRUPT);
	/* A type the mode does not say: a "FIFO" shown as a directory, a
	 * "device" with the mode of another, a type no version knows. */
	assert_int_equal(decode_one(2, ET_FIFO, 040755, NULL, 0), SNAP_ECORRUPT);
	assert_int_equal(decode_one(2, ET_BLK, 020644, dev, 2), SNAP_ECORRUPT);
	assert_int_equal(decode_one(2, ET_CHR, 0140644, dev, 2), SNAP_ECORRUPT);
	assert_int_equal(decode_one(2, 7, 0140644, NULL, 0), SNAP_ECORRUPT);
	assert_int_equal(decode_one(2, 0, 0, NULL, 0), SNAP_ECORRUPT);
}

static void test_manifest(void **state)
{
	struct keys k, other;
	struct manifest m = {0}, p;
	struct mgroup g = {0};
	struct buf b = BUF_INIT;
	const char *series = "zk1-0f8e1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b";

	(void)state;
	keys_for(&k, 32);
	keys_for(&other, 16);
	snprintf(m.series, sizeof(m.series), "%s", series);
	snprintf(m.label, sizeof(m.label), "zk1");
	snprintf(m.status, sizeof(m.status), STATUS_READY);
	m.num = 2;
	m.parent = 1;
	m.encrypted = 1;
	m.created = 1700000000000000000;
	g.name = "zk";
	g.files = 3;
	g.mode = 040700;
	m.groups = &g;
	m.ngroups = 1;
	/* Unrecorded attribute namespaces stay unknown... */
	m.xattr_ns = -1;
	assert_int_equal(manifest_encode(&m, &k, &b), 0);
	buf_addc(&b, 0);
	assert_null(strstr((char *)b.p, "xattr_namespaces"));
	assert_int_equal(manifest_parse((char *)b.p, b.len - 1, &k, series, 2, &p), 0);
	assert_int_equal(p.xattr_ns, -1);
	manifest_free(&p);
	buf_free(&b);
	/* ...recorded ones come back, under the MAC like every field. */
	m.xattr_ns = XNS_USER | XNS_SYSTEM;
	assert_int_equal(manifest_encode(&m, &k, &b), 0);
	buf_addc(&b, 0);
	assert_int_equal(manifest_parse((char *)b.p, b.len - 1, &k, series, 2, &p), 0);
	assert_int_equal(p.num, 2);
	assert_int_equal(p.full, 0);
	assert_string_equal(p.groups[0].name, "zk");
	assert_int_equal(p.groups[0].files, 3);
	assert_int_equal(p.xattr_ns, XNS_USER | XNS_SYSTEM);
	manifest_free(&p);
	assert_int_equal(xattr_ns_of("security.selinux"), XNS_SECURITY);
	assert_int_equal(xattr_ns_of("system.posix_acl_access"), XNS_SYSTEM);
	assert_int_equal(xattr_ns_of("user.a"), XNS_USER);
	assert_int_equal(xattr_ns_of("trusted.x"), XNS_TRUSTED);
	assert_int_equal(xattr_ns_of("user"), 0);
	assert_int_equal(xattr_ns_of("osx.y"), 0);
	/* Wrong key, wrong place, tampering. */
	assert_int_equal(manifest_parse((char *)b.p, b.len - 1, &other, series, 2, &p),
			 SNAP_ECORRUPT);
	assert_int_equal(manifest_parse((char *)b.p, b.len - 1, &k, series, 3, &p),
			 SNAP_ECORRUPT);
	char *files = strstr((char *)b.p, "\"files\": 3");
	assert_non_null(files);
	files[9] = '4';
	assert_int_equal(manifest_parse((char *)b.p, b.len - 1, &k, series, 2, &p),
			 SNAP_ECORRUPT);
	assert_non_null(strstr(snap_errmsg(), "MAC mismatch"));
	buf_free(&b);

	/* Plain manifests: shape rules still apply. */
	struct keys plain;
	keys_plain(&plain);
	m.encrypted = 0;
	m.num = 1; /* but parent 1 and type incremental: invalid */
	assert_int_equal(manifest_encode(&m, &plain, &b), 0);
	assert_int_equal(manifest_parse((char *)b.p, b.len, &plain, series, 1, &p),
			 SNAP_ECORRUPT);
	buf_free(&b);
	m.parent = 0;
	m.full = 1;
	m.xattr_ns = XNS_USER;
	assert_int_equal(manifest_encode(&m, &plain, &b), 0);
	buf_addc(&b, 0);
	assert_int_equal(manifest_parse((char *)b.p, b.len - 1, &plain, series, 1, &p), 0);
	manifest_free(&p);
	char *ns = strstr((char *)b.p, "\"user\"");
	assert_non_null(ns);
	memcpy(ns, "  5   ", 6); /* not a name */
	assert_int_equal(manifest_parse((char *)b.p, b.len - 1, &plain, series, 1, &p),
			 SNAP_ECORRUPT);
	assert_non_null(strstr(snap_errmsg(), "xattr_namespaces"));
	buf_free(&b);
	const char *bad[] = {
		"[]", "{", "{\"format_version\": 99}",
		"{\"format_version\": 1, \"backup_id\": \"x\"}", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_not_equal(manifest_parse(bad[i], strlen(bad[i]), &plain,
						    series, 1, &p), 0);
}

/* jansson's allocator for the test below: counts calls, and fails the
 * one numbered fail_at (0: none). */
static long alloc_calls, fail_at;

static void *counting_malloc(size_t n)
{
	return ++alloc_calls == fail_at ? NULL : malloc(n);
}

static void test_manifest_encode_enomem(void **state)
{
	struct keys k;
	struct mgroup g[3] = {{.name = "g1", .files = 1},
			      {.name = "g2", .files = 2, .hardlink_next = 9,
			       .ino = (1ull << 63) | 5},
			      {.name = "zk", .files = 3}};
	uint8_t packs[2][PACK_ID_LEN] = {{1}, {2}};
	struct manifest m = {.num = 1, .full = 1, .encrypted = 1,
			     .created = 1700000000000000000, .groups = g,
			     .ngroups = 3, .packs = packs, .npacks = 2,
			     .xattr_ns = XNS_USER | XNS_SECURITY,
			     .ino_next = 77, .stage_token = "0123456789abcdef"};
	struct buf want = BUF_INIT, got = BUF_INIT;
	long total;

	(void)state;
	keys_for(&k, 32);
	snprintf(m.series, sizeof(m.series), "zk1-0f8e1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b");
	snprintf(m.label, sizeof(m.label), "zk1");
	snprintf(m.status, sizeof(m.status), STATUS_READY);
	json_set_alloc_funcs(counting_malloc, free);
	alloc_calls = fail_at = 0;
	assert_int_equal(manifest_encode(&m, &k, &want), 0);
	total = alloc_calls;
	assert_true(total > 10);
	/* Each allocation in turn fails (once; later ones succeed, as after
	 * a passing shortage): the encoding either fails with ENOMEM and
	 * appends nothing, or is whole.  Never a manifest missing a part. */
	for (fail_at = 1; fail_at <= total; fail_at++) {
		int rc;

		alloc_calls = 0;
		got.len = 0;
		assert_int_equal(buf_addstr(&got, "x"), 0);
		rc = manifest_encode(&m, &k, &got);
		if (rc == 0) {
			assert_int_equal(got.len, 1 + want.len);
			assert_memory_equal(got.p + 1, want.p, want.len);
		} else {
			assert_int_equal(rc, SNAP_ENOMEM);
			assert_int_equal(got.len, 1);
		}
	}
	json_set_alloc_funcs(malloc, free);
	/* A group name that is not UTF-8 is refused, not dropped. */
	g[1].name = "caf\xe9";
	got.len = 0;
	assert_int_equal(manifest_encode(&m, &k, &got), SNAP_EINVAL);
	assert_int_equal(got.len, 0);
	buf_free(&want);
	buf_free(&got);
}

static void test_pack_trailer(void **state)
{
	struct keys k;
	struct pack p;
	struct buf enc = BUF_INIT;
	uint8_t id[ID_LEN];
	struct ref r;

	(void)state;
	keys_for(&k, 24);
	assert_int_equal(pack_begin(&p), 0);
	for (int i = 0; i < 100; i++) {
		uint8_t data[64];
		memset(data, i, sizeof(data));
		chunk_id(&k, data, sizeof(data), id);
		enc.len = 0;
		blob_encode(&k, id, data, sizeof(data), &enc);
		assert_int_equal(pack_add(&p, BT_DATA, id, enc.p, enc.len, 64, &r), 0);
	}
	assert_int_equal(p.count, 100);
	assert_int_equal(pack_finish(&p, &k), 0);
	assert_memory_equal(p.data.p + p.data.len - 4, "SNP1", 4);
	pack_free(&p);
	buf_free(&enc);
}

/* A trailer plaintext listing one data blob at [off, off+len). */
static void trailer_of(struct buf *t, uint64_t off, uint64_t len)
{
	uint8_t id[ID_LEN] = {7};

	buf_free(t);
	assert_int_equal(buf_add(t, "SNPT", 4), 0);
	assert_int_equal(buf_addc(t, 1), 0);
	assert_int_equal(buf_addc(t, BT_DATA), 0);
	assert_int_equal(buf_add(t, id, ID_LEN), 0);
	assert_int_equal(buf_add_varint(t, off), 0);
	assert_int_equal(buf_add_varint(t, len), 0);
	assert_int_equal(buf_add_varint(t, len), 0);
	assert_int_equal(buf_add_u32le(t, 1), 0);
}

/* A pack of data_len zero bytes, then trailer t (sealed) and its footer;
 * tlen/rlen override what the footer says when not 0. */
static void pack_of(const struct keys *k, size_t data_len, const struct buf *t,
		    uint32_t tlen, uint32_t rlen, struct buf *out)
{
	uint8_t tid[ID_LEN], foot[PACK_FOOTER_LEN];
	size_t start;

	buf_free(out);
	assert_int_equal(buf_reserve(out, data_len), 0);
	memset(out->p, 0, data_len);
	out->len = data_len;
	chunk_id(k, t->p, t->len, tid);
	assert_int_equal(blob_encode(k, tid, t->p, t->len, out), 0);
	start = data_len;
	memcpy(foot, tid, ID_LEN);
	put_u32le(foot + 32, tlen ? tlen : (uint32_t)(out->len - start));
	put_u32le(foot + 36, rlen ? rlen : (uint32_t)t->len);
	memcpy(foot + 40, "SNP1", 4);
	assert_int_equal(buf_add(out, foot, sizeof(foot)), 0);
}

/* Parses tail (the last n bytes of a pack of size bytes) both steps. */
static int parse_tail(const struct keys *k, const uint8_t *tail, size_t n,
		      uint64_t size, struct pack_entry **e, size_t *cnt)
{
	struct pack_footer f;
	int rc = pack_parse_footer(tail, n, size, &f);

	return rc ? rc : pack_parse_trailer(k, &f, tail, n, e, cnt);
}

static void test_pack_codec(void **state)
{
	struct keys k, plain;
	struct buf t = BUF_INIT, pk = BUF_INIT;
	struct pack_footer f;
	struct pack_entry *e = NULL;
	size_t cnt = 0;

	(void)state;
	keys_for(&k, 32);
	keys_plain(&plain);
	/* Good: the whole pack, or just its tail, parses. */
	trailer_of(&t, 100, 50);
	pack_of(&k, 150, &t, 0, 0, &pk);
	assert_int_equal(pack_parse_footer(pk.p, pk.len, pk.len, &f), 0);
	assert_int_equal(f.data_end, 150);
	assert_int_equal(f.tail, pk.len - 150);
	assert_int_equal(parse_tail(&k, pk.p + 150, pk.len - 150, pk.len, &e, &cnt), 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(e[0].off, 100);
	assert_int_equal(e[0].len, 50);
	free(e);
	/* ...but not with a wrong key, nor a tail short of the trailer. */
	assert_int_equal(parse_tail(&plain, pk.p, pk.len, pk.len, &e, &cnt),
			 SNAP_ECORRUPT);
	assert_int_equal(pack_parse_trailer(&k, &f, pk.p + 151, pk.len - 151, &e,
					    &cnt), SNAP_EINVAL);

	/* Short: less than a footer, of the pack or of what was read. */
	for (size_t n = 0; n < PACK_FOOTER_LEN; n++) {
		assert_int_equal(pack_parse_footer(pk.p + pk.len - n, n, pk.len, &f),
				 SNAP_ECORRUPT);
		assert_int_equal(pack_parse_footer(pk.p + pk.len - n, n, n, &f),
				 SNAP_ECORRUPT);
	}
	assert_int_equal(pack_parse_footer(NULL, 0, 0, &f), SNAP_ECORRUPT);
	assert_non_null(strstr(snap_errmsg(), "truncated"));
	/* A tail longer than the pack it claims to end. */
	assert_int_equal(pack_parse_footer(pk.p, pk.len, pk.len - 1, &f),
			 SNAP_ECORRUPT);
	/* Wrapped: tlen + footer is 0 in 32 bits, and the pack is large
	 * enough for a 32-bit comparison to let it through. */
	put_u32le(pk.p + pk.len - 12, UINT32_MAX - PACK_FOOTER_LEN + 1);
	assert_int_equal(pack_parse_footer(pk.p, pk.len, 8ull << 30, &f),
			 SNAP_ECORRUPT);
	assert_non_null(strstr(snap_errmsg(), "bad pack footer"));
	put_u32le(pk.p + pk.len - 12, UINT32_MAX);
	assert_int_equal(pack_parse_footer(pk.p, pk.len, 8ull << 30, &f),
			 SNAP_ECORRUPT);

	/* Lying footers: a trailer longer than the pack, longer than any
	 * blob of rlen bytes, an rlen beyond the limit, a wrong magic. */
	pack_of(&k, 150, &t, (uint32_t)pk.len, 0, &pk);
	assert_int_equal(pack_parse_footer(pk.p, pk.len, pk.len, &f), SNAP_ECORRUPT);
	pack_of(&k, 150, &t, (uint32_t)blob_bound(t.len) + 1, 0, &pk);
	assert_int_equal(pack_parse_footer(pk.p, pk.len, 1u << 20, &f), SNAP_ECORRUPT);
	pack_of(&k, 150, &t, 0, PACK_TRAILER_MAX + 1, &pk);
	assert_int_equal(pack_parse_footer(pk.p, pk.len, pk.len, &f), SNAP_ECORRUPT);
	pack_of(&k, 150, &t, 0, 0, &pk);
	pk.p[pk.len - 1] ^= 1;
	assert_int_equal(pack_parse_footer(pk.p, pk.len, pk.len, &f), SNAP_ECORRUPT);
	/* A trailer length off by one either way fails authentication. */
	for (int d = -1; d <= 1; d += 2) {
		uint32_t tlen = (uint32_t)(pk.len - 150 - PACK_FOOTER_LEN);

		pack_of(&k, 150, &t, tlen + d, 0, &pk);
		assert_int_equal(parse_tail(&k, pk.p, pk.len, pk.len, &e, &cnt),
				 SNAP_ECORRUPT);
	}
	/* An rlen that does not match what the trailer decodes to. */
	pack_of(&k, 150, &t, 0, (uint32_t)t.len + 1, &pk);
	assert_int_equal(parse_tail(&k, pk.p, pk.len, pk.len, &e, &cnt),
			 SNAP_ECORRUPT);

	/* Authentic trailers whose entries lie: past the blob area, with an
	 * offset + length that wraps in 64 bits, beyond 32 bits. */
	uint64_t bad[][2] = {{100, 51}, {151, 0}, {UINT64_MAX - 10, 20},
			     {10, UINT64_MAX}, {1ull << 32, 1}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		trailer_of(&t, bad[i][0], bad[i][1]);
		pack_of(&plain, 150, &t, 0, 0, &pk);
		assert_int_equal(parse_tail(&plain, pk.p, pk.len, pk.len, &e, &cnt),
				 SNAP_ECORRUPT);
	}
	/* ...and the pack size decides, not a 32-bit view of it. */
	trailer_of(&t, (1ull << 32) - 10, 20);
	pack_of(&plain, 150, &t, 0, 0, &pk);
	assert_int_equal(parse_tail(&plain, pk.p, pk.len, 8ull << 30, &e, &cnt),
			 SNAP_ECORRUPT);
	/* A count larger than the entries present. */
	trailer_of(&t, 0, 150);
	put_u32le(t.p + t.len - 4, 2);
	pack_of(&plain, 150, &t, 0, 0, &pk);
	assert_int_equal(parse_tail(&plain, pk.p, pk.len, pk.len, &e, &cnt),
			 SNAP_ECORRUPT);
	buf_free(&t);
	buf_free(&pk);
}

/* A store that serves one object, whatever the key, from memory: size is
 * what head says, tail the last bytes of the object, and only those are
 * ever answered (a range before them comes back short, as from a hostile
 * or broken server). */
struct memstore {
	struct store s;
	uint64_t size;
	const struct buf *tail;
};

static int mem_get(struct store *st, const char *key, int64_t off, int64_t len,
		   struct buf *out)
{
	struct memstore *m = (struct memstore *)st;
	uint64_t start = m->size - m->tail->len, from, to;

	(void)key;
	from = off < 0 ? m->size - (uint64_t)-off : (uint64_t)off;
	to = len < 0 ? m->size : from + (uint64_t)len;
	if (from < start)
		from = start;
	if (to > m->size)
		to = m->size;
	return to > from ? buf_add(out, m->tail->p + (from - start), to - from)
			 : 0;
}

static int mem_head(struct store *st, const char *key, uint64_t *size)
{
	(void)key;
	*size = ((struct memstore *)st)->size;
	return 0;
}

static void test_pack_read_index_hostile(void **state)
{
	static const struct store_ops ops = {.scheme = "mem", .get = mem_get,
					     .head = mem_head};
	struct memstore m = {.s = {.ops = &ops, .url = "mem"}};
	struct keys plain;
	struct buf t = BUF_INIT, pk = BUF_INIT, tail = BUF_INIT;
	struct pack_entry *e;
	size_t n;
	uint64_t size;

	(void)state;
	keys_plain(&plain);
	trailer_of(&t, 0, 150);
	pack_of(&plain, 150, &t, 0, 0, &pk);
	m.tail = &pk;
	m.size = pk.len;
	assert_int_equal(pack_read_index(&m.s, &plain, "data/s/p", &e, &n, &size), 0);
	assert_int_equal(n, 1);
	assert_int_equal(size, pk.len);
	free(e);
	/* The server answers the suffix read with nothing at all. */
	m.tail = &tail;
	m.size = 1000;
	assert_int_equal(pack_read_index(&m.s, &plain, "data/s/p", &e, &n, &size),
			 SNAP_ECORRUPT);
	assert_non_null(strstr(snap_errmsg(), "data/s/p: truncated"));
	/* An 8 GiB pack whose footer says tlen = 2^32 - 44. */
	buf_add(&tail, pk.p + pk.len - PACK_FOOTER_LEN, PACK_FOOTER_LEN);
	put_u32le(tail.p + 32, UINT32_MAX - PACK_FOOTER_LEN + 1);
	m.size = 8ull << 30;
	assert_int_equal(pack_read_index(&m.s, &plain, "data/s/p", &e, &n, &size),
			 SNAP_ECORRUPT);
	assert_non_null(strstr(snap_errmsg(), "data/s/p: bad pack footer"));
	/* An entry whose offset + length wraps. */
	trailer_of(&t, UINT64_MAX - 10, 20);
	pack_of(&plain, 150, &t, 0, 0, &pk);
	m.tail = &pk;
	m.size = pk.len;
	assert_int_equal(pack_read_index(&m.s, &plain, "data/s/p", &e, &n, &size),
			 SNAP_ECORRUPT);
	assert_non_null(strstr(snap_errmsg(), "data/s/p: pack index is malformed"));
	buf_free(&t);
	buf_free(&pk);
	buf_free(&tail);
}

static int parse_page(const struct list_syntax *sx, const char *xml,
		      struct list_page *pg)
{
	return list_page_parse(sx, (const uint8_t *)xml, strlen(xml), "pre/d/",
			       pg);
}

#define S3_PAGE(body)                                                          \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "         \
	"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"     \
	"<Prefix>pre/d/</Prefix>" body "</ListBucketResult>"
#define S3_OBJ(key, size)                                                      \
	"<Contents><Key>" key "</Key><LastModified>2026-01-01T00:00:00Z"       \
	"</LastModified><Size>" size "</Size></Contents>"
#define AZ_PAGE(body)                                                          \
	"<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults "       \
	"ServiceEndpoint=\"http://x/\" ContainerName=\"c\"><Prefix>pre/d/"     \
	"</Prefix><Blobs>" body
#define AZ_BLOB(name, size)                                                    \
	"<Blob><Name>" name "</Name><Properties><Content-Length>" size         \
	"</Content-Length></Properties></Blob>"

static void test_list_parse(void **state)
{
	struct list_page pg = {0};
	static const char *s3_bad[] = {
		/* more pages, but no token (or an empty one) to ask for them */
		S3_PAGE(S3_OBJ("pre/d/a", "1") "<IsTruncated>true</IsTruncated>"),
		S3_PAGE(S3_OBJ("pre/d/a", "1") "<IsTruncated>true</IsTruncated>"
			"<NextContinuationToken></NextContinuationToken>"),
		/* an entry without a key: not the previous key again */
		S3_PAGE(S3_OBJ("pre/d/a", "1") "<Contents><Size>2</Size></Contents>"
			"<IsTruncated>false</IsTruncated>"),
		S3_PAGE("<Contents><Key></Key><Size>2</Size></Contents>"
			"<IsTruncated>false</IsTruncated>"),
		S3_PAGE("<Contents><Key>pre/d/a</Key><Key>pre/d/b</Key><Size>2"
			"</Size></Contents><IsTruncated>false</IsTruncated>"),
		/* sizes: missing, negative, not a number, too large */
		S3_PAGE("<Contents><Key>pre/d/a</Key></Contents>"
			"<IsTruncated>false</IsTruncated>"),
		S3_PAGE(S3_OBJ("pre/d/a", "-1") "<IsTruncated>false</IsTruncated>"),
		S3_PAGE(S3_OBJ("pre/d/a", "1x") "<IsTruncated>false</IsTruncated>"),
		S3_PAGE(S3_OBJ("pre/d/a", "99999999999999999999")
			"<IsTruncated>false</IsTruncated>"),
		/* a key outside the prefix asked for */
		S3_PAGE(S3_OBJ("pre/other", "1") "<IsTruncated>false</IsTruncated>"),
		/* no word on further pages, or a word nobody knows */
		S3_PAGE(S3_OBJ("pre/d/a", "1")),
		S3_PAGE(S3_OBJ("pre/d/a", "1") "<IsTruncated>yes</IsTruncated>"),
		/* another document altogether, and no document */
		"<Error><Code>InternalError</Code></Error>",
		"<ListBucketResult><IsTruncated>false</IsTruncated>",
		"",
		NULL};
	static const char *az_bad[] = {
		AZ_PAGE(AZ_BLOB("pre/d/a", "1") "</Blobs></EnumerationResults>"),
		AZ_PAGE(AZ_BLOB("pre/d/a", "1")
			"<Blob><Properties><Content-Length>2</Content-Length>"
			"</Properties></Blob></Blobs><NextMarker/></EnumerationResults>"),
		AZ_PAGE("<Blob><Name>pre/d/a</Name></Blob></Blobs><NextMarker/>"
			"</EnumerationResults>"),
		AZ_PAGE(AZ_BLOB("elsewhere", "1") "</Blobs><NextMarker/>"
			"</EnumerationResults>"),
		NULL};

	(void)state;
	assert_int_equal(parse_page(&s3_list_syntax,
				    S3_PAGE(S3_OBJ("pre/d/a", "1") S3_OBJ("pre/d/b&amp;c", "0")
					    "<IsTruncated>false</IsTruncated>"),
				    &pg), 0);
	assert_int_equal(pg.n, 2);
	assert_string_equal(pg.v[0].name, "pre/d/a");
	assert_int_equal(pg.v[0].size, 1);
	assert_string_equal(pg.v[1].name, "pre/d/b&c");
	assert_int_equal(pg.v[1].size, 0);
	assert_null(pg.next);
	assert_int_equal(parse_page(&s3_list_syntax,
				    S3_PAGE(S3_OBJ("pre/d/a", "18446744073709551615")
					    "<IsTruncated>true</IsTruncated>"
					    "<NextContinuationToken>t/1=</NextContinuationToken>"),
				    &pg), 0);
	assert_int_equal(pg.n, 1);
	assert_true(pg.v[0].size == UINT64_MAX);
	assert_string_equal(pg.next, "t/1=");
	/* An empty last page. */
	assert_int_equal(parse_page(&s3_list_syntax,
				    S3_PAGE("<KeyCount>0</KeyCount><IsTruncated>false"
					    "</IsTruncated>"), &pg), 0);
	assert_int_equal(pg.n, 0);
	assert_null(pg.next);
	for (int i = 0; s3_bad[i]; i++) {
		assert_int_equal(parse_page(&s3_list_syntax, s3_bad[i], &pg),
				 SNAP_ECORRUPT);
		assert_non_null(strstr(snap_errmsg(), "ListObjectsV2"));
	}
	parse_page(&s3_list_syntax, s3_bad[0], &pg);
	assert_non_null(strstr(snap_errmsg(), "more pages announced without "
					      "NextContinuationToken"));
	parse_page(&s3_list_syntax, s3_bad[2], &pg);
	assert_non_null(strstr(snap_errmsg(), "an entry has no name"));

	assert_int_equal(parse_page(&az_list_syntax,
				    AZ_PAGE(AZ_BLOB("pre/d/a", "5") "</Blobs>"
					    "<NextMarker>m2</NextMarker></EnumerationResults>"),
				    &pg), 0);
	assert_int_equal(pg.n, 1);
	assert_int_equal(pg.v[0].size, 5);
	assert_string_equal(pg.next, "m2");
	assert_int_equal(parse_page(&az_list_syntax,
				    AZ_PAGE(AZ_BLOB("pre/d/a", "5") "</Blobs>"
					    "<NextMarker /></EnumerationResults>"),
				    &pg), 0);
	assert_null(pg.next);
	for (int i = 0; az_bad[i]; i++)
		assert_int_equal(parse_page(&az_list_syntax, az_bad[i], &pg),
				 SNAP_ECORRUPT);
	parse_page(&az_list_syntax, az_bad[0], &pg);
	assert_non_null(strstr(snap_errmsg(), "List Blobs response: no NextMarker"));
	list_page_free(&pg);
}

/* Serves canned pages: page i answers token "t<i>". */
struct pages {
	const char **xml;
	int served;
};

static int pages_fetch(void *ctx, const char *prefix, const char *token,
		       struct buf *body)
{
	struct pages *p = ctx;
	int i = token ? atoi(token + 1) : 0;

	assert_string_equal(prefix, "pre/d/");
	assert_true(!token || token[0] == 't');
	p->served++;
	return buf_addstr(body, p->xml[i]);
}

static int collect_names(const char *name, uint64_t size, void *ctx)
{
	struct buf *b = ctx;

	(void)size;
	if (!strcmp(name, "d/stop"))
		return 42;
	return buf_addstr(b, name) || buf_addc(b, ' ');
}

static void test_list_pages(void **state)
{
	const char *good[] = {
		S3_PAGE(S3_OBJ("pre/d/a", "1") S3_OBJ("pre/d/b", "1")
			"<IsTruncated>true</IsTruncated><NextContinuationToken>t1"
			"</NextContinuationToken>"),
		S3_PAGE(S3_OBJ("pre/d/c", "1") "<IsTruncated>false</IsTruncated>")};
	const char *loop[] = {
		S3_PAGE(S3_OBJ("pre/d/a", "1") "<IsTruncated>true</IsTruncated>"
			"<NextContinuationToken>t1</NextContinuationToken>"),
		S3_PAGE(S3_OBJ("pre/d/b", "1") "<IsTruncated>true</IsTruncated>"
			"<NextContinuationToken>t1</NextContinuationToken>")};
	const char *bad2[] = {
		good[0],
		S3_PAGE(S3_OBJ("pre/d/c", "1") "<Contents><Size>1</Size></Contents>"
			"<IsTruncated>false</IsTruncated>")};
	const char *stop[] = {
		S3_PAGE(S3_OBJ("pre/d/stop", "1") S3_OBJ("pre/d/b", "1")
			"<IsTruncated>false</IsTruncated>")};
	struct pages p = {good, 0};
	struct buf names = BUF_INIT;

	(void)state;
	assert_int_equal(list_pages(&s3_list_syntax, pages_fetch, &p, "bkt", "pre/",
				    "d/", collect_names, &names), 0);
	buf_addc(&names, 0);
	assert_string_equal((char *)names.p, "d/a d/b d/c ");
	assert_int_equal(p.served, 2);
	/* A token handed back unchanged would list one page forever. */
	names.len = 0;
	p = (struct pages){loop, 0};
	assert_int_equal(list_pages(&s3_list_syntax, pages_fetch, &p, "bkt", "pre/",
				    "d/", collect_names, &names), SNAP_ECORRUPT);
	assert_non_null(strstr(snap_errmsg(), "does not advance"));
	assert_non_null(strstr(snap_errmsg(), "bkt/pre/d/"));
	assert_int_equal(p.served, 2);
	/* A bad page passes none of its entries on. */
	names.len = 0;
	p = (struct pages){bad2, 0};
	assert_int_equal(list_pages(&s3_list_syntax, pages_fetch, &p, "bkt", "pre/",
				    "d/", collect_names, &names), SNAP_ECORRUPT);
	buf_addc(&names, 0);
	assert_string_equal((char *)names.p, "d/a d/b ");
	/* The callback's value stops the listing. */
	p = (struct pages){stop, 0};
	assert_int_equal(list_pages(&s3_list_syntax, pages_fetch, &p, "bkt", "pre/",
				    "d/", collect_names, &names), 42);
	buf_free(&names);
}

static void test_index(void **state)
{
	struct index ix;
	struct ref r, got;

	(void)state;
	index_init(&ix);
	memset(&r, 0, sizeof(r));
	for (uint32_t i = 0; i < 10000; i++) {
		sha256(&i, sizeof(i), r.id);
		r.off = i;
		assert_int_equal(index_put(&ix, &r), 0);
	}
	assert_int_equal(ix.n, 10000);
	for (uint32_t i = 0; i < 10000; i++) {
		sha256(&i, sizeof(i), r.id);
		assert_true(index_get(&ix, r.id, &got));
		assert_int_equal(got.off, i);
	}
	uint32_t missing = 10001;
	sha256(&missing, sizeof(missing), r.id);
	assert_false(index_get(&ix, r.id, NULL));
	index_free(&ix);
}

static void test_varint(void **state)
{
	struct buf b = BUF_INIT;
	struct rd r;
	uint64_t vals[] = {0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX};

	(void)state;
	for (size_t i = 0; i < 7; i++)
		buf_add_varint(&b, vals[i]);
	rd_init(&r, b.p, b.len);
	for (size_t i = 0; i < 7; i++)
		assert_true(rd_varint(&r) == vals[i]);
	assert_false(r.err);
	rd_varint(&r);
	assert_true(r.err);
	buf_free(&b);
}


/* AWS Signature Version 4 test suite (2015-08-30 vectors, service
 * "service"): request, then the Authorization header AWS computed. */
static void test_sigv4_vectors(void **state)
{
	static const char *sts_token =
		"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4F"
		"ZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qk"
		"PpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7W"
		"Z0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7Z"
		"D0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3"
		"iSIlTJabIQwj2ICCR/oLxBA==";
	static const char *unres =
		"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	static const char *unres_path =
		"/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	struct sigv4_key key = {"AKIDEXAMPLE",
				"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
				"us-east-1", "service"};
	const struct kv base[] = {{"Host", "example.amazonaws.com"},
				  {"X-Amz-Date", "20150830T123600Z"}};
	const struct kv order_q[] = {{"Param2", "value2"}, {"Param1", "value1"}};
	const struct kv unres_q[] = {{unres, unres}};
	const struct kv form_h[] = {{"Content-Type", "application/x-www-form-urlencoded"},
				    {"Host", "example.amazonaws.com"},
				    {"X-Amz-Date", "20150830T123600Z"}};
	const struct kv sts_h[] = {{"Host", "example.amazonaws.com"},
				   {"X-Amz-Date", "20150830T123600Z"},
				   {"X-Amz-Security-Token", sts_token}};
	const struct kv trim_h[] = {{"Host", "example.amazonaws.com"},
				    {"My-Header1", " value1"},
				    {"My-Header2", " \"a   b   c\""},
				    {"X-Amz-Date", "20150830T123600Z"}};
	char empty_hash[65], form_hash[65];
	uint8_t d[32];
	sha256("", 0, d);
	hex_encode(d, 32, empty_hash);
	sha256("Param1=value1", 13, d);
	hex_encode(d, 32, form_hash);
	struct {
		struct sigv4_req r;
		const char *sig;
	} v[] = {
		{{"GET", "/", order_q, 2, base, 2, empty_hash},
		 "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{{"GET", unres_path, NULL, 0, base, 2, empty_hash},
		 "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
		{{"GET", "/", unres_q, 1, base, 2, empty_hash},
		 "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
		{{"GET", "/\xe1\x88\xb4", NULL, 0, base, 2, empty_hash},
		 "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
		{{"GET", "/", NULL, 0, trim_h, 4, empty_hash},
		 "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
		{{"POST", "/", NULL, 0, base, 2, empty_hash},
		 "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{{"POST", "/", NULL, 0, form_h, 3, form_hash},
		 "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
		{{"POST", "/", NULL, 0, sts_h, 3, empty_hash},
		 "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
	};
	char authz[512];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(sigv4_authorization(&v[i].r, &key,
						     "20150830T123600Z", authz,
						     sizeof(authz)), 0);
		assert_non_null(strstr(authz, "Credential=AKIDEXAMPLE/20150830/"
					      "us-east-1/service/aws4_request"));
		const char *sig = strstr(authz, "Signature=");
		assert_non_null(sig);
		assert_string_equal(sig + 10, v[i].sig);
	}
	assert_non_null(strstr(authz, "SignedHeaders=host;x-amz-date;x-amz-security-token"));
}

/* A pool hands back the capacity it was given, keeps at most keep idle
 * buffers (the rest are freed: valgrind checks nothing leaks) and always
 * returns an empty buffer. */
static void test_bufpool(void **state)
{
	struct bufpool p;
	struct buf a, b, c;
	uint8_t *pa;

	(void)state;
	bufpool_init(&p, 1);
	a = bufpool_get(&p);
	assert_null(a.p);
	assert_int_equal(buf_add(&a, "hello", 5), 0);
	pa = a.p;
	bufpool_put(&p, &a);
	assert_null(a.p);
	assert_int_equal(a.len, 0);
	b = bufpool_get(&p);
	assert_ptr_equal(b.p, pa);
	assert_int_equal(b.len, 0);
	assert_true(b.cap >= 5);
	c = bufpool_get(&p);
	assert_null(c.p);
	assert_int_equal(buf_add(&c, "x", 1), 0);
	bufpool_put(&p, &b);
	bufpool_put(&p, &c); /* beyond keep: freed */
	assert_int_equal(p.n, 1);
	bufpool_destroy(&p);
}

/* array_grow: room for element n, doubling from `first`. */
static void test_array_grow(void **state)
{
	uint64_t *v = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(array_grow(&v, &cap, 0, sizeof(*v), 4), 0);
	assert_int_equal(cap, 4);
	v[3] = 7;
	assert_int_equal(array_grow(&v, &cap, 3, sizeof(*v), 4), 0);
	assert_int_equal(cap, 4); /* still room */
	assert_int_equal(array_grow(&v, &cap, 4, sizeof(*v), 4), 0);
	assert_int_equal(cap, 8);
	assert_int_equal(v[3], 7);
	v[7] = 1;
	free(v);
}

/* The node table: growth, replacement, deletion amid probe runs. */
static void test_itab(void **state)
{
	struct itab t;
	static int vals[5000];

	(void)state;
	assert_int_equal(itab_init(&t), 0);
	for (int i = 1; i < 5000; i++)
		assert_int_equal(itab_put(&t, (uint64_t)i * 7919, &vals[i]), 0);
	assert_int_equal(t.n, 4999);
	assert_true(t.cap >= 2 * t.n);
	/* Every other one goes: the others must still be found. */
	for (int i = 1; i < 5000; i += 2)
		itab_del(&t, (uint64_t)i * 7919);
	itab_del(&t, 123456789); /* absent: nothing happens */
	for (int i = 1; i < 5000; i++)
		assert_ptr_equal(itab_get(&t, (uint64_t)i * 7919),
				 i % 2 ? NULL : &vals[i]);
	assert_int_equal(itab_put(&t, 2 * 7919, &vals[0]), 0);
	assert_ptr_equal(itab_get(&t, 2 * 7919), &vals[0]);
	assert_int_equal(t.n, 2499);
	{
		size_t seen = 0;

		for (size_t i = 0; i < t.cap; i++)
			seen += itab_at(&t, i) != NULL;
		assert_int_equal(seen, 2499);
	}
	itab_free(&t);
}

/* Expiry times as STS, IMDS and credential_process write them. */
static void test_cred_time(void **state)
{
	(void)state;
	assert_int_equal(cred_parse_time("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(cred_parse_time("2026-12-02T15:04:05Z"), 1796223845);
	assert_int_equal(cred_parse_time("2026-12-02T15:04:05.595017345Z"),
			 1796223845);
	assert_int_equal(cred_parse_time("2026-12-02T16:04:05+01:00"),
			 1796223845);
	assert_int_equal(cred_parse_time("2026-12-02T10:04:05-05:00"),
			 1796223845);
	assert_int_equal(cred_parse_time("2026-12-02T15:04:05"), -1);
	assert_int_equal(cred_parse_time("2026-12-02 15:04:05Z"), -1);
	assert_int_equal(cred_parse_time("2026-12-02T15:04:05Zjunk"), -1);
	assert_int_equal(cred_parse_time(""), -1);
}

struct fake_src {
	int calls, fail;
};

static int fake_fetch(void *ctx, struct cred *out)
{
	struct fake_src *f = ctx;
	char id[16];

	f->calls++;
	if (f->fail)
		return snap_seterr(SNAP_EACCES, "fake source down");
	snprintf(id, sizeof(id), "id%d", f->calls);
	out->id = strdup(id);
	out->secret = strdup("secret");
	out->expires = time(NULL) + 3600;
	return 0;
}

/* One fetch serves until refresh is due; a refusal by the server forces
 * one; a source that gives nothing fails the open. */
static void test_cred_cache(void **state)
{
	struct fake_src f = {0, 0};
	struct cred_cache *c = NULL;
	struct cred cr;

	(void)state;
	assert_int_equal(cred_cache_new(fake_fetch, &f, NULL, "fake", &c), 0);
	assert_int_equal(cred_get(c, &cr), 0);
	assert_string_equal(cr.id, "id1");
	cred_wipe(&cr);
	assert_int_equal(cred_get(c, &cr), 0);
	assert_int_equal(f.calls, 1);
	assert_int_equal(cred_invalidate(c, cr.gen), 1);
	cred_wipe(&cr);
	assert_int_equal(cred_get(c, &cr), 0);
	assert_string_equal(cr.id, "id2");
	/* A refusal of the credential before id2 changes nothing. */
	assert_int_equal(cred_invalidate(c, cr.gen - 1), 1);
	cred_wipe(&cr);
	assert_int_equal(cred_get(c, &cr), 0);
	assert_string_equal(cr.id, "id2");
	assert_int_equal(f.calls, 2);
	f.fail = 1;
	assert_int_equal(cred_invalidate(c, cr.gen), 1);
	cred_wipe(&cr);
	assert_int_equal(cred_get(c, &cr), SNAP_EACCES);
	assert_non_null(strstr(snap_errmsg(), "fake source down"));
	assert_null(cr.id);
	cred_cache_free(c);

	c = NULL;
	assert_int_equal(cred_cache_new(fake_fetch, &f, NULL, "fake", &c),
			 SNAP_EACCES);
	assert_null(c);
	assert_int_equal(cred_cache_static("k", "s", NULL, "static", &c), 0);
	assert_int_equal(cred_invalidate(c, 0), 0);
	assert_int_equal(cred_get(c, &cr), 0);
	assert_string_equal(cr.secret, "s");
	assert_int_equal(cr.expires, 0);
	cred_wipe(&cr);
	cred_cache_free(c);
}

/* restic's pattern rules: any depth unless anchored, "*" within one
 * component, "**" for none or more. */
static void test_exclude(void **state)
{
	struct excl *x = excl_new();
	char *j;

	(void)state;
	assert_non_null(x);
	assert_int_equal(excl_any(x), 0);
	assert_int_equal(excl_add(x, "*.tmp"), 0);
	assert_int_equal(excl_add(x, "var/cache"), 0);
	assert_int_equal(excl_add(x, "/srv/**/obj"), 0);
	assert_int_equal(excl_add(x, "a/**/b/*.log"), 0);
	assert_int_equal(excl_add(x, ""), SNAP_EINVAL);
	assert_int_equal(excl_add(x, "//"), SNAP_EINVAL);
	assert_int_equal(excl_path(x, "/home/u/x.tmp"), 1);
	assert_int_equal(excl_path(x, "/x.tmp"), 1);
	assert_int_equal(excl_path(x, "/home/u/x.tmpl"), 0);
	assert_int_equal(excl_path(x, "/data/var/cache"), 1);
	assert_int_equal(excl_path(x, "/data/var/cachex"), 0);
	assert_int_equal(excl_path(x, "/data/var"), 0);
	assert_int_equal(excl_path(x, "/srv/obj"), 1);
	assert_int_equal(excl_path(x, "/srv/p/q/obj"), 1);
	assert_int_equal(excl_path(x, "/data/srv/obj"), 0);
	assert_int_equal(excl_path(x, "/r/a/b/x.log"), 1);
	assert_int_equal(excl_path(x, "/r/a/1/2/b/x.log"), 1);
	assert_int_equal(excl_path(x, "/r/a/1/2/c/x.log"), 0);
	assert_int_equal(excl_add_tag(x, "a/b"), SNAP_EINVAL);
	assert_int_equal(excl_add_tag(x, ":x"), SNAP_EINVAL);
	assert_int_equal(excl_add_tag(x, ".nobackup"), 0);
	excl_one_fs(x);
	j = excl_json(x);
	assert_string_equal(j, "{\"if_present\":[\".nobackup\"],"
			       "\"one_file_system\":true,\"patterns\":"
			       "[\"*.tmp\",\"var/cache\",\"/srv/**/obj\","
			       "\"a/**/b/*.log\"]}");
	free(j);
	excl_free(x);
}

/* The keep rules on 400 days of daily series (newest Tuesday 2026-12-01
 * 03:00 UTC); the expected sets were computed apart, with Python's
 * datetime and ISO calendar. */
static size_t kept(const struct ret_policy *p, const int64_t *t, size_t n,
		   unsigned bit, size_t *idx)
{
	unsigned why[400];
	size_t k = 0;

	ret_evaluate(p, t, n, why);
	for (size_t i = 0; i < n; i++)
		if (bit ? (why[i] & bit) : why[i] != 0)
			idx[k++] = i;
	return k;
}

static void test_retention(void **state)
{
	static const size_t weekly[] = {0, 2, 9, 16};
	static const size_t monthly[] = {0,   1,   31,  62,  92,  123,
					 154, 184, 215, 245, 276, 304};
	static const size_t all[] = {0,  1,   2,   3,   4,   5,   6,
				     9,  16,  31,  62,  92,  123, 154,
				     184, 215, 245, 276, 304, 335};
	const int64_t day = 86400LL * 1000000000LL;
	int64_t t[400];
	size_t idx[400], n;
	struct ret_policy p;
	struct ret_span s;
	char why[128];

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	for (size_t i = 0; i < 400; i++)
		t[i] = 1796094000LL * 1000000000LL - (int64_t)i * day;
	memset(&p, 0, sizeof(p));
	assert_true(ret_policy_empty(&p));
	assert_int_equal(kept(&p, t, 400, 0, idx), 1); /* the newest only */
	p.daily = 7;
	assert_int_equal(kept(&p, t, 400, RET_DAILY, idx), 7);
	assert_int_equal(idx[6], 6);
	memset(&p, 0, sizeof(p));
	p.weekly = 4;
	n = kept(&p, t, 400, RET_WEEKLY, idx);
	assert_int_equal(n, 4);
	assert_memory_equal(idx, weekly, sizeof(weekly));
	memset(&p, 0, sizeof(p));
	p.monthly = 12;
	n = kept(&p, t, 400, RET_MONTHLY, idx);
	assert_int_equal(n, 12);
	assert_memory_equal(idx, monthly, sizeof(monthly));
	memset(&p, 0, sizeof(p));
	p.yearly = 5; /* only two years have series */
	assert_int_equal(kept(&p, t, 400, RET_YEARLY, idx), 2);
	assert_int_equal(idx[1], 335);
	p.yearly = 2;
	p.daily = 7;
	p.weekly = 4;
	p.monthly = 12;
	n = kept(&p, t, 400, 0, idx);
	assert_int_equal(n, 20);
	assert_memory_equal(idx, all, sizeof(all));
	memset(&p, 0, sizeof(p));
	p.weekly = RET_UNLIMITED;
	assert_int_equal(kept(&p, t, 400, RET_WEEKLY, idx), 58);
	memset(&p, 0, sizeof(p));
	p.last = 3;
	assert_int_equal(kept(&p, t, 400, 0, idx), 3);
	assert_int_equal(ret_parse_span("10d", &p.within), 0);
	p.last = 0;
	assert_int_equal(kept(&p, t, 400, RET_WITHIN, idx), 10);
	/* several series in one hour: the newest of them is the hour's */
	memset(&p, 0, sizeof(p));
	p.hourly = 2;
	{
		int64_t h[4] = {t[0] + 120LL * 1000000000LL, t[0],
				t[0] - 3600LL * 1000000000LL, t[1]};
		unsigned w[4];

		ret_evaluate(&p, h, 4, w);
		assert_int_equal(w[0], RET_NEWEST | RET_HOURLY);
		assert_int_equal(w[1], 0);
		assert_int_equal(w[2], RET_HOURLY);
		assert_int_equal(w[3], 0);
	}
	ret_reasons(RET_NEWEST | RET_DAILY | RET_WITHIN, why, sizeof(why));
	assert_string_equal(why, "newest, daily, within");
	assert_int_equal(ret_parse_span("1y6m2w36h", &s), 0);
	assert_int_equal(s.years, 1);
	assert_int_equal(s.months, 6);
	assert_int_equal(s.days, 14);
	assert_int_equal(s.hours, 36);
	assert_int_equal(ret_parse_span("", &s), SNAP_EINVAL);
	assert_int_equal(ret_parse_span("0d", &s), SNAP_EINVAL);
	assert_int_equal(ret_parse_span("5", &s), SNAP_EINVAL);
	assert_int_equal(ret_parse_span("-5d", &s), SNAP_EINVAL);
	assert_int_equal(ret_parse_span("5x", &s), SNAP_EINVAL);
	assert_int_equal(ret_parse_span("999999999999d", &s), SNAP_EINVAL);
	/* a month back from 31 March is 3 March (normalised), as in Go */
	assert_int_equal(ret_parse_span("1m", &s), 0);
	assert_true(ret_before(1774926000LL * 1000000000LL, &s) ==
		    1772506800LL * 1000000000LL);
	/* --full-every 3: backup 4 starts a new series; --full-after 7d */
	assert_int_equal(ret_full_due(3, &(struct ret_span){0}, 2, 0, 0), 0);
	assert_int_equal(ret_full_due(3, &(struct ret_span){0}, 3, 0, 0), 1);
	assert_int_equal(ret_parse_span("7d", &s), 0);
	assert_int_equal(ret_full_due(0, &s, 99, t[6], t[0]), 0);
	assert_int_equal(ret_full_due(0, &s, 99, t[7], t[0]), 1);
}

/* Version-7 series ids sort by time and carry it; version 4 carry none. */
static void test_uuid_v7(void **state)
{
	char a[37], b[37];
	int64_t now = now_ns() / 1000000, ms;

	(void)state;
	assert_int_equal(uuid_v7(a), 0);
	ms = uuid_v7_ms(a);
	assert_true(ms >= now && ms <= now + 1000);
	assert_int_equal(a[14], '7');
	assert_true(strchr("89ab", a[19]) != NULL);
	assert_int_equal(uuid_v4(b), 0);
	assert_int_equal(uuid_v7_ms(b), -1);
	assert_true(uuid_v7_ms("017f22e2-79b0-7cc3-98c4-dc0c0c07398f") ==
		    0x017f22e279b0LL);
	assert_int_equal(uuid_v7_ms("017f22e2-79b0-7cc3-98c4"), -1);
	assert_int_equal(uuid_v7_ms("017f22eX-79b0-7cc3-98c4-dc0c0c07398f"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunker_sizes),
		cmocka_unit_test(test_chunker_insertion),
		cmocka_unit_test(test_chunker_seed_matters),
		cmocka_unit_test(test_blob_codecs),
		cmocka_unit_test(test_crypto_keys),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_tree_roundtrip),
		cmocka_unit_test(test_tree_hostile),
		cmocka_unit_test(test_tree_special),
		cmocka_unit_test(test_tree_v1_bytes),
		cmocka_unit_test(test_tree_special_hostile),
		cmocka_unit_test(test_manifest),
		cmocka_unit_test(test_manifest_encode_enomem),
		cmocka_unit_test(test_pack_trailer),
		cmocka_unit_test(test_pack_codec),
		cmocka_unit_test(test_pack_read_index_hostile),
		cmocka_unit_test(test_list_parse),
		cmocka_unit_test(test_list_pages),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_varint),
		cmocka_unit_test(test_sigv4_vectors),
		cmocka_unit_test(test_bufpool),
		cmocka_unit_test(test_array_grow),
		cmocka_unit_test(test_itab),
		cmocka_unit_test(test_cred_time),
		cmocka_unit_test(test_cred_cache),
		cmocka_unit_test(test_exclude),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_uuid_v7),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
