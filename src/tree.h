/*
 * tree.h - directory objects: one per directory, stored as a blob.
 *
 * A tree lists a directory's entries sorted by name (bytewise), each with
 * everything a restore or a mount needs: type, mode, owner, mtime in ns,
 * size, symlink target, xattrs, hardlink id, and for a regular file its
 * chunk list with each chunk's pack and offset (so reading a file needs no
 * global index), or for a directory the ref of its own tree.  ctime and
 * inode are kept only so the next backup can tell an unchanged file without
 * reading it.
 *
 * Encoding (all integers LEB128 varints unless noted, see snapfs(5)):
 *   "SNTR" u8(version) npacks {pack id(16)} nentries {entry}
 *   entry: name(bytes) u8(type) mode uid gid mtime_ns(zigzag)
 *          ctime_ns(zigzag) ino size hardlink nxattrs {name value}
 *          REG: nchunks {gap id(32) pack_idx off len raw}
 *          DIR: id(32) pack_idx off len raw files bytes
 *          LNK: target(bytes)
 *          CHR, BLK (version 2): major minor
 *          FIFO (version 2): nothing more
 * A chunk's file offset is the end of the previous chunk plus its gap:
 * gaps are the holes of sparse files.
 *
 * Versions: 1 knows files, directories and symlinks; 2 adds FIFOs and
 * devices and is otherwise the same.  The encoder writes the lowest
 * version that holds the entries, so a directory without special files
 * keeps the bytes (and the id, and the dedup) it had before version 2.  A
 * repository may hold a version-N object only once its snapfs.json says
 * format N or later (repo_require_format()).
 *
 * Decoding validates everything a hostile object could use against a
 * restore: names are non-empty, contain no '/' or NUL, are not "." or "..",
 * and are strictly sorted (so unique); the file type bits of each mode are
 * those of its entry type, the type is one its version knows;
 * device numbers fit 32 bits; chunks lie inside the file size.  Such objects are
 * SNAP_ECORRUPT (the caller names the object).
 *
 * Memory: a decoded tree owns all its strings and arrays in one arena;
 * tree_free() releases everything.
 */
#ifndef SNAPFS_TREE_H
#define SNAPFS_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "pack.h"
#include "util.h"

enum ent_type {
	ET_REG = 1,
	ET_DIR = 2,
	ET_LNK = 3,
	/* version 2: special files */
	ET_FIFO = 4,
	ET_CHR = 5,
	ET_BLK = 6,
};

#define TREE_VERSION 2 /* the newest this snapfs reads and writes */

struct xattr {
	char *name;
	uint8_t *val;
	size_t len;
};

struct chunk {
	uint64_t off; /* offset in the file */
	struct ref r;
};

struct tent {
	char *name;
	uint8_t type;
	uint32_t mode, uid, gid; /* mode includes the S_IFMT bits */
	int64_t mtime_ns, ctime_ns;
	uint64_t ino, size, hardlink;
	struct xattr *xattrs;
	size_t nxattrs;
	/* ET_REG */
	struct chunk *chunks;
	size_t nchunks;
	/* ET_DIR: the subtree and what it holds (recursively) */
	struct ref sub;
	uint64_t sub_files, sub_bytes;
	/* ET_LNK */
	char *target;
	/* ET_CHR, ET_BLK: the device number, as major(3)/minor(3) give it */
	uint32_t rdev_major, rdev_minor;
};

struct arena_blk;

struct tree {
	struct tent *ents;
	size_t n;
	struct arena_blk *arena;
};

/* The file type bits (S_IFREG, ...) of an entry type; 0 for none. */
uint32_t ent_ifmt(uint8_t type);
/* The entry type of a mode's file type bits; 0 for a socket (never
 * stored) or an unknown type. */
uint8_t ent_type(uint32_t mode);

/* The version tree_encode() writes for these entries: 2 when one of them
 * is a FIFO or a device, else 1. */
int tree_version(const struct tent *ents, size_t n);

/* Serialises entries (which the caller has sorted by name) into out, in
 * version tree_version(ents, n). */
int tree_encode(const struct tent *ents, size_t n, struct buf *out);

/* Parses and validates an encoded tree.  On failure *t is empty. */
int tree_decode(const uint8_t *p, size_t n, struct tree *t);

void tree_free(struct tree *t);

/* Binary search by name; NULL when absent. */
const struct tent *tree_find(const struct tree *t, const char *name);

/* The first chunk of file e that ends after offset off (e->nchunks when
 * none does). */
size_t tent_chunk_at(const struct tent *e, uint64_t off);

/* Non-zero when name is acceptable as one path component. */
int name_ok(const char *name, size_t len);

/* Appends a copy of one attribute to the malloc'd array *v of *n (for
 * builders of entries).  0 or SNAP_ENOMEM with the array unchanged. */
int xattr_append(struct xattr **v, size_t *n, const char *name,
		 const void *val, size_t len);
/* Frees such an array. */
void xattrs_free(struct xattr *v, size_t n);

/* Allocation from the tree's arena (for builders that assemble trees). */
void *tree_alloc(struct tree *t, size_t n);
char *tree_strdup(struct tree *t, const char *s, size_t n);

/* Hardlink id -> the path its first name was restored or written at, for
 * walks that meet the later names of a hardlinked file (restore, export).
 * Hashed: a group with many hardlinks costs O(1) per name.  Paths are
 * copied; linkmap_reset() empties the map for the next group. */
struct linkmap {
	struct lm_slot {
		uint64_t id; /* 0: empty (hardlink ids start at 1) */
		char *path;
	} *v;
	size_t n, cap;
};

const char *linkmap_get(const struct linkmap *m, uint64_t id);
/* 0 or SNAP_ENOMEM. */
int linkmap_put(struct linkmap *m, uint64_t id, const char *path);
void linkmap_reset(struct linkmap *m);
void linkmap_free(struct linkmap *m);

#endif
