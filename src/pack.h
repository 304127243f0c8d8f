/*
 * pack.h - packs: the only objects that hold chunk data.
 *
 * A pack is written once under data/<seriesId>/<packId> (packId: 16 random
 * bytes in hex) and never modified:
 *
 *   blob 0 | blob 1 | ... | trailer blob | footer (44 bytes)
 *   footer = trailer id (32) | trailer blob length (u32le)
 *            | trailer raw length (u32le) | "SNP1"
 *
 * The trailer is itself a blob (compressed, and encrypted in an encrypted
 * repository) listing every blob: type, id, offset, stored length, raw
 * length.  Readers of backups never need it: directory objects carry each
 * chunk's pack and offset.  It is there for check, for rebuilding the dedup
 * index of a series, and for recovery.
 *
 * A struct ref names one blob anywhere in a series.
 */
#ifndef SNAPFS_PACK_H
#define SNAPFS_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "store.h"
#include "util.h"

#define PACK_ID_LEN 16
#define PACK_FOOTER_LEN 44
#define PACK_TARGET (16u << 20)

enum blob_type { BT_DATA = 1, BT_TREE = 2 };

struct ref {
	uint8_t id[ID_LEN];
	uint8_t pack[PACK_ID_LEN];
	uint32_t off, len, raw; /* offset and stored length in the pack,
				   plaintext length */
};

struct pack {
	uint8_t id[PACK_ID_LEN];
	struct buf data;
	struct buf index; /* trailer plaintext, built as blobs are added */
	uint32_t count;
};

struct pack_entry {
	uint8_t type;
	uint8_t id[ID_LEN];
	uint32_t off, len, raw;
};

/* Starts an empty pack with a fresh random id. */
int pack_begin(struct pack *p);

/* Appends an encoded blob; fills *r (which may be NULL). */
int pack_add(struct pack *p, enum blob_type type, const uint8_t id[ID_LEN],
	     const void *blob, size_t n, uint32_t raw, struct ref *r);

/* Appends trailer and footer; p->data is then the object to upload. */
int pack_finish(struct pack *p, const struct keys *k);

void pack_free(struct pack *p);

/* "data/<series>/<hex pack id>" into out (size >= 128 + series length). */
void pack_key(const char *series, const uint8_t pack[PACK_ID_LEN], char *out,
	      size_t n);

/* The largest trailer plaintext a reader accepts: 64 MiB lists more than
 * a million blobs, far beyond what PACK_TARGET packs hold. */
#define PACK_TRAILER_MAX (64u << 20)

/* What a pack's footer announces, checked against the pack's size. */
struct pack_footer {
	uint8_t tid[ID_LEN]; /* the trailer blob's id */
	uint32_t tlen, rlen; /* trailer blob length, its plaintext length */
	uint64_t tail;       /* tlen + PACK_FOOTER_LEN: what the reader needs */
	uint64_t data_end;   /* where the blobs end and the trailer starts */
};

/*
 * The trailer codec is pure (no I/O) so that hostile inputs can be fed to
 * it directly.  Both functions take tail, the last n bytes of a pack that
 * is size bytes long, and return 0 or SNAP_ECORRUPT with a message that
 * says what is wrong but names no object (the caller adds the key), or
 * SNAP_ENOMEM.
 */

/* Parses the footer at the end of tail.  SNAP_ECORRUPT when tail is
 * shorter than a footer or longer than the pack, the magic is wrong, or the
 * trailer it announces does not fit in the pack, is longer than any blob of
 * rlen bytes can be, or rlen exceeds PACK_TRAILER_MAX. */
int pack_parse_footer(const uint8_t *tail, size_t n, uint64_t size,
		      struct pack_footer *f);

/* Authenticates and parses the trailer f announces; tail must hold at
 * least f->tail bytes (SNAP_EINVAL otherwise).  Every entry is checked to
 * lie inside the blob area.  *ents is malloc'd (caller frees) and *count
 * set only on success. */
int pack_parse_trailer(const struct keys *k, const struct pack_footer *f,
		       const uint8_t *tail, size_t n,
		       struct pack_entry **ents, size_t *count);

/* Reads and authenticates a pack's trailer.  *ents is malloc'd (caller
 * frees); *size receives the pack's length.  A missing, truncated or
 * tampered pack is an error naming the key. */
int pack_read_index(struct store *s, const struct keys *k, const char *key,
		    struct pack_entry **ents, size_t *n, uint64_t *size);

#endif
