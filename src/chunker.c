/* chunker.c - FastCDC (Xia et al., 2016) with normalization level 2. */
#include "config.h"

#include <string.h>

#include "chunker.h"
#include "crypto.h"
#include "err.h"

static int log2_exact(size_t v)
{
	int b = 0;

	if (v == 0 || (v & (v - 1)))
		return -1;
	while ((1ull << b) < v)
		b++;
	return b;
}

int chunker_init(struct chunker *c, const uint8_t seed[32], size_t min,
		 size_t avg, size_t max)
{
	uint8_t block[36], out[32];
	int bits = log2_exact(avg);

	if (bits < 8 || bits > 30 || min < 64 || min >= avg || avg >= max)
		return snap_seterr(SNAP_EINVAL,
				   "bad chunker sizes %zu/%zu/%zu", min, avg,
				   max);
	memcpy(block, seed, 32);
	for (uint32_t i = 0; i < 256 / 4; i++) {
		block[32] = i;
		block[33] = i >> 8;
		block[34] = block[35] = 0;
		sha256(block, sizeof(block), out);
		memcpy(&c->gear[i * 4], out, 32);
	}
	/* The hash shifts left one bit a byte, so its top bits mix the last
	 * 64 bytes; masks over the top bits use the whole window.  Two bits
	 * more than avg before the normal size, two fewer after it. */
	c->mask_s = ~0ull << (64 - (bits + 2));
	c->mask_l = ~0ull << (64 - (bits - 2));
	c->min = min;
	c->avg = avg;
	c->max = max;
	return 0;
}

size_t chunker_cut(const struct chunker *c, const uint8_t *p, size_t n,
		   int eof)
{
	size_t i, normal;
	uint64_t h = 0;

	if (n <= c->min)
		return n;
	if (n > c->max)
		n = c->max;
	else if (!eof && n < c->max)
		return n; /* caller broke the contract; do not loop */
	normal = c->avg < n ? c->avg : n;
	for (i = c->min; i < normal; i++) {
		h = (h << 1) + c->gear[p[i]];
		if (!(h & c->mask_s))
			return i + 1;
	}
	for (; i < n; i++) {
		h = (h << 1) + c->gear[p[i]];
		if (!(h & c->mask_l))
			return i + 1;
	}
	return n;
}
