/*
 * acl.h - POSIX access ACLs as Linux stores them in the
 * system.posix_acl_access attribute, and their coupling to a file's mode:
 * the owner, group (the mask when there is one) and other bits of the mode
 * are the ACL's user::, mask:: (or group::) and other:: entries.  A real
 * filesystem keeps them in step; the writable tree of the mount does it
 * with these two pure functions (no I/O).
 *
 * Format: u32 version (2), then entries of u16 tag, u16 perm, u32 id, all
 * little endian.  Malformed input is SNAP_EINVAL.
 */
#ifndef SNAPFS_ACL_H
#define SNAPFS_ACL_H

#include <stddef.h>
#include <stdint.h>

#define ACL_XATTR_ACCESS "system.posix_acl_access"
#define ACL_XATTR_DEFAULT "system.posix_acl_default"

/* The permission bits (0777) an access ACL implies for the mode. */
int acl_to_mode(const void *xattr, size_t len, uint32_t *perm);

/* Puts the permission bits of mode into the ACL's user::, mask:: (or
 * group::) and other:: entries, in place. */
int acl_from_mode(void *xattr, size_t len, uint32_t mode);

/* 1 when the ACL holds only user::, group:: and other:: (it says no more
 * than the mode, and Linux keeps no such ACL), 0 when it holds more,
 * SNAP_EINVAL when malformed. */
int acl_is_minimal(const void *xattr, size_t len);

#endif
