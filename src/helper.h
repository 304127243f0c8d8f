/*
 * helper.h - the restore helper: puts a backup in place of a live
 * directory of a cluster node, safely.
 *
 * Posting directories (Dgraph): every group g<N>, p<N> or <N> (or one
 * mapped with maps) becomes DIR/p<N>, with a group_id file holding "<N>\n"
 * when the backup has none.  An existing DIR/p<N> is refused unless force,
 * which moves it aside as DIR/p<N>.bak-<UTC timestamp>.
 *
 * ZooKeeper: the group must be a data directory: version-2/ holding
 * snapshot.<hex> / log.<hex> files, or the DC/OS layout
 * zookeeper/snapshot/version-2 + zookeeper/transactions/version-2, in which
 * case DATADIR is the directory holding zookeeper/ and only DATADIR/zookeeper
 * is replaced (as dcos-zk does).  Refused while a ZooKeeper server uses the
 * data directory: a live pid in pid_file, DATADIR/zookeeper_server.pid
 * (zkServer.sh) or DATADIR/zk.pid (Exhibitor); any process with a file or
 * its working directory below DATADIR; or a server answering at
 * zk_address.  Processes that cannot be inspected (other users', when not
 * run as root; all of them when /proc is not mounted or hides them) might
 * be that server: SNAP_EACCES, unless force, which then assumes (with a
 * warning) that none of them uses DATADIR.  The current DATADIR is moved
 * aside as DATADIR.bak-<timestamp>; myid is the node's: the current one
 * is kept, and the backup's is dropped unless restore_myid.
 *
 * Both restore into a sibling of the destination on the same filesystem,
 * ".<name>.snapfs-<series>-<num>", and rename only after every group is
 * complete (and, for ZooKeeper, verified against the backup), so a failure
 * at any point leaves the destination as it was.  The sibling stays after
 * a failure so that the same command resumes (files that verify are kept);
 * after ENOSPC it is removed to give the space back.  Siblings left by
 * attempts at other backups are removed first.
 *
 * The swap: an existing destination trades places with the restored copy
 * in one renameat2(RENAME_EXCHANGE), so it never goes missing, even for a
 * moment; where the filesystem cannot exchange (EINVAL), two renames do it
 * and the destination is missing between them.  Nothing is ever renamed
 * over an existing name (RENAME_NOREPLACE).  Posting directories are
 * swapped all or none: when one group's swap fails, the groups already
 * swapped are put back as they were (their restored copies back in their
 * siblings, to resume from), and the error says which could not be.
 */
#ifndef SNAPFS_HELPER_H
#define SNAPFS_HELPER_H

#include <limits.h>

#include "restore.h"

struct group_map {
	const char *group;
	unsigned n; /* p<n> */
};

struct helper_opts {
	struct restore_opts ro; /* threads, owner, progress, warn; group */
	int verify;             /* also verify posting directories */
	/* postings */
	const char *postings;
	const struct group_map *maps;
	size_t nmaps;
	int force; /* postings: move p<N> aside; zookeeper: see above */
	/* zookeeper */
	const char *zookeeper;
	const char *pid_file, *zk_address;
	int restore_myid;
	/* Called with one line per step taken (may be NULL). */
	void (*say)(const char *msg, void *ctx);
	void *say_ctx;
};

struct helper_result {
	size_t groups;
	struct restore_result sum; /* over every group restored */
	char aside[PATH_MAX];      /* where the old directory went, or "" */
};

int restore_postings(struct repo *r, const char *series, uint32_t num,
		     const struct helper_opts *o, struct helper_result *res);
int restore_zookeeper(struct repo *r, const char *series, uint32_t num,
		      const struct helper_opts *o, struct helper_result *res);

/* The posting directory number of a group name: "g<N>", "p<N>" or "<N>"
 * with N in 1..2^31-1; 0 when the name has none. */
unsigned postings_number(const char *group);

#endif
