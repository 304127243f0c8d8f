/*
 * mkhostile - plants a backup with a crafted directory object in a plain
 * repository, to test that restore refuses what a hostile or tampered
 * repository could hold.  Plain repositories authenticate blobs only by
 * their SHA-256 id, so anyone with write access can make valid-looking
 * objects: the decoder's validation is the line of defence.
 *
 * usage: mkhostile REPO KIND      KIND: dotdot | slash | dup | absname
 * Prints the series id it wrote.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "err.h"
#include "manifest.h"
#include "pack.h"
#include "repo.h"
#include "tree.h"

static int put_blob(struct repo *r, struct pack *p, enum blob_type t,
		    const void *data, size_t n, struct ref *ref)
{
	struct buf enc = BUF_INIT;
	uint8_t id[ID_LEN];
	int rc;

	chunk_id(&r->keys, data, n, id);
	rc = blob_encode(&r->keys, id, data, n, &enc);
	rc = rc ? rc : pack_add(p, t, id, enc.p, enc.len, n, ref);
	buf_free(&enc);
	return rc;
}

int main(int argc, char **argv)
{
	static const char payload[] = "escaped!\n";
	struct open_opts ko = {0};
	struct repo *r;
	struct pack p;
	struct tent ents[2];
	struct chunk ch;
	struct buf tree = BUF_INIT, text = BUF_INIT;
	struct manifest m;
	struct mgroup g;
	char uuid[37], key[200];
	size_t n = 1;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: mkhostile REPO dotdot|slash|dup|absname\n");
		return 2;
	}
	if (repo_open(argv[1], &ko, &r)) {
		fprintf(stderr, "mkhostile: %s\n", snap_errmsg());
		return 1;
	}
	memset(ents, 0, sizeof(ents));
	memset(&m, 0, sizeof(m));
	memset(&g, 0, sizeof(g));
	rc = pack_begin(&p);
	rc = rc ? rc : put_blob(r, &p, BT_DATA, payload, strlen(payload), &ch.r);
	ch.off = 0;
	ents[0].type = ET_REG;
	ents[0].mode = 0100644;
	ents[0].size = strlen(payload);
	ents[0].chunks = &ch;
	ents[0].nchunks = 1;
	if (!strcmp(argv[2], "dotdot")) {
		ents[0].name = "..";
	} else if (!strcmp(argv[2], "slash")) {
		ents[0].name = "../../escaped";
	} else if (!strcmp(argv[2], "absname")) {
		ents[0].name = "/tmp/snapfs-escaped";
	} else {
		ents[0].name = "same";
		ents[1] = ents[0];
		n = 2;
	}
	rc = rc ? rc : tree_encode(ents, n, &tree);
	rc = rc ? rc : put_blob(r, &p, BT_TREE, tree.p, tree.len, &g.root);
	rc = rc ? rc : pack_finish(&p, &r->keys);
	rc = rc ? rc : uuid_v4(uuid);
	snprintf(m.series, sizeof(m.series), "hostile-%s", uuid);
	pack_key(m.series, p.id, key, sizeof(key));
	rc = rc ? rc : store_put(r->st, key, p.data.p, p.data.len, 0);
	g.name = "g";
	g.mode = 040755;
	snprintf(m.label, sizeof(m.label), "hostile");
	snprintf(m.status, sizeof(m.status), STATUS_READY);
	m.num = 1;
	m.full = 1;
	m.created = now_ns();
	m.groups = &g;
	m.ngroups = 1;
	m.packs = &p.id;
	m.npacks = 1;
	rc = rc ? rc : manifest_encode(&m, &r->keys, &text);
	manifest_key(m.series, 1, key, sizeof(key));
	rc = rc ? rc : store_put(r->st, key, text.p, text.len, STORE_CREATE_ONLY);
	if (rc)
		fprintf(stderr, "mkhostile: %s\n", snap_errmsg());
	else
		printf("%s\n", m.series);
	pack_free(&p);
	buf_free(&tree);
	buf_free(&text);
	repo_close(r);
	return rc ? 1 : 0;
}
