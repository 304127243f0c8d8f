/*
 * chunker.h - FastCDC content-defined chunking with normalized chunk sizes.
 *
 * Boundaries depend only on the bytes near them, so an insertion early in a
 * file moves the boundaries around it and leaves the rest in place: most
 * chunks of an edited file dedupe against its previous version.  The gear
 * table is derived from a per-repository seed (the "gear" subkey when the
 * repository is encrypted), so boundaries reveal nothing about content.
 *
 * Stateless: chunker_cut() looks at a window of data and says where the
 * first chunk ends.  The caller keeps at least max_size bytes in the window
 * (or everything that is left at end of input), which guarantees a cut.
 */
#ifndef SNAPFS_CHUNKER_H
#define SNAPFS_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_MIN (256u << 10)
#define CHUNK_AVG (1u << 20)
#define CHUNK_MAX (4u << 20)

struct chunker {
	uint64_t gear[256];
	uint64_t mask_s, mask_l; /* harder before avg, easier after */
	size_t min, avg, max;
};

/* Builds the gear table from a 32-byte seed.  Sizes must satisfy
 * 64 <= min < avg < max and avg a power of two; else SNAP_EINVAL. */
int chunker_init(struct chunker *c, const uint8_t seed[32], size_t min,
		 size_t avg, size_t max);

/* Length of the first chunk of p[0..n).  eof says no more data follows;
 * without it n must be >= max (otherwise the result may be premature). */
size_t chunker_cut(const struct chunker *c, const uint8_t *p, size_t n,
		   int eof);

#endif
