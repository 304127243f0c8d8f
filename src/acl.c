/* acl.c - access ACLs and the mode bits; see acl.h. */
#include "config.h"

#include "acl.h"
#include "err.h"
#include "util.h"

#define ACL_VERSION 2
#define TAG_USER_OBJ 0x01
#define TAG_GROUP_OBJ 0x04
#define TAG_MASK 0x10
#define TAG_OTHER 0x20

static uint16_t get_u16le(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static int check(const void *xattr, size_t len)
{
	if (len < 4 || (len - 4) % 8 || get_u32le(xattr) != ACL_VERSION)
		return snap_seterr(SNAP_EINVAL, "malformed POSIX ACL");
	return 0;
}

/* The entries that carry the mode: user::, the group class (mask:: if
 * present, else group::) and other::.  NULL when absent. */
static void mode_entries(uint8_t *p, size_t len, uint8_t **u, uint8_t **g,
			 uint8_t **o)
{
	uint8_t *grp = NULL, *mask = NULL;

	*u = *o = NULL;
	for (size_t i = 4; i + 8 <= len; i += 8) {
		switch (get_u16le(p + i)) {
		case TAG_USER_OBJ: *u = p + i; break;
		case TAG_GROUP_OBJ: grp = p + i; break;
		case TAG_MASK: mask = p + i; break;
		case TAG_OTHER: *o = p + i; break;
		}
	}
	*g = mask ? mask : grp;
}

int acl_to_mode(const void *xattr, size_t len, uint32_t *perm)
{
	uint8_t *u, *g, *o;

	SNAP_TRY(check(xattr, len));
	mode_entries((uint8_t *)xattr, len, &u, &g, &o);
	if (!u || !g || !o)
		return snap_seterr(SNAP_EINVAL,
				   "POSIX ACL without user, group or other");
	*perm = (uint32_t)(get_u16le(u + 2) & 7) << 6 |
		(uint32_t)(get_u16le(g + 2) & 7) << 3 |
		(uint32_t)(get_u16le(o + 2) & 7);
	return 0;
}

int acl_from_mode(void *xattr, size_t len, uint32_t mode)
{
	uint8_t *u, *g, *o;

	SNAP_TRY(check(xattr, len));
	mode_entries(xattr, len, &u, &g, &o);
	if (!u || !g || !o)
		return snap_seterr(SNAP_EINVAL,
				   "POSIX ACL without user, group or other");
	u[2] = (uint8_t)((mode >> 6) & 7);
	u[3] = 0;
	g[2] = (uint8_t)((mode >> 3) & 7);
	g[3] = 0;
	o[2] = (uint8_t)(mode & 7);
	o[3] = 0;
	return 0;
}

int acl_is_minimal(const void *xattr, size_t len)
{
	const uint8_t *p = xattr;

	SNAP_TRY(check(xattr, len));
	for (size_t i = 4; i + 8 <= len; i += 8) {
		uint16_t tag = get_u16le(p + i);

		if (tag != TAG_USER_OBJ && tag != TAG_GROUP_OBJ &&
		    tag != TAG_OTHER)
			return 0;
	}
	return 1;
}
