/*
 * export.h - writes a backup as a tar archive with libarchive, streaming.
 *
 * Members are "<group>/<path>" for every group, or "./<path>" relative to
 * the root of opts->group.  pax format, an extended header per member:
 * nanosecond mtimes, numeric owners, modes, xattrs (SCHILY.xattr, as GNU
 * tar --xattrs reads them), symlinks, hardlinks (later names link to the
 * first), FIFOs and device nodes (with their major and minor), and holes as GNU sparse 1.0 members, so a 64 MiB preallocated
 * ZooKeeper log costs only its data.  Names are written as UTF-8 whatever
 * the locale; one that is not valid UTF-8 goes out as its raw bytes
 * (hdrcharset=BINARY for that member).
 * Compression follows the file name: .tar, .tar.gz/.tgz, .tar.zst/.tzst,
 * .tar.xz/.txz, .tar.bz2/.tbz2, .tar.lz4; "-" (standard output) or another
 * name is plain tar unless opts->format names one of those.
 *
 * Format "dcos-zk": the gzip tarball `dcos-zk restore` takes: the group's
 * zookeeper/ directory (DC/OS layout) as ./zookeeper/..., without the
 * node's myid and zookeeper.out.
 *
 * A pool fetches and authenticates chunks ahead of the writer, across
 * directory boundaries, at most a fixed window of 4 MiB batches; directory
 * objects are fetched ahead too, at most 1024 directories beyond the one
 * being written.  Memory does not grow with file or backup size (a single
 * directory's listing is held whole).  A file is written as FILE.partial and renamed when
 * complete; on failure it is removed and nothing is left at FILE.
 */
#ifndef SNAPFS_EXPORT_H
#define SNAPFS_EXPORT_H

#include <stdint.h>

#include "progress.h"
#include "repo.h"

struct export_opts {
	const char *output; /* a file name, or "-" for standard output */
	const char *group;  /* NULL: every group */
	const char *format; /* NULL: from the name; a suffix ("tar.gz") or
			       "dcos-zk" */
	int threads;        /* 0: default */
	struct progress *progress;
};

struct export_result {
	uint64_t files, dirs, links, bytes;
	uint64_t specials; /* FIFOs and device nodes */
	double elapsed;
};

int export_run(struct repo *r, const char *series, uint32_t num,
	       const struct export_opts *o, struct export_result *res);

#endif
