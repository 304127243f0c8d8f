/*
 * manifest.h - one backup's manifest: the commit point of a backup.
 *
 * Stored as JSON at manifests/<seriesId>/<backupNum>.json with a create-only
 * put after every pack it references is durable.  Field names follow
 * Dgraph's manifest.json where they fit (see snapfs(5)).  In an encrypted
 * repository the manifest carries "mac": HMAC-SHA-256 under the mac subkey
 * over the canonical JSON (sorted keys, compact) of all other fields; a
 * manifest without a valid MAC is rejected there, so nobody can plant a
 * plain manifest in an encrypted repository.
 *
 * manifest_parse() validates every field (types, ranges, label rule, that
 * backup_id/backup_num match where the object was found) so the engine can
 * trust a parsed manifest's shape.
 */
#ifndef SNAPFS_MANIFEST_H
#define SNAPFS_MANIFEST_H

#include <stdint.h>

#include "crypto.h"
#include "pack.h"
#include "tree.h"
#include "util.h"

#define SERIES_MAX 64 /* label (25) + '-' + uuid (36) + NUL, rounded */
#define LABEL_MIN 3
#define LABEL_MAX 25
/* The manifest's own format_version.  Format 2 of the repository changed
 * directory objects only, so manifests stay at 1: the backups of a
 * repository that never needed format 2 stay readable to snapfs 0.1. */
#define MANIFEST_VERSION 1
#define MANIFEST_MAX (64u << 20) /* refuse larger manifests unread */

#define STATUS_READY "STATUS_READY"

/* Extended attribute namespaces (struct manifest.xattr_ns bits). */
#define XNS_SECURITY 1
#define XNS_SYSTEM 2
#define XNS_TRUSTED 4
#define XNS_USER 8

/* The XNS_* bit of an attribute name ("user.x" -> XNS_USER); 0 for a name
 * in no namespace Linux knows. */
int xattr_ns_of(const char *name);

struct mgroup {
	char *name;
	struct ref root;
	uint64_t files, bytes;
	/* the group directory's own metadata */
	uint32_t mode, uid, gid;
	int64_t mtime_ns;
	/* hardlink ids below this may be taken (0: not recorded) */
	uint64_t hardlink_next;
	/* the group directory's inode number as the mount's control/ gave
	 * it, bit 63 set (0: not recorded) */
	uint64_t ino;
	/* the group directory's extended attributes (owned) */
	struct xattr *xattrs;
	size_t nxattrs;
};

struct manifest {
	char series[SERIES_MAX];
	char label[LABEL_MAX + 1];
	uint32_t num, parent;     /* parent 0: none (a full backup) */
	int full, encrypted;
	int64_t created, since;   /* ns since the epoch; since: parent's */
	char status[32];
	struct mgroup *groups;
	size_t ngroups;
	uint8_t (*packs)[PACK_ID_LEN]; /* packs this backup wrote */
	size_t npacks;
	/* statistics of the run that made it */
	uint64_t bytes_new, bytes_reused, files_new, files_reused;
	double elapsed;
	char version[32]; /* snapfs_version that wrote it */
	/* XNS_* bits of every attribute namespace some entry of the backup
	 * uses; -1 when the manifest does not say (an older writer).  A
	 * reader may answer "not supported" for a namespace known absent. */
	int xattr_ns;
	/* Written through the mount's control/: the next inode number it
	 * may hand out (0: not recorded), and the token of the stage that
	 * committed it ("" for other backups). */
	uint64_t ino_next;
	char stage_token[33];
	/* The token of the backup's index object (ixobj.h), 32 hex digits;
	 * "": it has none (an older writer, or its put lost a race). */
	char index_token[33];
	/* What the backup left out, compact JSON (exclude.h's excl_json()),
	 * malloc'd; NULL: nothing, or not recorded. */
	char *excludes;
};

/* Label rule: 3-25 characters of [A-Za-z0-9_.-], not starting with "..".
 * Returns 0 or SNAP_EINVAL with a message quoting the rule. */
int label_check(const char *label);

/* Group names are one path component not starting with '.'. */
int group_check(const char *name);

/* Series ids are "<label>-<uuid v4>". */
int series_check(const char *series);

/* Copies the label part of a valid series id. */
void series_label(const char *series, char out[LABEL_MAX + 1]);

/* "manifests/<series>/<num>.json" */
void manifest_key(const char *series, uint32_t num, char *out, size_t n);

/* Appends m as JSON (with MAC when k is encrypted) to out.  Returns 0,
 * SNAP_ENOMEM, or SNAP_EINVAL when a group name is not UTF-8; on failure
 * out is as it was: never a manifest missing a part. */
int manifest_encode(const struct manifest *m, const struct keys *k,
		    struct buf *out);

/* Parses, authenticates and validates; series/num are where it was found
 * (num 0 skips that check).  On failure *m is empty and the message says
 * what is wrong, naming the key. */
int manifest_parse(const char *json, size_t n, const struct keys *k,
		   const char *series, uint32_t num, struct manifest *m);

void manifest_free(struct manifest *m);

/* Deep copies of a group (name and attributes), and their release. */
int mgroup_copy(struct mgroup *dst, const struct mgroup *src);
void mgroup_free(struct mgroup *g);

#endif
