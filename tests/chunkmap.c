/*
 * chunkmap - prints where the chunks of a backed-up file start, one offset
 * a line, then the file's size on a line of its own.  The chunker's gear
 * table is random per repository, so a test that must know where chunk
 * boundaries fell (what a read fetches) asks the backup itself.
 *
 * usage: chunkmap REPO SERIES/N/GROUP/PATH
 * An encrypted repository's key comes from SNAPFS_KEY_FILE.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "repo.h"
#include "tree.h"

static int print_chunks(struct repo *r, const char *series,
			const struct manifest *m, char *path)
{
	char *group = strtok(path, "/"), *name;
	struct ref ref;
	size_t g;
	int rc = 0;

	for (g = 0; group && g < m->ngroups; g++)
		if (!strcmp(m->groups[g].name, group))
			break;
	if (!group || g == m->ngroups)
		return snap_seterr(SNAP_ENOENT, "no group '%s'",
				   group ? group : "");
	ref = m->groups[g].root;
	for (name = strtok(NULL, "/"); rc == 0 && name;) {
		const struct tent *e;
		struct tree t;
		char *next = strtok(NULL, "/");

		rc = repo_read_tree(r, series, &ref, &t);
		if (rc)
			break;
		e = tree_find(&t, name);
		if (!e || (next ? e->type != ET_DIR : e->type != ET_REG)) {
			rc = snap_seterr(SNAP_ENOENT, "no %s '%s'",
					 next ? "directory" : "file", name);
		} else if (next) {
			ref = e->sub;
		} else {
			for (size_t i = 0; i < e->nchunks; i++)
				printf("%" PRIu64 "\n", e->chunks[i].off);
			printf("%" PRIu64 "\n", e->size);
		}
		tree_free(&t);
		name = next;
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct open_opts ko = {.key.file = getenv("SNAPFS_KEY_FILE")};
	char series[SERIES_MAX], *spec, *num, *path;
	struct manifest m;
	struct repo *r;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: chunkmap REPO SERIES/N/GROUP/PATH\n");
		return 2;
	}
	spec = argv[2];
	num = strchr(spec, '/');
	path = num ? strchr(num + 1, '/') : NULL;
	if (!path || (size_t)(num - spec) >= sizeof(series)) {
		fprintf(stderr, "chunkmap: expected SERIES/N/GROUP/PATH\n");
		return 2;
	}
	snprintf(series, sizeof(series), "%.*s", (int)(num - spec), spec);
	rc = repo_open(argv[1], &ko, &r);
	if (rc == 0) {
		rc = repo_load_manifest(r, series, (uint32_t)atoi(num + 1), &m);
		if (rc == 0) {
			rc = print_chunks(r, series, &m, path + 1);
			manifest_free(&m);
		}
		repo_close(r);
	}
	if (rc)
		fprintf(stderr, "chunkmap: %s\n", snap_errmsg());
	return rc ? 1 : 0;
}
