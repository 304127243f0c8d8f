/*
 * unit-stage.c - cmocka unit tests for the write side's pieces that need
 * no mount: ACL and mode coupling (acl.c) and the stage (stage.c):
 * round trips, crash recovery, the lock against a second process.
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "acl.h"
#include "err.h"
#include "stage.h"
#include "tree.h"

static size_t acl_entry(uint8_t *p, uint16_t tag, uint16_t perm, uint32_t id)
{
	p[0] = (uint8_t)tag;
	p[1] = (uint8_t)(tag >> 8);
	p[2] = (uint8_t)perm;
	p[3] = (uint8_t)(perm >> 8);
	put_u32le(p + 4, id);
	return 8;
}

static void test_acl(void **state)
{
	uint8_t a[64], m[32];
	size_t n = 4, k = 4;
	uint32_t perm;

	(void)state;
	put_u32le(a, 2);
	n += acl_entry(a + n, 0x01, 6, 0xffffffff);   /* user::rw- */
	n += acl_entry(a + n, 0x02, 4, 65534);        /* user:nobody:r-- */
	n += acl_entry(a + n, 0x04, 4, 0xffffffff);   /* group::r-- */
	n += acl_entry(a + n, 0x10, 6, 0xffffffff);   /* mask::rw- */
	n += acl_entry(a + n, 0x20, 4, 0xffffffff);   /* other::r-- */
	assert_int_equal(acl_to_mode(a, n, &perm), 0);
	assert_int_equal(perm, 0664); /* the group bits are the mask */
	assert_int_equal(acl_is_minimal(a, n), 0);
	assert_int_equal(acl_from_mode(a, n, 0750), 0);
	assert_int_equal(acl_to_mode(a, n, &perm), 0);
	assert_int_equal(perm, 0750);
	assert_int_equal(a[4 + 8 * 2 + 2], 4); /* group:: kept, mask changed */

	put_u32le(m, 2);
	k += acl_entry(m + k, 0x01, 7, 0xffffffff);
	k += acl_entry(m + k, 0x04, 5, 0xffffffff);
	k += acl_entry(m + k, 0x20, 1, 0xffffffff);
	assert_int_equal(acl_is_minimal(m, k), 1);
	assert_int_equal(acl_to_mode(m, k, &perm), 0);
	assert_int_equal(perm, 0751);

	/* Malformed: wrong version, torn entry, no other:: entry. */
	put_u32le(m, 3);
	assert_int_equal(acl_to_mode(m, k, &perm), SNAP_EINVAL);
	put_u32le(m, 2);
	assert_int_equal(acl_to_mode(m, k - 3, &perm), SNAP_EINVAL);
	assert_int_equal(acl_to_mode(m, k - 8, &perm), SNAP_EINVAL);
}

static char *tmpdir(void)
{
	char t[] = "/tmp/snapfs-unit-stage.XXXXXX", *d = mkdtemp(t);

	assert_non_null(d);
	return strdup(d);
}

static void rmtree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* A staged regular file's row, with its data file. */
static void file_row(struct sinode *in, uint64_t ino, uint8_t ws)
{
	memset(in, 0, sizeof(*in));
	in->ino = ino;
	in->type = ET_REG;
	in->mode = S_IFREG | 0644;
	in->nlink = 1;
	in->data = 1;
	in->wstate = ws;
}

static void put_file(struct stage *s, uint64_t dir, const char *name,
		     uint64_t ino, uint8_t ws, int orig)
{
	struct sinode in;
	int fd;

	file_row(&in, ino, ws);
	in.size = 5;
	if (orig) {
		in.has_orig = 1;
		in.oname = (char *)name;
		in.o_mode = S_IFREG | 0600;
		in.o_size = 3;
		in.o_mtime_ns = 42;
	}
	assert_int_equal(stage_inode_put(s, &in), 0);
	assert_int_equal(stage_dirent_put(s, dir, name, ino), 0);
	assert_int_equal(stage_data_open(s, ino, O_RDWR | O_CREAT, &fd), 0);
	assert_int_equal(write(fd, "bytes", 5), 5);
	close(fd);
}

struct names {
	char v[8][32];
	uint64_t ino[8];
	int n;
};

static int collect(void *ctx, const char *name, uint64_t ino)
{
	struct names *l = ctx;

	snprintf(l->v[l->n], sizeof(l->v[0]), "%s", name);
	l->ino[l->n++] = ino;
	return 0;
}

static void test_stage_roundtrip(void **state)
{
	char *d = tmpdir(), path[600];
	struct stage *s;
	struct stage_found f;
	struct stage_meta m;
	struct sinode in;
	struct names l = {.n = 0};
	struct buf v = BUF_INIT;
	uint64_t ino;

	(void)state;
	snprintf(path, sizeof(path), "%s/label", d);
	assert_int_equal(stage_open(path, &s, &f), 0);
	assert_true(f.created);
	memset(&m, 0, sizeof(m));
	snprintf(m.base_series, sizeof(m.base_series), "lab-x");
	m.base_num = 7;
	m.next_ino = 99;
	assert_int_equal(stage_put_meta(s, &m), 0);
	assert_int_equal(stage_begin(s), 0);
	put_file(s, 1, "b", 10, WS_UNSYNCED, 0);
	put_file(s, 1, "a", 11, WS_CLEAN, 0);
	/* Names sort bytewise, as directory objects do. */
	assert_int_equal(stage_dirent_put(s, 1, "\xc3\xa9", 0), 0);
	assert_int_equal(stage_xattr_set(s, 11, "user.k", "", 0), 0);
	assert_int_equal(stage_end(s, 0), 0);
	/* A failed transaction leaves nothing. */
	assert_int_equal(stage_begin(s), 0);
	put_file(s, 1, "c", 12, WS_CLEAN, 0);
	assert_int_equal(stage_end(s, SNAP_EIO), SNAP_EIO);
	assert_int_equal(stage_dirent_get(s, 1, "c", &ino), SNAP_ENOENT);
	assert_int_equal(stage_inode_get(s, 10, &in), 0);
	assert_int_equal(in.wstate, WS_UNSYNCED);
	sinode_free(&in);
	assert_int_equal(stage_sync(s), 0);
	assert_int_equal(stage_inode_get(s, 10, &in), 0);
	assert_int_equal(in.wstate, WS_CLEAN);
	sinode_free(&in);
	stage_close(s);

	assert_int_equal(stage_open(path, &s, &f), 0);
	assert_false(f.created);
	assert_false(f.recovered);
	assert_int_equal(stage_get_meta(s, &m), 0);
	assert_string_equal(m.base_series, "lab-x");
	assert_int_equal(m.base_num, 7);
	assert_int_equal(m.next_ino, 99);
	assert_int_equal(stage_dirent_each(s, 1, collect, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0], "a");
	assert_string_equal(l.v[1], "b");
	assert_string_equal(l.v[2], "\xc3\xa9");
	assert_int_equal(l.ino[2], 0); /* a whiteout */
	/* The clean close synced: closed files are durable now. */
	assert_int_equal(stage_inode_get(s, 10, &in), 0);
	assert_int_equal(in.wstate, WS_CLEAN);
	sinode_free(&in);
	/* An empty value reads back empty, not absent. */
	assert_int_equal(stage_xattr_get(s, 11, "user.k", &v), 0);
	assert_int_equal(v.len, 0);
	assert_int_equal(stage_clear(s), 0);
	assert_int_equal(stage_inode_get(s, 10, &in), SNAP_ENOENT);
	assert_int_equal(stage_get_meta(s, &m), 0);
	assert_int_equal(m.base_num, 7); /* meta stays */
	buf_free(&v);
	stage_close(s);
	rmtree(d);
	free(d);
}

static int count_dropped(void *ctx, const char *path)
{
	(void)path;
	(*(int *)ctx)++;
	return 0;
}

/* A process that dies with the stage open, as kill -9 leaves it. */
static void crash_with(const char *path)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct stage *s;
		struct stage_found f;
		struct sinode dir;

		if (stage_open(path, &s, &f))
			_exit(2);
		memset(&dir, 0, sizeof(dir));
		dir.ino = 5;
		dir.type = ET_DIR;
		dir.mode = S_IFDIR | 0755;
		stage_begin(s);
		stage_inode_put(s, &dir);
		stage_dirent_put(s, 1, "d", 5);
		put_file(s, 5, "new-open", 20, WS_WRITING, 0);
		put_file(s, 5, "base-open", 21, WS_WRITING, 1);
		put_file(s, 5, "closed", 22, WS_UNSYNCED, 0);
		put_file(s, 5, "synced", 23, WS_CLEAN, 0);
		if (stage_end(s, 0))
			_exit(3);
		/* As kill -9 does: nothing closed, nothing freed. */
		raise(SIGKILL);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* A file row and name whose data file is made afresh (no commit needed). */
static void put_new(struct stage *s, const char *name, uint64_t ino)
{
	struct sinode in;
	int fd;

	file_row(&in, ino, WS_UNSYNCED);
	assert_int_equal(stage_inode_put(s, &in), 0);
	assert_int_equal(stage_dirent_put(s, 1, name, ino), 0);
	assert_int_equal(stage_data_open(s, ino, O_RDWR | O_CREAT | O_TRUNC,
					 &fd), 0);
	close(fd);
}

/* Batching: calls stay in an open transaction until a commit or a call
 * that needs one; a failed call rolls back alone; kill -9 loses exactly
 * the calls since the last commit, and their fresh data files. */
static void test_stage_batch(void **state)
{
	char *d = tmpdir(), path[600], data[700];
	struct stage *s;
	struct stage_found f;
	uint64_t ino;
	pid_t pid;
	int st;

	(void)state;
	snprintf(path, sizeof(path), "%s/label", d);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (stage_open(path, &s, &f))
			_exit(2);
		stage_batch(s);
		stage_begin(s);
		put_new(s, "kept", 30);
		if (stage_end(s, 0) || !stage_batch_since(s))
			_exit(3); /* not committed yet */
		if (stage_commit(s) || stage_batch_since(s))
			_exit(4);
		stage_begin(s);
		put_new(s, "failed", 31);
		stage_end(s, SNAP_EIO);
		/* The failure took only its own call. */
		if (stage_dirent_get(s, 1, "failed", &ino) != SNAP_ENOENT ||
		    stage_dirent_get(s, 1, "kept", &ino) || ino != 30)
			_exit(5);
		stage_begin(s);
		put_new(s, "durable", 32);
		stage_durable(s);
		if (stage_end(s, 0) || stage_batch_since(s))
			_exit(6);
		stage_begin(s);
		put_new(s, "lost", 33);
		if (stage_end(s, 0) || !stage_batch_since(s))
			_exit(7);
		raise(SIGKILL);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(stage_open(path, &s, &f), 0);
	assert_true(f.recovered);
	assert_int_equal(stage_dirent_get(s, 1, "kept", &ino), 0);
	assert_int_equal(stage_dirent_get(s, 1, "durable", &ino), 0);
	assert_int_equal(stage_dirent_get(s, 1, "failed", &ino), SNAP_ENOENT);
	assert_int_equal(stage_dirent_get(s, 1, "lost", &ino), SNAP_ENOENT);
	/* The lost call's data file went with it; the kept ones stay. */
	snprintf(data, sizeof(data), "%s/data/%016x", path, 33);
	assert_int_equal(access(data, F_OK), -1);
	snprintf(data, sizeof(data), "%s/data/%016x", path, 30);
	assert_int_equal(access(data, F_OK), 0);
	stage_close(s);
	rmtree(d);
	free(d);
}

static void test_stage_recovery(void **state)
{
	char *d = tmpdir(), path[600];
	struct stage *s;
	struct stage_found f;
	struct sinode in;
	uint64_t ino;
	int dropped = 0, fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/label", d);
	crash_with(path);
	assert_int_equal(stage_open(path, &s, &f), 0);
	assert_true(f.recovered);
	assert_int_equal(f.dropped, 2);
	assert_int_equal(stage_dropped_each(s, count_dropped, &dropped), 0);
	assert_int_equal(dropped, 2);
	/* New and open at the crash: gone, name and data. */
	assert_int_equal(stage_dirent_get(s, 5, "new-open", &ino), SNAP_ENOENT);
	assert_int_equal(stage_inode_get(s, 20, &in), SNAP_ENOENT);
	assert_int_equal(stage_data_open(s, 20, O_RDONLY, &fd), SNAP_ENOENT);
	/* From the base and open: its base version again, name kept. */
	assert_int_equal(stage_dirent_get(s, 5, "base-open", &ino), 0);
	assert_int_equal(stage_inode_get(s, 21, &in), 0);
	assert_int_equal(in.data, 0);
	assert_int_equal(in.size, 3);
	assert_int_equal(in.mode, S_IFREG | 0600);
	assert_int_equal(in.mtime_ns, 42);
	sinode_free(&in);
	/* Closed (same boot) and synced files stay as they were. */
	assert_int_equal(stage_inode_get(s, 22, &in), 0);
	assert_int_equal(in.data, 1);
	sinode_free(&in);
	assert_int_equal(stage_inode_get(s, 23, &in), 0);
	sinode_free(&in);
	stage_close(s);
	/* A clean close: nothing is recovered the next time. */
	assert_int_equal(stage_open(path, &s, &f), 0);
	assert_false(f.recovered);
	assert_int_equal(f.dropped, 0);
	stage_close(s);
	rmtree(d);
	free(d);
}

static void test_stage_lock(void **state)
{
	char *d = tmpdir(), path[600];
	struct stage *s;
	struct stage_found f;
	pid_t pid;
	int st, p[2];
	char got = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/label", d);
	assert_int_equal(stage_open(path, &s, &f), 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct stage *s2;
		int rc = stage_open(path, &s2, &f);
		char ok = rc == SNAP_EACCES && strstr(snap_errmsg(), "in use by");

		if (write(p[1], &ok, 1) != 1)
			_exit(2);
		raise(SIGKILL); /* under valgrind, no exit status of its own */
	}
	close(p[1]);
	assert_int_equal(read(p[0], &got, 1), 1);
	close(p[0]);
	assert_true(got);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	stage_close(s);
	rmtree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acl),
		cmocka_unit_test(test_stage_roundtrip),
		cmocka_unit_test(test_stage_recovery),
		cmocka_unit_test(test_stage_batch),
		cmocka_unit_test(test_stage_lock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
