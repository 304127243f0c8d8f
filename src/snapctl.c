/*
 * snapctl - the snapfs command line: init, backup, list, show, ls, cat,
 * restore, export, delete, check, stats.  A thin layer over libsnapfs: it parses options,
 * calls one engine, prints the result (or JSON with --json) and maps the
 * core's error code to an exit status (see snapctl(1), EXIT STATUS).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "backup.h"
#include "check.h"
#include "diff.h"
#include "err.h"
#include "exclude.h"
#include "export.h"
#include "helper.h"
#include "keyslot.h"
#include "metrics.h"
#include "mirror.h"
#include "lease.h"
#include "prune.h"
#include "repo.h"
#include "tombstone.h"
#include "restore.h"
#include "workq.h"

enum exit_code {
	EX_OK = 0,
	EX_FAIL = 1,
	EX_USAGE = 2,
	EX_PARTIAL = 3,
	EX_NOREPO = 4,
	EX_KEY = 5,
	EX_CORRUPT = 6,
	EX_NOTFOUND = 7,
	EX_EXISTS = 8,
	EX_NOSPACE = 9,
	EX_UNSAFE = 10,
	EX_ACCESS = 11,
	EX_NET = 12,
};

struct globals {
	const char *repo;
	struct open_opts ko;
	int json, quiet, threads;
	int key_option; /* a key came from argv, not the environment */
	int key_format_set;
	const char *metrics_file;
	double started; /* wall clock, for the metrics */
};

static struct globals G;

static const char *usage_text =
	"usage: snapctl [-r REPO] [options] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  init [--no-encryption] [--create-bucket]\n"
	"                                    create a repository\n"
	"  backup --label L [--full|--full-every N|--full-after SPAN]\n"
	"         [NAME=]DIR|ARCHIVE...\n"
	"                                    back up directories or archives\n"
	"  list [LABEL]                      list backups\n"
	"  show SERIES[/N]                   show one backup\n"
	"  diff SERIES[/N] SERIES[/N]        what changed between two backups\n"
	"  ls SERIES[/N[/GROUP[/PATH]]]      list a directory of a backup\n"
	"  cat SERIES/N/GROUP/PATH           write a file of a backup to stdout\n"
	"  restore SERIES[/N] --target DIR | --postings DIR | --zookeeper DIR\n"
	"                                    restore a backup to local disk\n"
	"  export SERIES[/N] [--group G] -o FILE|-\n"
	"                                    write a backup as a tar archive\n"
	"  delete SERIES-ID                  delete a whole series\n"
	"  prune --keep-last|daily|... N [--label L] [--dry-run]\n"
	"                                    delete the series no rule keeps\n"
	"  commit MOUNT/control/LABEL        commit what was copied into a mount\n"
	"  check [--read-data[-subset N/M]] [SERIES]\n"
	"                                    verify the repository\n"
	"  stats                             objects and bytes the repository holds\n"
	"  key list|add|passwd|remove        manage the secrets that open it\n"
	"  mirror SRC DST [--label L] [--series S] [--remove]\n"
	"                                    copy a repository to another store\n"
	"\n"
	"Options (before or after COMMAND):\n"
	"  -r, --repo LOCATION          repository (or SNAPFS_REPOSITORY): a path,\n"
	"                               file:///path, s3://HOST[:PORT]/BUCKET[/PREFIX],\n"
	"                               minio://HOST:PORT/BUCKET[/PREFIX] or\n"
	"                               azure://ACCOUNT/CONTAINER[/PREFIX]\n"
	"      --encryption-key-file F  16/24/32-byte key, raw or base64 (or\n"
	"                               SNAPFS_KEY_FILE)\n"
	"      --key-command CMD        the key is what CMD prints (or\n"
	"                               SNAPFS_KEY_COMMAND)\n"
	"      --key-format FMT         auto (default), raw or base64 (or\n"
	"                               SNAPFS_KEY_FORMAT)\n"
	"      --password-file F        passphrase file (or SNAPFS_PASSWORD_FILE)\n"
	"      --password-command CMD   the passphrase is what CMD prints (or\n"
	"                               SNAPFS_PASSWORD_COMMAND)\n"
	"      --json                   machine-readable output\n"
	"  -q, --quiet                  no progress, no summary\n"
	"      --threads N              worker threads (default: per CPU)\n"
	"      --parallel N             concurrent store requests (default 8 for\n"
	"                               s3/minio/azure; 1 is the serial strategy)\n"
	"      --limit-upload RATE      cap uploads, bytes/s (e.g. 20M)\n"
	"      --limit-download RATE    cap downloads, bytes/s\n"
	"      --anonymous              unsigned requests (public buckets)\n"
	"      --metrics-file F         backup, restore, check: the run's figures\n"
	"                               as a Prometheus textfile\n"
	"  -h, --help                   this text; 'snapctl COMMAND --help' for more\n"
	"  -V, --version                print the version\n"
	"\n"
	"SERIES is a series id, a label (its newest series, never another\n"
	"label's) or a prefix of one series id with at least 8 hex digits of its\n"
	"uuid; /N picks backup N (default: the latest).  delete takes only an\n"
	"exact series id.\n"
	"See snapctl(1) for exit statuses and examples.\n";

static int exit_of(int rc)
{
	switch (rc) {
	case SNAP_OK: return EX_OK;
	case SNAP_EINVAL: return EX_USAGE;
	case SNAP_ENOTREPO: return EX_NOREPO;
	case SNAP_EKEY: return EX_KEY;
	case SNAP_ECORRUPT: return EX_CORRUPT;
	case SNAP_ENOENT: return EX_NOTFOUND;
	case SNAP_EEXIST: return EX_EXISTS;
	case SNAP_ENOSPC: return EX_NOSPACE;
	case SNAP_EUNSAFE: return EX_UNSAFE;
	case SNAP_EACCES: return EX_ACCESS;
	case SNAP_ENET: return EX_NET;
	default: return EX_FAIL;
	}
}

static int die(int rc, const char *cmd)
{
	fprintf(stderr, "snapctl %s: %s\n", cmd, snap_errmsg());
	return exit_of(rc);
}

static int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "snapctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'snapctl %s --help')\n", cmd);
	return EX_USAGE;
}

/* Clears the progress line (only a terminal has one). */
static const char *clear_line(void)
{
	return isatty(STDERR_FILENO) ? "\r\033[K" : "";
}

static void warn_cb(const char *msg, void *ctx)
{
	(void)ctx;
	/* Even with --quiet: a skipped file is news the operator needs. */
	fprintf(stderr, "%ssnapctl: warning: %s\n", clear_line(), msg);
}

static void info_cb(const char *msg, void *ctx)
{
	(void)ctx;
	/* Even with --quiet: older snapfs no longer open the repository. */
	fprintf(stderr, "%ssnapctl: %s\n", clear_line(), msg);
}

/* Common options accepted by every command. */
enum {
	OPT_KEY = 256,
	OPT_PASS,
	OPT_KEYCMD,
	OPT_PASSCMD,
	OPT_KEYFMT,
	OPT_JSON,
	OPT_THREADS,
	OPT_NOENC,
	OPT_FULL,
	OPT_LABEL,
	OPT_TARGET,
	OPT_GROUP,
	OPT_PATH,
	OPT_OVERWRITE,
	OPT_READ_DATA,
	OPT_READ_SUBSET,
	OPT_PARALLEL,
	OPT_LIMIT_UP,
	OPT_LIMIT_DOWN,
	OPT_ANON,
	OPT_METRICS,
	OPT_CREATE_BUCKET,
	OPT_SKIP_EXISTING,
	OPT_VERIFY,
	OPT_OWNER,
	OPT_POSTINGS,
	OPT_MAP,
	OPT_FORCE,
	OPT_ZOOKEEPER,
	OPT_PID_FILE,
	OPT_ZK_ADDRESS,
	OPT_RESTORE_MYID,
	OPT_BACKUP_NUM,
	OPT_OUTPUT,
	OPT_FORMAT,
	OPT_EXCLUDE,
	OPT_EXCLUDE_FILE,
	OPT_EXCLUDE_CACHES,
	OPT_EXCLUDE_IF,
	OPT_ONE_FS,
	OPT_NEW_PASS,
	OPT_NEW_PASSCMD,
	OPT_NEW_KEY,
	OPT_NEW_KEYCMD,
	OPT_NEW_KEYFMT,
	OPT_SERIES,
	OPT_REMOVE,
	OPT_FULL_EVERY,
	OPT_FULL_AFTER,
	OPT_KEEP_LAST,
	OPT_KEEP_HOURLY,
	OPT_KEEP_DAILY,
	OPT_KEEP_WEEKLY,
	OPT_KEEP_MONTHLY,
	OPT_KEEP_YEARLY,
	OPT_KEEP_WITHIN,
	OPT_DRY_RUN,
	OPT_REPAIR,
	OPT_GRACE,
};

#define COMMON_OPTS                                                            \
	{"repo", required_argument, NULL, 'r'},                                \
	{"encryption-key-file", required_argument, NULL, OPT_KEY},             \
	{"password-file", required_argument, NULL, OPT_PASS},                  \
	{"key-command", required_argument, NULL, OPT_KEYCMD},                  \
	{"password-command", required_argument, NULL, OPT_PASSCMD},            \
	{"key-format", required_argument, NULL, OPT_KEYFMT},                   \
	{"json", no_argument, NULL, OPT_JSON},                                 \
	{"quiet", no_argument, NULL, 'q'},                                     \
	{"threads", required_argument, NULL, OPT_THREADS},                     \
	{"parallel", required_argument, NULL, OPT_PARALLEL},                   \
	{"limit-upload", required_argument, NULL, OPT_LIMIT_UP},               \
	{"limit-download", required_argument, NULL, OPT_LIMIT_DOWN},           \
	{"anonymous", no_argument, NULL, OPT_ANON},                            \
	{"metrics-file", required_argument, NULL, OPT_METRICS},                \
	{"help", no_argument, NULL, 'h'}

/* Handles a common option; returns 1 if it was one, -1 on a bad value. */
static int common_opt(int c, const char *cmd)
{
	char *end;

	switch (c) {
	case OPT_PARALLEL:
		G.ko.store.parallel = (int)strtol(optarg, &end, 10);
		if (*end || G.ko.store.parallel < 1 || G.ko.store.parallel > 256) {
			usage_error(cmd, "--parallel wants 1..256");
			return -1;
		}
		return 1;
	case OPT_LIMIT_UP:
	case OPT_LIMIT_DOWN:
		if (parse_size(optarg, c == OPT_LIMIT_UP ? &G.ko.store.limit_up
							 : &G.ko.store.limit_down)) {
			usage_error(cmd, "bad rate '%s' (bytes/s, e.g. 20M)",
				    optarg);
			return -1;
		}
		return 1;
	case OPT_ANON: G.ko.store.anonymous = 1; return 1;
	case OPT_METRICS: G.metrics_file = optarg; return 1;
	case 'r': G.repo = optarg; return 1;
	case OPT_KEY: G.ko.key.file = optarg; G.key_option = 1; return 1;
	case OPT_PASS: G.ko.pass.file = optarg; G.key_option = 1; return 1;
	case OPT_KEYCMD: G.ko.key.command = optarg; G.key_option = 1; return 1;
	case OPT_PASSCMD: G.ko.pass.command = optarg; G.key_option = 1; return 1;
	case OPT_KEYFMT:
		if (keysrc_format(optarg, &G.ko.key.format)) {
			usage_error(cmd, "%s", snap_errmsg());
			return -1;
		}
		G.key_format_set = 1;
		return 1;
	case OPT_JSON: G.json = 1; return 1;
	case 'q': G.quiet = 1; return 1;
	case OPT_THREADS:
		G.threads = (int)strtol(optarg, &end, 10);
		if (*end || G.threads < 1 || G.threads > 256) {
			usage_error(cmd, "--threads wants 1..256");
			return -1;
		}
		return 1;
	}
	return 0;
}

/* Parses the options of a command: the common ones plus extra, which go
 * to fn (returning 0 when it took the option).  Returns -1 to go on, or the
 * exit status to return at once (after --help, or on a usage error). */
static int parse_args(int argc, char **argv, const char *cmd, const char *help,
		      const struct option *extra, int (*fn)(int c, void *ctx),
		      void *ctx)
{
	static const struct option common[] = {COMMON_OPTS};
	struct option opts[32];
	size_t n = 0;
	int c, rc;

	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		opts[n++] = common[i];
	for (; extra && extra->name && n < 31; extra++)
		opts[n++] = *extra;
	memset(&opts[n], 0, sizeof(opts[n]));
	while ((c = getopt_long(argc, argv, "r:qht:o:", opts, NULL)) != -1) {
		if ((rc = common_opt(c, cmd)) < 0)
			return EX_USAGE;
		if (rc)
			continue;
		if (c == 'h') {
			fputs(help, stdout);
			return EX_OK;
		}
		/* fn: 0 taken, -2 a bad value it reported, else unknown */
		if (fn && (rc = fn(c, ctx)) == 0)
			continue;
		if (fn && rc == -2)
			return EX_USAGE;
		return usage_error(cmd, "unknown option");
	}
	return -1;
}

static void key_warning(const char *msg)
{
	fprintf(stderr, "%ssnapctl: warning: %s\n", clear_line(), msg);
}

static int open_repo(const char *cmd, struct repo **r)
{
	int rc;

	if (!G.repo)
		G.repo = getenv("SNAPFS_REPOSITORY");
	keysrc_env(&G.ko.key, "SNAPFS_KEY_FILE", "SNAPFS_KEY_COMMAND");
	keysrc_env(&G.ko.pass, "SNAPFS_PASSWORD_FILE", "SNAPFS_PASSWORD_COMMAND");
	if (!G.key_format_set && getenv("SNAPFS_KEY_FORMAT") &&
	    keysrc_format(getenv("SNAPFS_KEY_FORMAT"), &G.ko.key.format)) {
		fprintf(stderr, "snapctl: SNAPFS_KEY_FORMAT: %s\n",
			snap_errmsg());
		return EX_USAGE;
	}
	G.ko.key.warn = G.ko.pass.warn = key_warning;
	if (!G.repo) {
		fprintf(stderr, "snapctl %s: no repository: use -r LOCATION or "
				"set SNAPFS_REPOSITORY\n",
			cmd);
		return EX_USAGE;
	}
	if (!cmd[0])
		return 0;
	rc = repo_open(G.repo, &G.ko, r);
	return rc ? die(rc, cmd) : 0;
}

static int show_progress(void)
{
	return !G.quiet && !G.json && isatty(STDERR_FILENO);
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s)
		puts(s);
	free(s);
	json_decref(j);
}

/* --- init ---------------------------------------------------------------*/

static const char *init_help =
	"usage: snapctl -r REPO init [--no-encryption] [--create-bucket]\n"
	"              [--encryption-key-file F | --password-file F]\n"
	"\n"
	"Creates a repository.  Encrypted by default: a key file of 16, 24 or 32\n"
	"raw bytes selects AES-128/192/256-GCM; a password file (first line)\n"
	"wraps a random AES-256 key with scrypt.  --no-encryption stores chunks\n"
	"compressed but in the clear.  Refuses a location that holds one.\n"
	"--create-bucket creates the S3 bucket or Azure container first.\n";

static int init_opt(int c, void *ctx)
{
	(void)ctx;
	if (c == OPT_NOENC)
		G.ko.no_encryption = 1;
	else if (c == OPT_CREATE_BUCKET)
		G.ko.create_bucket = 1;
	else
		return -1;
	return 0;
}

static int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"no-encryption", no_argument, NULL, OPT_NOENC},
		{"create-bucket", no_argument, NULL, OPT_CREATE_BUCKET},
		{NULL, 0, NULL, 0}};
	int rc;

	if ((rc = parse_args(argc, argv, "init", init_help, opts, init_opt,
			     NULL)) >= 0)
		return rc;
	if (optind < argc)
		return usage_error("init", "unexpected argument '%s'",
				   argv[optind]);
	if ((rc = open_repo("", NULL)))
		return rc;
	if (G.ko.no_encryption && G.key_option)
		return usage_error("init", "--no-encryption and a key option "
					   "do not go together");
	if (keysrc_given(&G.ko.key) && keysrc_given(&G.ko.pass) &&
	    !G.ko.no_encryption)
		return usage_error("init", "give a key or a passphrase, not "
					   "both");
	rc = repo_init(G.repo, &G.ko);
	if (rc)
		return die(rc, "init");
	if (!G.quiet)
		printf("created %s snapfs repository at %s\n",
		       G.ko.no_encryption ? "an unencrypted" : "an encrypted",
		       G.repo);
	return EX_OK;
}

/* --- backup -------------------------------------------------------------*/

static const char *backup_help =
	"usage: snapctl -r REPO backup --label LABEL [--full] [NAME=]SOURCE...\n"
	"       snapctl -r REPO backup --label LABEL --group NAME SOURCE\n"
	"\n"
	"Backs up each SOURCE as a group (named after its last path component,\n"
	"or NAME).  A SOURCE is a directory, or an archive libarchive reads\n"
	"(tar, tar.gz, tar.zst, tar.xz, zip, cpio, ...), imported as the group\n"
	"without extracting it; archive members named absolutely or with '..'\n"
	"are refused.  The backup continues the newest series of LABEL, storing only\n"
	"what changed; --full (or a label without backups) starts a new series.\n"
	"--full-every N starts one when the series holds N backups, --full-after\n"
	"SPAN when its first backup is older than SPAN (7d, 2w, 1m, 36h): series\n"
	"are what 'snapctl prune' deletes, so they must end.\n"
	"LABEL: 3-25 characters of [A-Za-z0-9_.-], not starting with '..'.\n"
	"FIFOs and device nodes are backed up; sockets are skipped with a\n"
	"warning that leaves the exit status 0; unreadable files are skipped\n"
	"with a warning and exit status 3.\n"
	"\n"
	"Excludes (directory sources; recorded in the backup's manifest):\n"
	"  --exclude PATTERN          leave out what matches (repeatable): fnmatch\n"
	"                             per path component, ** for any number of\n"
	"                             them, anchored at / when it starts with /,\n"
	"                             else at any depth\n"
	"  --exclude-file FILE        patterns from FILE, one per line (# comments)\n"
	"  --exclude-caches           directories with a CACHEDIR.TAG\n"
	"  --exclude-if-present NAME[:HEADER]\n"
	"                             directories holding NAME (starting HEADER)\n"
	"  --one-file-system          do not cross mount points (kept, empty)\n";

struct backup_args {
	const char *label, *group;
	int full;
	struct excl *excl;
	struct full_policy policy;
};

static int backup_opt(int c, void *ctx)
{
	struct backup_args *a = ctx;
	int rc = 0;

	if (c == OPT_LABEL)
		a->label = optarg;
	else if (c == OPT_GROUP)
		a->group = optarg;
	else if (c == OPT_FULL)
		a->full = 1;
	else if (c == OPT_FULL_EVERY)
		rc = ret_parse_count("--full-every", optarg, 0, &a->policy.every);
	else if (c == OPT_FULL_AFTER)
		rc = ret_parse_span(optarg, &a->policy.after);
	else if (c == OPT_EXCLUDE)
		rc = excl_add(a->excl, optarg);
	else if (c == OPT_EXCLUDE_FILE)
		rc = excl_add_file(a->excl, optarg);
	else if (c == OPT_EXCLUDE_IF)
		rc = excl_add_tag(a->excl, optarg);
	else if (c == OPT_EXCLUDE_CACHES)
		excl_caches(a->excl);
	else if (c == OPT_ONE_FS)
		excl_one_fs(a->excl);
	else
		return -1;
	if (rc) {
		usage_error("backup", "%s", snap_errmsg());
		return -2;
	}
	return 0;
}

/* A source's last path component, without archive extensions
 * ("zk-backup.tar.gz" -> "zk-backup"). */
static char *default_group_name(const char *arg)
{
	static const char *const exts[] = {
		".gz", ".zst", ".xz", ".bz2", ".lz4", ".tar", ".tgz", ".tzst",
		".txz", ".tbz2", ".zip", ".cpio", ".7z"};
	char *copy = strdup(arg), *base, *name;
	size_t n = copy ? strlen(copy) : 0;
	struct stat st;
	int again = 1;

	if (!copy)
		return NULL;
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = 0;
	base = strrchr(copy, '/');
	base = base ? base + 1 : copy;
	while (again && stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
		again = 0;
		for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
			size_t bl = strlen(base), el = strlen(exts[i]);

			if (bl > el && !strcmp(base + bl - el, exts[i])) {
				base[bl - el] = 0;
				again = 1;
			}
		}
	}
	name = strdup(base);
	free(copy);
	return name;
}

/* --metrics-file: the run's figures beside those of other jobs (metrics.h).
 * Failing to write them is a warning: the run's own outcome stands. */
static void run_metrics(const char *cmd, const char *label, int ex,
			const struct metric *m, size_t n)
{
	struct metric all[16];
	double end = (double)now_ns() / 1e9;
	size_t k = 0;

	if (!G.metrics_file)
		return;
	all[k++] = (struct metric){"snapfs_last_start_timestamp_seconds",
				   G.started};
	all[k++] = (struct metric){"snapfs_last_end_timestamp_seconds", end};
	all[k++] = (struct metric){"snapfs_last_exit_status", ex};
	all[k++] = (struct metric){"snapfs_last_duration_seconds",
				   end - G.started};
	for (size_t i = 0; i < n && k < sizeof(all) / sizeof(all[0]); i++)
		all[k++] = m[i];
	if (metrics_write(G.metrics_file, cmd, label, ex == EX_OK, all, k))
		fprintf(stderr, "%ssnapctl: warning: %s\n", clear_line(),
			snap_errmsg());
}

static int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {
		{"label", required_argument, NULL, OPT_LABEL},
		{"group", required_argument, NULL, OPT_GROUP},
		{"full", no_argument, NULL, OPT_FULL},
		{"full-every", required_argument, NULL, OPT_FULL_EVERY},
		{"full-after", required_argument, NULL, OPT_FULL_AFTER},
		{"exclude", required_argument, NULL, OPT_EXCLUDE},
		{"exclude-file", required_argument, NULL, OPT_EXCLUDE_FILE},
		{"exclude-caches", no_argument, NULL, OPT_EXCLUDE_CACHES},
		{"exclude-if-present", required_argument, NULL, OPT_EXCLUDE_IF},
		{"one-file-system", no_argument, NULL, OPT_ONE_FS},
		{NULL, 0, NULL, 0}};
	struct backup_args a = {0};
	struct backup_group *groups = NULL;
	struct backup_opts bo = {0};
	struct backup_result res = {0};
	struct progress prog;
	struct repo *r = NULL;
	char **names = NULL;
	const char *label = NULL;
	size_t ng = 0;
	int rc, ex;

	if (!(a.excl = excl_new()))
		return die(SNAP_ENOMEM, "backup");
	if ((ex = parse_args(argc, argv, "backup", backup_help, opts,
			     backup_opt, &a)) >= 0)
		goto out;
	if (!a.label) {
		ex = usage_error("backup", "--label is required");
		goto out;
	}
	if (label_check(a.label)) {
		ex = die(SNAP_EINVAL, "backup");
		goto out;
	}
	if (optind >= argc) {
		ex = usage_error("backup", "give at least one directory");
		goto out;
	}
	if (a.group && optind + 1 != argc) {
		ex = usage_error("backup", "--group names one source: use "
					   "NAME=SOURCE for several");
		goto out;
	}
	ng = argc - optind;
	groups = calloc(ng, sizeof(*groups));
	names = calloc(ng, sizeof(*names));
	if (!groups || !names) {
		ng = 0;
		ex = die(snap_seterr(SNAP_ENOMEM, "out of memory"), "backup");
		goto out;
	}
	for (size_t i = 0; i < ng; i++) {
		char *arg = argv[optind + i], *eq = strchr(arg, '=');
		struct stat st;

		if (a.group) {
			names[i] = strdup(a.group);
			groups[i].path = arg;
		} else if (eq && eq != arg && stat(arg, &st) != 0) {
			names[i] = strndup(arg, eq - arg);
			groups[i].path = eq + 1;
		} else {
			names[i] = default_group_name(arg);
			groups[i].path = arg;
		}
		groups[i].name = names[i];
	}
	/* From here on the run counts, for --metrics-file. */
	label = a.label;
	if ((ex = open_repo("backup", &r)))
		goto out;
	bo.label = label;
	bo.full = a.full;
	bo.groups = groups;
	bo.ngroups = ng;
	bo.threads = G.threads;
	/* Uploads: --parallel, else 8 connections to a server, 2 to a disk. */
	bo.uploads = G.ko.store.parallel ? G.ko.store.parallel
		     : store_is_remote(r->st) ? 8 : 2;
	bo.warn = warn_cb;
	bo.info = info_cb;
	bo.excl = a.excl;
	bo.full_policy = &a.policy;
	progress_start(&prog, "backup", show_progress());
	bo.progress = &prog;
	rc = backup_run(r, &bo, &res);
	progress_stop(&prog);
	if (rc) {
		ex = die(rc, "backup");
		goto out;
	}
	ex = res.warnings ? EX_PARTIAL : EX_OK;
	if (G.json) {
		print_json(json_pack(
			"{s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
			"s:f}",
			"series", res.series, "backup_num", (json_int_t)res.num,
			"type", res.full ? "full" : "incremental", "files",
			(json_int_t)res.files, "dirs", (json_int_t)res.dirs,
			"bytes", (json_int_t)res.bytes, "files_new",
			(json_int_t)res.files_new, "files_reused",
			(json_int_t)res.files_reused, "bytes_read",
			(json_int_t)res.bytes_read, "bytes_added",
			(json_int_t)res.bytes_new, "chunks_new",
			(json_int_t)res.chunks_new, "packs",
			(json_int_t)res.packs, "warnings",
			(json_int_t)res.warnings, "elapsed", res.elapsed));
	} else if (!G.quiet) {
		char total[32], added[32], rate[32];

		human_bytes(res.bytes, total);
		human_bytes(res.bytes_new, added);
		human_bytes(res.elapsed > 0 ? res.bytes_read / res.elapsed : 0,
			    rate);
		printf("backup %s/%u (%s): %" PRIu64 " files (%" PRIu64
		       " read, %" PRIu64 " unchanged), %" PRIu64
		       " dirs, %s; added %s in %" PRIu64 " packs; %.1f s, %s/s\n",
		       res.series, res.num, res.full ? "full" : "incremental",
		       res.files, res.files_new, res.files_reused, res.dirs,
		       total, added, res.packs, res.elapsed, rate);
		if (res.warnings)
			printf("%" PRIu64 " warning(s): some entries were "
			       "skipped\n",
			       res.warnings);
	}
out:
	{
		struct metric m[] = {
			{"snapfs_files", res.files},
			{"snapfs_bytes", res.bytes},
			{"snapfs_bytes_read", res.bytes_read},
			{"snapfs_bytes_added", res.bytes_new},
			{"snapfs_files_reused", res.files_reused}};

		if (label)
			run_metrics("backup", label, ex, m,
				    res.series[0] ? 5 : 0);
	}
	for (size_t i = 0; i < ng; i++)
		free(names[i]);
	free(names);
	free(groups);
	excl_free(a.excl);
	repo_close(r);
	return ex;
}

/* --- list / show --------------------------------------------------------*/

static json_t *manifest_summary(const struct manifest *m)
{
	char created[40];
	uint64_t files = 0, bytes = 0;
	json_t *groups = json_array();

	format_time(m->created, created);
	for (size_t g = 0; g < m->ngroups; g++) {
		files += m->groups[g].files;
		bytes += m->groups[g].bytes;
		json_array_append_new(
			groups, json_pack("{s:s,s:I,s:I}", "group_id",
					  m->groups[g].name, "files",
					  (json_int_t)m->groups[g].files,
					  "bytes",
					  (json_int_t)m->groups[g].bytes));
	}
	return json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:b,s:o}",
			 "series", m->series, "backup_num", (json_int_t)m->num,
			 "label", m->label, "type",
			 m->full ? "full" : "incremental", "created", created,
			 "status", m->status, "parent", (json_int_t)m->parent,
			 "files", (json_int_t)files, "bytes",
			 (json_int_t)bytes, "bytes_added",
			 (json_int_t)m->bytes_new, "encrypted", m->encrypted,
			 "groups", groups);
}

static const char *list_help =
	"usage: snapctl -r REPO list [LABEL] [--json]\n"
	"\n"
	"Lists every backup (or those of LABEL), oldest series first.\n";

static int cmd_list(int argc, char **argv)
{
	struct backup_id *b = NULL;
	struct repo *r = NULL;
	const char *label = NULL;
	json_t *arr = NULL;
	size_t n = 0, shown = 0;
	int rc, ex = EX_OK;

	if ((ex = parse_args(argc, argv, "list", list_help, NULL, NULL, NULL)) >= 0)
		return ex;
	if (optind < argc)
		label = argv[optind++];
	if (optind < argc)
		return usage_error("list", "unexpected argument '%s'",
				   argv[optind]);
	if (label && label_check(label))
		return die(SNAP_EINVAL, "list");
	if ((ex = open_repo("list", &r)))
		return ex;
	rc = repo_list(r, &b, &n);
	if (rc) {
		ex = die(rc, "list");
		goto out;
	}
	if (G.json)
		arr = json_array();
	else
		printf("%-62s %5s %-11s %-24s %9s %10s %10s\n", "SERIES", "N",
		       "TYPE", "CREATED", "FILES", "SIZE", "ADDED");
	for (size_t i = 0; i < n; i++) {
		struct manifest m;
		char lbl[LABEL_MAX + 1];

		series_label(b[i].series, lbl);
		if (label && strcmp(lbl, label))
			continue;
		rc = repo_load_manifest(r, b[i].series, b[i].num, &m);
		if (rc) {
			fprintf(stderr, "snapctl list: %s\n", snap_errmsg());
			ex = exit_of(rc);
			continue;
		}
		shown++;
		if (G.json) {
			json_array_append_new(arr, manifest_summary(&m));
		} else {
			char created[40], size[32], added[32];
			uint64_t files = 0, bytes = 0;

			for (size_t g = 0; g < m.ngroups; g++) {
				files += m.groups[g].files;
				bytes += m.groups[g].bytes;
			}
			format_time(m.created, created);
			human_bytes(bytes, size);
			human_bytes(m.bytes_new, added);
			printf("%-62s %5u %-11s %-24s %9" PRIu64 " %10s %10s\n",
			       m.series, m.num,
			       m.full ? "full" : "incremental", created, files,
			       size, added);
		}
		manifest_free(&m);
	}
	if (G.json)
		print_json(arr);
	else if (!shown && !G.quiet)
		printf("(no backups%s%s)\n", label ? " with label " : "",
		       label ? label : "");
out:
	free(b);
	repo_close(r);
	return ex;
}

static const char *show_help =
	"usage: snapctl -r REPO show SERIES[/N] [--json]\n"
	"\n"
	"Shows one backup: state, type, parent, sizes, groups.  --json prints\n"
	"the manifest as stored (after verifying it).\n";

static int cmd_show(int argc, char **argv)
{
	char series[SERIES_MAX], key[160];
	struct repo *r = NULL;
	struct manifest m;
	struct buf text = BUF_INIT;
	uint32_t num;
	int rc, ex;

	if ((ex = parse_args(argc, argv, "show", show_help, NULL, NULL, NULL)) >= 0)
		return ex;
	if (optind + 1 != argc)
		return usage_error("show", "give exactly one SERIES[/N]");
	if ((ex = open_repo("show", &r)))
		return ex;
	rc = repo_resolve_backup(r, argv[optind], series, &num);
	rc = rc ? rc : repo_load_manifest(r, series, num, &m);
	if (rc) {
		ex = die(rc, "show");
		goto out;
	}
	if (G.json) {
		manifest_key(series, num, key, sizeof(key));
		rc = store_get(r->st, key, 0, -1, &text);
		if (rc == 0)
			fwrite(text.p, 1, text.len, stdout);
		else
			ex = die(rc, "show");
	} else {
		char created[40], since[40], b1[32], b2[32];

		format_time(m.created, created);
		format_time(m.since, since);
		printf("series:    %s\nbackup:    %u\nlabel:     %s\n"
		       "type:      %s\nstate:     %s\ncreated:   %s\n",
		       m.series, m.num, m.label,
		       m.full ? "full" : "incremental", m.status, created);
		if (!m.full)
			printf("parent:    %u (since %s)\n", m.parent, since);
		human_bytes(m.bytes_new, b1);
		printf("encrypted: %s\nadded:     %s in %zu packs "
		       "(%" PRIu64 " files read, %" PRIu64 " unchanged)\n",
		       m.encrypted ? "yes" : "no", b1, m.npacks, m.files_new,
		       m.files_reused);
		if (m.excludes)
			printf("excluded:  %s\n", m.excludes);
		printf("groups:\n");
		for (size_t g = 0; g < m.ngroups; g++) {
			human_bytes(m.groups[g].bytes, b2);
			printf("  %-20s %9" PRIu64 " files %12s\n",
			       m.groups[g].name, m.groups[g].files, b2);
		}
	}
	manifest_free(&m);
out:
	buf_free(&text);
	repo_close(r);
	return ex;
}

/* --- diff ---------------------------------------------------------------*/

static const char *diff_help =
	"usage: snapctl -r REPO diff SERIES[/N] SERIES[/N] [--json]\n"
	"\n"
	"Lists what changed from the first backup to the second, one line per\n"
	"entry, as restic diff does: '+' added, '-' removed, 'M' content\n"
	"changed, 'U' metadata only (mode, owner, mtime, attributes), 'T' type\n"
	"changed; directories end in '/'.  Directories that both backups share\n"
	"are skipped unread, and no file data is read.  SERIES may be a label\n"
	"(its newest series); N defaults to the latest.  --json prints\n"
	"{\"changes\": [{\"kind\", \"path\", \"type\"}...], \"stats\": {...}}.\n";

struct diff_out {
	int n; /* changes printed, for the JSON commas */
};

static int diff_print(void *ctx, char kind, const char *path,
		      const struct tent *a, const struct tent *b)
{
	struct diff_out *o = ctx;
	const struct tent *e = b ? b : a;
	int dir = e->type == ET_DIR;

	if (G.json) {
		static const char *const types[] = {"", "file", "dir", "symlink",
						    "fifo", "chardev", "blockdev"};
		json_t *j = json_pack("{s:s#,s:s,s:s}", "kind", &kind, 1, "path",
				      path, "type",
				      e->type < 7 ? types[e->type] : "");
		char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

		json_decref(j);
		if (!s)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		printf("%s\n    %s", o->n ? "," : "", s);
		free(s);
	} else {
		printf("%c    %s%s\n", kind, path, dir ? "/" : "");
	}
	o->n++;
	return ferror(stdout) ? snap_syserr(EIO, "standard output") : 0;
}

static int cmd_diff(int argc, char **argv)
{
	char series[2][SERIES_MAX];
	struct manifest m[2] = {0};
	struct diff_stats st;
	struct diff_out o = {0};
	struct repo *r = NULL;
	uint32_t num[2];
	int rc = 0, ex, loaded = 0;

	if ((ex = parse_args(argc, argv, "diff", diff_help, NULL, NULL, NULL)) >= 0)
		return ex;
	if (optind + 2 != argc)
		return usage_error("diff", "give two backups");
	if ((ex = open_repo("diff", &r)))
		return ex;
	for (; rc == 0 && loaded < 2; loaded++) {
		rc = repo_resolve_backup(r, argv[optind + loaded],
					 series[loaded], &num[loaded]);
		rc = rc ? rc : repo_load_manifest(r, series[loaded],
						  num[loaded], &m[loaded]);
		if (rc)
			break;
	}
	if (rc == 0) {
		if (G.json)
			printf("{\n  \"changes\": [");
		rc = diff_backups(r, series[0], &m[0], series[1], &m[1],
				  diff_print, &o, &st);
	}
	if (rc) {
		if (G.json && loaded == 2)
			printf("\n");
		ex = die(rc, "diff");
	} else if (G.json) {
		json_t *j = json_pack(
			"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "added",
			(json_int_t)st.added, "removed", (json_int_t)st.removed,
			"changed", (json_int_t)st.changed, "metadata",
			(json_int_t)st.meta, "type_changed", (json_int_t)st.type,
			"bytes_added", (json_int_t)st.bytes_added,
			"bytes_removed", (json_int_t)st.bytes_removed,
			"trees_read", (json_int_t)st.trees_read, "trees_same",
			(json_int_t)st.trees_same);
		char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

		printf("%s],\n  \"stats\": %s\n}\n", o.n ? "\n  " : "",
		       s ? s : "{}");
		free(s);
		json_decref(j);
	} else if (!G.quiet) {
		char ba[32], br[32];

		human_bytes(st.bytes_added, ba);
		human_bytes(st.bytes_removed, br);
		printf("%" PRIu64 " added, %" PRIu64 " removed, %" PRIu64
		       " changed, %" PRIu64 " metadata only, %" PRIu64
		       " type changed (%s added, %s removed); %" PRIu64
		       " directories read, %" PRIu64 " shared skipped unread\n",
		       st.added, st.removed, st.changed, st.meta, st.type, ba,
		       br, st.trees_read, st.trees_same);
	}
	for (int i = 0; i < loaded && i < 2; i++)
		manifest_free(&m[i]);
	repo_close(r);
	return ex;
}

/* --- ls / cat -----------------------------------------------------------*/

/* Resolves "SERIES/N/GROUP/PATH..." down to a tree entry.  On success
 * either *is_root (the group itself, tree in *t) or *ent points into *t. */
struct located {
	char series[SERIES_MAX];
	uint32_t num;
	struct manifest m;
	int have_m;
	const struct mgroup *group;
	struct tree t;
	const struct tent *ent; /* NULL: the group root */
};

static int locate(struct repo *r, const char *spec, struct located *L)
{
	char *copy = strdup(spec), *s, *save = NULL, *num, *grp, *comp;
	char head[300];
	int rc;

	memset(L, 0, sizeof(*L));
	if (!copy)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	s = strtok_r(copy, "/", &save);
	num = strtok_r(NULL, "/", &save);
	grp = strtok_r(NULL, "/", &save);
	if (num && strcmp(num, "latest"))
		snprintf(head, sizeof(head), "%s/%s", s ? s : "", num);
	else
		snprintf(head, sizeof(head), "%s", s ? s : "");
	rc = repo_resolve_backup(r, head, L->series, &L->num);
	rc = rc ? rc : repo_load_manifest(r, L->series, L->num, &L->m);
	if (rc)
		goto out;
	L->have_m = 1;
	if (!grp)
		goto out;
	for (size_t g = 0; g < L->m.ngroups; g++)
		if (!strcmp(L->m.groups[g].name, grp))
			L->group = &L->m.groups[g];
	if (!L->group) {
		rc = snap_seterr(SNAP_ENOENT, "backup %s/%u has no group '%s'",
				 L->series, L->num, grp);
		goto out;
	}
	rc = repo_read_tree(r, L->series, &L->group->root, &L->t);
	for (comp = strtok_r(NULL, "/", &save); rc == 0 && comp;
	     comp = strtok_r(NULL, "/", &save)) {
		struct tree sub;

		if (L->ent && L->ent->type != ET_DIR) {
			rc = snap_seterr(SNAP_ENOENT, "%s: not a directory",
					 spec);
			break;
		}
		if (L->ent) {
			rc = repo_read_tree(r, L->series, &L->ent->sub, &sub);
			if (rc)
				break;
			tree_free(&L->t);
			L->t = sub;
		}
		L->ent = tree_find(&L->t, comp);
		if (!L->ent)
			rc = snap_seterr(SNAP_ENOENT, "%s: no such file or "
						      "directory in the backup",
					 spec);
	}
out:
	free(copy);
	return rc;
}

static void located_free(struct located *L)
{
	tree_free(&L->t);
	if (L->have_m)
		manifest_free(&L->m);
}

/* ls(1)'s letter and a JSON name of each entry type (decoded trees hold
 * no other types). */
static const struct {
	char letter;
	const char *name;
} ent_types[] = {
	[ET_REG] = {'-', "file"},    [ET_DIR] = {'d', "dir"},
	[ET_LNK] = {'l', "symlink"}, [ET_FIFO] = {'p', "fifo"},
	[ET_CHR] = {'c', "chardev"}, [ET_BLK] = {'b', "blockdev"},
};

static void mode_string(uint32_t mode, uint8_t type, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";

	out[0] = ent_types[type].letter;
	for (int i = 0; i < 9; i++)
		out[i + 1] = mode & (1 << (8 - i)) ? rwx[i] : '-';
	if (mode & S_ISUID)
		out[3] = mode & S_IXUSR ? 's' : 'S';
	if (mode & S_ISGID)
		out[6] = mode & S_IXGRP ? 's' : 'S';
	if (mode & S_ISVTX)
		out[9] = mode & S_IXOTH ? 't' : 'T';
	out[10] = 0;
}

static void print_entry(const struct tent *e)
{
	int dev = e->type == ET_CHR || e->type == ET_BLK;
	char mode[11], when[40], size[32];

	if (G.json) {
		json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "name",
				      e->name, "type", ent_types[e->type].name,
				      "mode", (json_int_t)(e->mode & 07777),
				      "uid", (json_int_t)e->uid, "gid",
				      (json_int_t)e->gid, "size",
				      (json_int_t)e->size, "mtime_ns",
				      (json_int_t)e->mtime_ns);
		if (e->type == ET_LNK)
			json_object_set_new(j, "target",
					    json_string(e->target));
		if (dev) {
			json_object_set_new(j, "rdev_major",
					    json_integer(e->rdev_major));
			json_object_set_new(j, "rdev_minor",
					    json_integer(e->rdev_minor));
		}
		char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

		if (s)
			puts(s);
		free(s);
		json_decref(j);
		return;
	}
	mode_string(e->mode, e->type, mode);
	format_time(e->mtime_ns, when);
	/* A device shows its number where the size goes, as ls -l does. */
	if (dev)
		snprintf(size, sizeof(size), "%u, %u", e->rdev_major,
			 e->rdev_minor);
	else
		snprintf(size, sizeof(size), "%" PRIu64,
			 e->type == ET_DIR ? e->sub_bytes : e->size);
	printf("%s %6u %6u %12s %.19s %s%s%s\n", mode, e->uid, e->gid, size,
	       when, e->name, e->type == ET_LNK ? " -> " : "",
	       e->type == ET_LNK ? e->target : "");
}

static const char *ls_help =
	"usage: snapctl -r REPO ls SERIES[/N[/GROUP[/PATH]]] [--json]\n"
	"\n"
	"Lists the groups of a backup, or a directory (or file) inside one.\n"
	"N may be 'latest'.  --json prints one JSON object per entry.\n";

static int cmd_ls(int argc, char **argv)
{
	struct located L;
	struct repo *r = NULL;
	int rc, ex;

	if ((ex = parse_args(argc, argv, "ls", ls_help, NULL, NULL, NULL)) >= 0)
		return ex;
	if (optind + 1 != argc)
		return usage_error("ls", "give exactly one path");
	if ((ex = open_repo("ls", &r)))
		return ex;
	rc = locate(r, argv[optind], &L);
	if (rc == 0 && !L.group) {
		for (size_t g = 0; g < L.m.ngroups; g++) {
			const struct mgroup *mg = &L.m.groups[g];
			struct tent e = {.name = mg->name, .type = ET_DIR,
					 .mode = mg->mode, .uid = mg->uid,
					 .gid = mg->gid,
					 .mtime_ns = mg->mtime_ns,
					 .sub_bytes = mg->bytes};

			print_entry(&e);
		}
	} else if (rc == 0 && L.ent && L.ent->type != ET_DIR) {
		print_entry(L.ent);
	} else if (rc == 0) {
		struct tree sub;

		if (L.ent) {
			rc = repo_read_tree(r, L.series, &L.ent->sub, &sub);
			if (rc == 0) {
				tree_free(&L.t);
				L.t = sub;
			}
		}
		for (size_t i = 0; rc == 0 && i < L.t.n; i++)
			print_entry(&L.t.ents[i]);
	}
	if (rc)
		ex = die(rc, "ls");
	located_free(&L);
	repo_close(r);
	return ex;
}

static const char *cat_help =
	"usage: snapctl -r REPO cat SERIES/N/GROUP/PATH > FILE\n"
	"\n"
	"Writes one file of a backup to standard output (holes as zeros).\n"
	"N may be 'latest'.\n";

static int write_out(const void *p, size_t n)
{
	if (fwrite(p, 1, n, stdout) != n)
		return snap_syserr(errno, "writing standard output");
	return 0;
}

static int cat_file(struct repo *r, const char *series, const struct tent *e)
{
	static const uint8_t zeros[65536];
	struct buf raw = BUF_INIT, scratch = BUF_INIT;
	uint64_t pos = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i <= e->nchunks; i++) {
		uint64_t next = i < e->nchunks ? e->chunks[i].off : e->size;

		while (rc == 0 && pos < next) {
			size_t n = next - pos < sizeof(zeros) ? next - pos
							      : sizeof(zeros);

			rc = write_out(zeros, n);
			pos += n;
		}
		if (rc || i == e->nchunks)
			break;
		rc = repo_read_blob(r, series, &e->chunks[i].r, &raw, &scratch);
		rc = rc ? rc : write_out(raw.p, raw.len);
		pos += raw.len;
	}
	if (rc == 0 && fflush(stdout))
		rc = snap_syserr(errno, "writing standard output");
	buf_free(&raw);
	buf_free(&scratch);
	return rc;
}

static int cmd_cat(int argc, char **argv)
{
	struct located L;
	struct repo *r = NULL;
	int rc, ex;

	if ((ex = parse_args(argc, argv, "cat", cat_help, NULL, NULL, NULL)) >= 0)
		return ex;
	if (optind + 1 != argc)
		return usage_error("cat", "give exactly one SERIES/N/GROUP/PATH");
	if ((ex = open_repo("cat", &r)))
		return ex;
	rc = locate(r, argv[optind], &L);
	if (rc == 0 && (!L.ent || L.ent->type != ET_REG))
		rc = snap_seterr(SNAP_EINVAL, "%s: not a regular file",
				 argv[optind]);
	if (rc == 0)
		rc = cat_file(r, L.series, L.ent);
	if (rc)
		ex = die(rc, "cat");
	located_free(&L);
	repo_close(r);
	return ex;
}

/* --- restore ------------------------------------------------------------*/

static const char *restore_help =
	"usage: snapctl -r REPO restore SERIES[/N] --target DIR [--group G]\n"
	"           [--path P] [--overwrite | --skip-existing] [--verify]\n"
	"       snapctl -r REPO restore SERIES[/N] --postings DIR [--map G=pN]...\n"
	"           [--force] [--verify]\n"
	"       snapctl -r REPO restore SERIES[/N] --zookeeper DATADIR [--group G]\n"
	"           [--pid-file F] [--zk-address HOST:PORT] [--restore-myid]\n"
	"           [--force]\n"
	"  common: [--backup-num N] [--owner USER:GROUP]\n"
	"\n"
	"--target restores backup N (default: the latest of the series) into\n"
	"DIR, one subdirectory per group: DIR/<group>/...  --group restores one\n"
	"group, --path one file or directory inside it.  DIR must be empty or\n"
	"missing unless --overwrite (replace what is there) or --skip-existing\n"
	"(keep files whose contents verify, rewrite the others: also how an\n"
	"interrupted restore is resumed).\n"
	"\n"
	"--postings writes one Dgraph posting directory per group: g<N>, p<N>\n"
	"or <N> becomes DIR/p<N> (--map NAME=pN for other names), with a\n"
	"group_id file when the backup has none.  An existing p<N> is refused\n"
	"unless --force, which moves it aside as p<N>.bak-<time>.\n"
	"\n"
	"--zookeeper rebuilds a ZooKeeper data directory (version-2/ with\n"
	"snapshot/log files, or the DC/OS zookeeper/ layout, where DATADIR is\n"
	"the directory holding zookeeper/).  Refused while ZooKeeper runs on it\n"
	"(--pid-file, DATADIR/zookeeper_server.pid, processes using DATADIR,\n"
	"a server answering at --zk-address), and when it cannot see every\n"
	"process (not root, /proc hidden): stop ZooKeeper, then --force.\n"
	"Restored into a sibling, verified against the backup, then swapped\n"
	"in; the old directory is kept as DATADIR.bak-<time>.  This node's\n"
	"myid is kept unless --restore-myid.\n"
	"\n"
	"--postings and --zookeeper never leave a half-restored directory:\n"
	"after a failure the same command resumes.  Owners are restored as\n"
	"root, or set with --owner; modes, times, xattrs, links and holes are\n"
	"restored; entries that would leave DIR are refused.\n";

#define MAX_MAPS 256

struct restore_args {
	struct helper_opts h;
	const char *target, *num;
	struct group_map maps[MAX_MAPS];
	int bad;
};

static int parse_owner(const char *spec, uint32_t *uid, uint32_t *gid)
{
	char user[256], *colon, *end;
	struct passwd *pw;
	struct group *gr;

	snprintf(user, sizeof(user), "%s", spec);
	colon = strchr(user, ':');
	if (!colon || !user[0] || !colon[1])
		return -1;
	*colon = 0;
	*uid = (uint32_t)strtoul(user, &end, 10);
	if (*end) {
		pw = getpwnam(user);
		if (!pw)
			return -1;
		*uid = pw->pw_uid;
	}
	*gid = (uint32_t)strtoul(colon + 1, &end, 10);
	if (*end) {
		gr = getgrnam(colon + 1);
		if (!gr)
			return -1;
		*gid = gr->gr_gid;
	}
	return 0;
}

static int restore_opt(int c, void *ctx)
{
	struct restore_args *a = ctx;
	struct helper_opts *h = &a->h;
	char *eq;

	switch (c) {
	case 't':
	case OPT_TARGET: a->target = optarg; return 0;
	case OPT_GROUP: h->ro.group = optarg; return 0;
	case OPT_PATH: h->ro.path = optarg; return 0;
	case OPT_OVERWRITE: h->ro.overwrite = 1; return 0;
	case OPT_SKIP_EXISTING: h->ro.skip_existing = 1; return 0;
	case OPT_VERIFY: h->verify = 1; return 0;
	case OPT_POSTINGS: h->postings = optarg; return 0;
	case OPT_ZOOKEEPER: h->zookeeper = optarg; return 0;
	case OPT_FORCE: h->force = 1; return 0;
	case OPT_PID_FILE: h->pid_file = optarg; return 0;
	case OPT_ZK_ADDRESS: h->zk_address = optarg; return 0;
	case OPT_RESTORE_MYID: h->restore_myid = 1; return 0;
	case OPT_BACKUP_NUM: a->num = optarg; return 0;
	case OPT_OWNER:
		if (parse_owner(optarg, &h->ro.uid, &h->ro.gid)) {
			usage_error("restore", "--owner wants USER:GROUP (names "
					       "or numbers), not '%s'",
				    optarg);
			a->bad = 1;
		}
		h->ro.set_owner = 1;
		return 0;
	case OPT_MAP:
		eq = strchr(optarg, '=');
		if (!eq || eq == optarg || h->nmaps == MAX_MAPS ||
		    !(a->maps[h->nmaps].n = postings_number(eq + 1)) ||
		    eq[1] != 'p') {
			usage_error("restore", "--map wants GROUP=pN, not '%s'",
				    optarg);
			a->bad = 1;
			return 0;
		}
		*eq = 0;
		a->maps[h->nmaps++].group = optarg;
		return 0;
	}
	return -1;
}

/* --verify after a --target restore: each group against TARGET/<group>. */
static int verify_groups(struct repo *r, const char *series, uint32_t num,
			 const char *group, const char *target)
{
	struct restore_result vr;
	struct manifest m;
	char *dir = NULL;
	int rc = 0;

	SNAP_TRY(repo_load_manifest(r, series, num, &m));
	for (size_t g = 0; rc == 0 && g < m.ngroups; g++) {
		if (group && strcmp(group, m.groups[g].name))
			continue;
		rc = path_join(&dir, target, m.groups[g].name);
		rc = rc ? rc
			: restore_verify(r, series, num, m.groups[g].name, dir,
					 &vr);
	}
	free(dir);
	manifest_free(&m);
	return rc;
}

static void say_cb(const char *msg, void *ctx)
{
	(void)ctx;
	if (!G.quiet && !G.json)
		fprintf(stderr, "%ssnapctl: %s\n", clear_line(), msg);
}

static int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{"target", required_argument, NULL, OPT_TARGET},
		{"group", required_argument, NULL, OPT_GROUP},
		{"path", required_argument, NULL, OPT_PATH},
		{"overwrite", no_argument, NULL, OPT_OVERWRITE},
		{"skip-existing", no_argument, NULL, OPT_SKIP_EXISTING},
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"owner", required_argument, NULL, OPT_OWNER},
		{"postings", required_argument, NULL, OPT_POSTINGS},
		{"map", required_argument, NULL, OPT_MAP},
		{"force", no_argument, NULL, OPT_FORCE},
		{"zookeeper", required_argument, NULL, OPT_ZOOKEEPER},
		{"pid-file", required_argument, NULL, OPT_PID_FILE},
		{"zk-address", required_argument, NULL, OPT_ZK_ADDRESS},
		{"restore-myid", no_argument, NULL, OPT_RESTORE_MYID},
		{"backup-num", required_argument, NULL, OPT_BACKUP_NUM},
		{NULL, 0, NULL, 0}};
	static struct restore_args a;
	struct helper_opts *h = &a.h;
	struct helper_result hr;
	struct restore_result *res = &hr.sum;
	struct progress prog;
	char series[SERIES_MAX] = "", spec[SERIES_MAX + 16];
	const char *where;
	struct repo *r = NULL;
	uint32_t num;
	int rc, ex, modes;

	memset(&a, 0, sizeof(a));
	memset(&hr, 0, sizeof(hr));
	h->maps = a.maps;
	if ((ex = parse_args(argc, argv, "restore", restore_help, opts,
			     restore_opt, &a)) >= 0)
		return ex;
	if (a.bad)
		return EX_USAGE;
	if (optind + 1 != argc)
		return usage_error("restore", "give exactly one SERIES[/N]");
	modes = !!a.target + !!h->postings + !!h->zookeeper;
	if (modes != 1)
		return usage_error("restore", "give one of --target, --postings "
					      "and --zookeeper");
	if (h->ro.path && !a.target)
		return usage_error("restore", "--path goes with --target");
	if (h->ro.path && h->verify)
		return usage_error("restore", "--verify checks whole groups: "
					      "not with --path");
	if (h->ro.overwrite && h->ro.skip_existing)
		return usage_error("restore", "--overwrite or --skip-existing, "
					      "not both");
	snprintf(spec, sizeof(spec), "%s", argv[optind]);
	if (a.num) {
		if (strchr(spec, '/'))
			return usage_error("restore", "SERIES/N or --backup-num "
						      "N, not both");
		snprintf(spec, sizeof(spec), "%s/%s", argv[optind], a.num);
	}
	if ((ex = open_repo("restore", &r)))
		goto out;
	rc = repo_resolve_backup(r, spec, series, &num);
	if (rc) {
		ex = die(rc, "restore");
		goto out;
	}
	h->ro.threads = G.threads;
	if (!h->ro.threads && G.ko.store.parallel)
		h->ro.threads = G.ko.store.parallel;
	else if (!h->ro.threads && store_is_remote(r->st))
		h->ro.threads = 8;
	h->ro.warn = warn_cb;
	h->say = say_cb;
	progress_start(&prog, "restore", show_progress());
	h->ro.progress = &prog;
	if (h->postings) {
		where = h->postings;
		rc = restore_postings(r, series, num, h, &hr);
	} else if (h->zookeeper) {
		where = h->zookeeper;
		rc = restore_zookeeper(r, series, num, h, &hr);
	} else {
		where = h->ro.target = a.target;
		rc = restore_run(r, series, num, &h->ro, res);
		if (rc == 0 && h->verify)
			rc = verify_groups(r, series, num, h->ro.group,
					   a.target);
		hr.groups = 1;
	}
	progress_stop(&prog);
	if (rc) {
		ex = die(rc, "restore");
		goto out;
	}
	if (G.json) {
		json_t *j = json_pack(
			"{s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f}",
			"series", series, "backup_num", (json_int_t)num,
			"target", where, "groups", (json_int_t)hr.groups,
			"files", (json_int_t)res->files, "dirs",
			(json_int_t)res->dirs, "links", (json_int_t)res->links,
			"bytes", (json_int_t)res->bytes, "files_kept",
			(json_int_t)res->files_kept, "bytes_kept",
			(json_int_t)res->bytes_kept, "elapsed", res->elapsed);

		json_object_set_new(j, "specials",
				    json_integer((json_int_t)res->specials));
		if (hr.aside[0])
			json_object_set_new(j, "moved_aside",
					    json_string(hr.aside));
		print_json(j);
	} else if (!G.quiet) {
		char b[32], kept[32], rate[32];

		human_bytes(res->bytes, b);
		human_bytes(res->bytes_kept, kept);
		human_bytes(res->elapsed > 0 ? res->bytes / res->elapsed : 0,
			    rate);
		printf("restored %s/%u to %s: %zu group(s), %" PRIu64
		       " files, %" PRIu64 " dirs, %" PRIu64
		       " links, %s written in %.1f s (%s/s)",
		       series, num, where, hr.groups, res->files, res->dirs,
		       res->links, b, res->elapsed, rate);
		if (res->files_kept)
			printf("; %" PRIu64 " files (%s) already there", 
			       res->files_kept, kept);
		printf("\n");
		if (hr.aside[0])
			printf("the previous directory is kept as %s\n",
			       hr.aside);
	}
	ex = res->warnings ? EX_PARTIAL : EX_OK;
out:
	{
		struct metric m[] = {{"snapfs_files", res->files},
				     {"snapfs_bytes", res->bytes}};
		char lbl[LABEL_MAX + 1];

		/* The series' label, or what the user named. */
		if (series[0])
			series_label(series, lbl);
		else
			snprintf(lbl, sizeof(lbl), "%.*s",
				 (int)strcspn(spec, "/"), spec);
		run_metrics("restore", lbl, ex, m,
			    ex == EX_OK || ex == EX_PARTIAL ? 2 : 0);
	}
	repo_close(r);
	return ex;
}

/* --- export -------------------------------------------------------------*/

static const char *export_help =
	"usage: snapctl -r REPO export SERIES[/N] [--group G] -o FILE|-\n"
	"              [--format tar|tar.gz|tar.zst|tar.xz|tar.bz2|tar.lz4|dcos-zk]\n"
	"\n"
	"Writes backup N (default: the latest) as a tar archive: members\n"
	"<group>/<path>, or ./<path> with --group.  Compression follows FILE's\n"
	"extension (.tar, .tar.gz/.tgz, .tar.zst, .tar.xz, .tar.bz2, .tar.lz4)\n"
	"or --format; '-' writes plain tar to standard output.  Owners, modes,\n"
	"ns mtimes, xattrs, symlinks, hardlinks and holes (GNU sparse) are kept.\n"
	"--format dcos-zk writes the gzip tarball 'dcos-zk restore' takes: the\n"
	"group's zookeeper/ directory as ./zookeeper/..., without myid and\n"
	"zookeeper.out.  FILE appears only when complete.\n";

struct export_args {
	struct export_opts xo;
};

static int export_opt(int c, void *ctx)
{
	struct export_args *a = ctx;

	switch (c) {
	case 'o':
	case OPT_OUTPUT: a->xo.output = optarg; return 0;
	case OPT_GROUP: a->xo.group = optarg; return 0;
	case OPT_FORMAT: a->xo.format = optarg; return 0;
	}
	return -1;
}

static int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, OPT_OUTPUT},
		{"group", required_argument, NULL, OPT_GROUP},
		{"format", required_argument, NULL, OPT_FORMAT},
		{NULL, 0, NULL, 0}};
	struct export_args a = {0};
	struct export_result res;
	struct progress prog;
	char series[SERIES_MAX];
	struct repo *r = NULL;
	uint32_t num;
	int rc, ex;

	if ((ex = parse_args(argc, argv, "export", export_help, opts,
			     export_opt, &a)) >= 0)
		return ex;
	if (optind + 1 != argc)
		return usage_error("export", "give exactly one SERIES[/N]");
	if (!a.xo.output)
		return usage_error("export", "-o FILE (or -o - for standard "
					     "output) is required");
	if (!strcmp(a.xo.output, "-") && isatty(STDOUT_FILENO))
		return usage_error("export", "not writing an archive to a "
					     "terminal");
	if ((ex = open_repo("export", &r)))
		return ex;
	rc = repo_resolve_backup(r, argv[optind], series, &num);
	if (rc) {
		ex = die(rc, "export");
		goto out;
	}
	a.xo.threads = G.threads ? G.threads
		       : G.ko.store.parallel ? G.ko.store.parallel
		       : store_is_remote(r->st) ? 8 : 0;
	progress_start(&prog, "export", show_progress());
	a.xo.progress = &prog;
	rc = export_run(r, series, num, &a.xo, &res);
	progress_stop(&prog);
	if (rc) {
		ex = die(rc, "export");
		goto out;
	}
	/* The archive may be on stdout: the summary goes to stderr. */
	if (G.json) {
		json_t *j = json_pack("{s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:f}",
				      "series", series, "backup_num",
				      (json_int_t)num, "output", a.xo.output,
				      "files", (json_int_t)res.files, "dirs",
				      (json_int_t)res.dirs, "links",
				      (json_int_t)res.links, "bytes",
				      (json_int_t)res.bytes, "elapsed",
				      res.elapsed);
		json_object_set_new(j, "specials",
				    json_integer((json_int_t)res.specials));
		char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

		if (text)
			fprintf(stderr, "%s\n", text);
		free(text);
		json_decref(j);
	} else if (!G.quiet) {
		char b[32];

		human_bytes(res.bytes, b);
		fprintf(stderr,
			"exported %s/%u to %s: %" PRIu64 " files, %" PRIu64
			" dirs, %" PRIu64 " links, %s in %.1f s\n",
			series, num, a.xo.output, res.files, res.dirs,
			res.links, b, res.elapsed);
	}
out:
	repo_close(r);
	return ex;
}

/* --- delete -------------------------------------------------------------*/

static const char *delete_help =
	"usage: snapctl -r REPO delete SERIES-ID\n"
	"\n"
	"Deletes a whole series: first a tombstone (it vanishes from listings\n"
	"at once, and a backup still running into it fails instead of\n"
	"committing), then its manifests newest first, then its packs.  A\n"
	"delete that was interrupted is finished by running it again.  Nothing\n"
	"outside the series' own prefixes is touched; other series never share\n"
	"its data.\n"
	"SERIES-ID is the exact id (LABEL-UUID, as 'snapctl list' shows), never\n"
	"a label or a prefix.\n";

static int cmd_delete(int argc, char **argv)
{
	char label[LABEL_MAX + 1];
	const char *series;
	struct repo *r = NULL;
	uint32_t num, nb = 0;
	uint64_t np = 0;
	int rc, ex;

	if ((ex = parse_args(argc, argv, "delete", delete_help, NULL, NULL, NULL)) >= 0)
		return ex;
	if (optind + 1 != argc)
		return usage_error("delete", "give exactly one SERIES-ID");
	series = argv[optind];
	if (strchr(series, '/'))
		return usage_error("delete", "delete removes whole series; "
					     "give SERIES-ID without /N");
	/* No label, no prefix: what is destroyed must be what was typed,
	 * whatever other series the repository holds or gains. */
	if (series_check(series))
		return usage_error("delete", "'%s' is not a series id: delete "
					     "takes the exact id (LABEL-UUID, "
					     "as 'snapctl list' shows), never "
					     "a label or a prefix",
				   series);
	if ((ex = open_repo("delete", &r)))
		return ex;
	rc = repo_latest_num(r, series, &num);
	/* Tombstoned: a delete that stopped part way, to be finished. */
	if (rc == SNAP_ENOENT) {
		rc = tomb_exists(r->st, series);
		if (rc == 0)
			rc = snap_seterr(SNAP_ENOENT, "no series %s", series);
		else if (rc == 1)
			rc = 0;
	}
	rc = rc ? rc : tomb_delete_series(r->st, series, &nb, &np);
	series_label(series, label);
	if (rc)
		ex = die(rc, "delete");
	else if (G.json)
		print_json(json_pack("{s:s,s:s,s:I,s:I}", "deleted", series,
				     "label", label, "backups", (json_int_t)nb,
				     "packs", (json_int_t)np));
	else if (!G.quiet)
		printf("deleted series %s (label %s): %" PRIu32 " backups, %"
		       PRIu64 " packs\n",
		       series, label, nb, np);
	repo_close(r);
	return ex;
}

/* --- prune --------------------------------------------------------------*/

static const char *prune_help =
	"usage: snapctl -r REPO prune [--keep-last N] [--keep-hourly N]\n"
	"         [--keep-daily N] [--keep-weekly N] [--keep-monthly N]\n"
	"         [--keep-yearly N] [--keep-within SPAN] [--label L]...\n"
	"         [--dry-run] [--json]\n"
	"\n"
	"Deletes the series no keep rule keeps, label by label (--label: only\n"
	"these).  A series is timed by its newest backup; the rules are restic's\n"
	"'forget' rules over series:\n"
	"  --keep-last N        the N newest\n"
	"  --keep-hourly N      the newest of each of the last N hours that\n"
	"  --keep-daily N       have one (days, ISO weeks, months, years: the\n"
	"  --keep-weekly N      same), in local time (TZ); N may be\n"
	"  --keep-monthly N     'unlimited'\n"
	"  --keep-yearly N\n"
	"  --keep-within SPAN   every series less than SPAN (1y6m, 14d, 36h)\n"
	"                       older than the label's newest\n"
	"The newest series of a label, and the one its next backup continues,\n"
	"are never deleted.  Every decision is printed first, with the rules\n"
	"that keep a series; --dry-run stops there.  Deleting is as for\n"
	"'snapctl delete'.  Give at least one rule.\n";

struct prune_args {
	struct ret_policy p;
	const char *labels[64];
	size_t nlabels;
	int dry_run;
};

static int prune_opt(int c, void *ctx)
{
	static const char *const names[] = {
		"--keep-last", "--keep-hourly", "--keep-daily",
		"--keep-weekly", "--keep-monthly", "--keep-yearly"};
	struct prune_args *a = ctx;
	uint32_t *counts[] = {&a->p.last, &a->p.hourly, &a->p.daily,
			      &a->p.weekly, &a->p.monthly, &a->p.yearly};
	int rc = 0;

	if (c >= OPT_KEEP_LAST && c <= OPT_KEEP_YEARLY)
		rc = ret_parse_count(names[c - OPT_KEEP_LAST], optarg, 1,
				     counts[c - OPT_KEEP_LAST]);
	else if (c == OPT_KEEP_WITHIN)
		rc = ret_parse_span(optarg, &a->p.within);
	else if (c == OPT_DRY_RUN)
		a->dry_run = 1;
	else if (c != OPT_LABEL)
		return -1;
	else if (a->nlabels == 64)
		rc = snap_seterr(SNAP_EINVAL, "at most 64 --label");
	else if (!(rc = label_check(optarg)))
		a->labels[a->nlabels++] = optarg;
	if (rc) {
		usage_error("prune", "%s", snap_errmsg());
		return -2;
	}
	return 0;
}

struct prune_out {
	json_t *series; /* --json: every decision */
	char last_label[LABEL_MAX + 1];
};

static void prune_decided(void *ctx, const struct prune_series *s)
{
	struct prune_out *po = ctx;
	char why[128], t[40];

	prune_reasons(s->why, why, sizeof(why));
	if (po->series) {
		json_array_append_new(
			po->series,
			json_pack("{s:s,s:s,s:I,s:I,s:I,s:s,s:o}", "series",
				  s->series, "label", s->label, "time",
				  (json_int_t)s->time, "first",
				  (json_int_t)s->first, "backups",
				  (json_int_t)s->backups, "action",
				  s->why ? "keep" : "delete", "reasons",
				  json_string(why)));
		return;
	}
	if (G.quiet)
		return;
	if (strcmp(po->last_label, s->label))
		printf("label %s:\n", s->label);
	snprintf(po->last_label, sizeof(po->last_label), "%s", s->label);
	format_time(s->time, t);
	printf("  %-6s %-62s %-24s %5u  %s\n", s->why ? "keep" : "delete",
	       s->series, t, s->backups, s->why ? why : "no rule keeps it");
}

static int cmd_prune(int argc, char **argv)
{
	static const struct option opts[] = {
		{"keep-last", required_argument, NULL, OPT_KEEP_LAST},
		{"keep-hourly", required_argument, NULL, OPT_KEEP_HOURLY},
		{"keep-daily", required_argument, NULL, OPT_KEEP_DAILY},
		{"keep-weekly", required_argument, NULL, OPT_KEEP_WEEKLY},
		{"keep-monthly", required_argument, NULL, OPT_KEEP_MONTHLY},
		{"keep-yearly", required_argument, NULL, OPT_KEEP_YEARLY},
		{"keep-within", required_argument, NULL, OPT_KEEP_WITHIN},
		{"label", required_argument, NULL, OPT_LABEL},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{NULL, 0, NULL, 0}};
	struct prune_args a = {0};
	struct prune_opts o = {0};
	struct prune_result res;
	struct prune_out po = {0};
	struct repo *r = NULL;
	int rc, ex;

	if ((ex = parse_args(argc, argv, "prune", prune_help, opts, prune_opt,
			     &a)) >= 0)
		return ex;
	if (optind < argc)
		return usage_error("prune", "unexpected argument '%s'",
				   argv[optind]);
	if (ret_policy_empty(&a.p))
		return usage_error("prune", "give at least one --keep-* rule: "
					    "without one every series but the "
					    "newest would go");
	if ((ex = open_repo("prune", &r)))
		return ex;
	o.policy = a.p;
	o.labels = a.nlabels ? a.labels : NULL;
	o.nlabels = a.nlabels;
	o.dry_run = a.dry_run;
	o.decided = prune_decided;
	o.ctx = &po;
	if (G.json)
		po.series = json_array();
	rc = prune_run(r, &o, &res);
	if (rc) {
		ex = die(rc, "prune");
		json_decref(po.series);
	} else if (G.json) {
		print_json(json_pack("{s:o,s:b,s:I,s:I,s:I,s:I}", "series",
				     po.series, "dry_run", a.dry_run, "kept",
				     (json_int_t)res.kept, "deleted",
				     (json_int_t)res.deleted, "backups_deleted",
				     (json_int_t)res.backups, "objects_deleted",
				     (json_int_t)res.objects));
	} else if (!G.quiet) {
		printf("%s %zu series of %zu labels, kept %zu%s",
		       a.dry_run ? "would delete" : "deleted", res.deleted,
		       res.labels, res.kept,
		       a.dry_run ? " (dry run: nothing deleted)\n" : "");
		if (!a.dry_run)
			printf(" (%" PRIu64 " backups, %" PRIu64 " objects)\n",
			       res.backups, res.objects);
	}
	repo_close(r);
	return ex;
}

/* --- commit -------------------------------------------------------------*/

static const char *commit_help =
	"usage: snapctl commit MOUNT/control/LABEL\n"
	"\n"
	"Commits what was copied into a label of a snapfs mount: the same as\n"
	"touching MOUNT/control/LABEL/.snapfs/commit.  Waits until the backup's\n"
	"manifest is durable in the store, then prints the new backup (--json:\n"
	"the label's status).  Fails (exit 1) when the commit did not land;\n"
	"the reason is printed and the staged changes are kept.\n";

/* The label's .snapfs/status, parsed. */
static json_t *read_status(const char *dir)
{
	char path[PATH_MAX];
	json_error_t jerr;

	snprintf(path, sizeof(path), "%s/.snapfs/status", dir);
	return json_load_file(path, 0, &jerr);
}

static int cmd_commit(int argc, char **argv)
{
	char path[PATH_MAX];
	json_t *st, *last;
	int fd, ex, failed;

	if ((ex = parse_args(argc, argv, "commit", commit_help, NULL, NULL,
			     NULL)) >= 0)
		return ex;
	if (optind + 1 != argc)
		return usage_error("commit", "give MOUNT/control/LABEL");
	snprintf(path, sizeof(path), "%s/.snapfs/commit", argv[optind]);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "snapctl commit: %s: %s (is it a label "
				"directory of a snapfs mount?)\n",
			path, strerror(errno));
		return errno == ENOENT ? EX_NOTFOUND : EX_FAIL;
	}
	/* The close waits for the commit and tells whether it landed. */
	failed = close(fd) != 0;
	st = read_status(argv[optind]);
	if (failed) {
		const char *why = json_string_value(json_object_get(st, "last_error"));

		fprintf(stderr, "snapctl commit: %s: the commit failed: %s\n",
			argv[optind], why && *why ? why : strerror(errno));
		json_decref(st);
		return EX_FAIL;
	}
	last = json_object_get(st, "last_commit");
	if (G.json) {
		print_json(json_incref(st));
	} else if (!G.quiet && last) {
		char h[32];

		human_bytes((uint64_t)json_integer_value(
				    json_object_get(last, "bytes_new")),
			    h);
		printf("%s/%lld: %lld files, %s new\n",
		       json_string_value(json_object_get(last, "series")),
		       (long long)json_integer_value(
			       json_object_get(last, "backup_num")),
		       (long long)json_integer_value(
			       json_object_get(last, "files")),
		       h);
	}
	json_decref(st);
	return EX_OK;
}

/* --- check --------------------------------------------------------------*/

static const char *check_help =
	"usage: snapctl -r REPO check [--read-data | --read-data-subset N/M|P%]\n"
	"                             [--repair [--grace SPAN]] [SERIES]\n"
	"\n"
	"Verifies manifests, pack indexes and every directory object, and that\n"
	"every reference points at a listed blob.  --read-data also reads and\n"
	"authenticates every blob; --read-data-subset those of slice N of M of\n"
	"the packs (by pack id: 1/7 .. 7/7 read every pack once in a week), or\n"
	"of a random P%.  Each problem is one line naming the object; exit\n"
	"status 6 when any is found.\n"
	"--repair deletes what no backup can reach: packs no backup lists or\n"
	"references, data of series without a backup (killed first backups),\n"
	"what interrupted deletes left; never while a writer's lease on the\n"
	"series was refreshed within --grace (default 24h, at least 1h).\n";

static void report_cb(const char *msg, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "%serror: %s\n", clear_line(), msg);
}

static void note_cb(const char *msg, void *ctx)
{
	(void)ctx;
	if (!G.quiet)
		fprintf(stderr, "%srepair: %s\n", clear_line(), msg);
}

static int check_opt(int c, void *ctx)
{
	struct check_opts *co = ctx;

	if (c == OPT_REPAIR) {
		co->repair = 1;
		return 0;
	}
	if (c == OPT_GRACE) {
		struct ret_span s;
		int64_t now = now_ns();

		if (ret_parse_span(optarg, &s)) {
			usage_error("check", "--grace: %s", snap_errmsg());
			return -2;
		}
		co->grace = (now - ret_before(now, &s)) / 1000000000LL;
		if (co->grace < (int64_t)lease_grace_min()) {
			usage_error("check", "--grace %s is shorter than %u s "
				    "(six lease periods): a running backup "
				    "could lose its packs", optarg,
				    lease_grace_min());
			return -2;
		}
		return 0;
	}
	if (c == OPT_READ_SUBSET && check_parse_subset(optarg, co)) {
		usage_error("check", "%s", snap_errmsg());
		return -2;
	}
	if (c != OPT_READ_DATA && c != OPT_READ_SUBSET)
		return -1;
	co->read_data = 1;
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"read-data", no_argument, NULL, OPT_READ_DATA},
		{"read-data-subset", required_argument, NULL, OPT_READ_SUBSET},
		{"repair", no_argument, NULL, OPT_REPAIR},
		{"grace", required_argument, NULL, OPT_GRACE},
		{NULL, 0, NULL, 0}};
	struct check_opts co = {.grace = 86400};
	struct check_result res = {0};
	struct progress prog;
	char series[SERIES_MAX];
	struct repo *r = NULL;
	uint32_t num;
	int rc = -1, ex;

	if ((ex = parse_args(argc, argv, "check", check_help, opts, check_opt,
			     &co)) >= 0)
		return ex;
	if (optind + 1 < argc)
		return usage_error("check", "give at most one SERIES");
	if ((ex = open_repo("check", &r)))
		goto out;
	if (optind < argc) {
		rc = repo_resolve(r, argv[optind], series, &num);
		if (rc) {
			ex = die(rc, "check");
			goto out;
		}
		co.series = series;
	}
	if (co.grace != 86400 && !co.repair) {
		ex = usage_error("check", "--grace goes with --repair");
		goto out;
	}
	co.report = report_cb;
	co.note = note_cb;
	progress_start(&prog, "check", show_progress());
	co.progress = &prog;
	rc = check_run(r, &co, &res);
	progress_stop(&prog);
	if (G.json) {
		print_json(json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
				     "s:I,s:I}",
				     "removed_objects",
				     (json_int_t)res.removed_objects,
				     "removed_series",
				     (json_int_t)res.removed_series, "leased",
				     (json_int_t)res.leased, "stale_leases",
				     (json_int_t)res.stale_leases,
				     "series", (json_int_t)res.series,
				     "backups", (json_int_t)res.backups,
				     "trees", (json_int_t)res.trees, "packs",
				     (json_int_t)res.packs, "blobs",
				     (json_int_t)res.blobs, "bytes_read",
				     (json_int_t)res.bytes_read, "errors",
				     (json_int_t)res.errors,
				     "unreferenced_packs",
				     (json_int_t)res.unreferenced_packs));
	} else if (!G.quiet) {
		printf("checked %" PRIu64 " series, %" PRIu64
		       " backups, %" PRIu64 " directories, %" PRIu64 " packs",
		       res.series, res.backups, res.trees, res.packs);
		if (co.read_data)
			printf(", %" PRIu64 " blobs read", res.blobs);
		printf(": %s\n", res.errors ? "PROBLEMS FOUND" : "no problems");
		if (co.repair)
			printf("repair: removed %" PRIu64 " object(s) (%" PRIu64
			       " series without a backup), %" PRIu64
			       " stale lease(s); %" PRIu64 " series kept for "
			       "a writer\n",
			       res.removed_objects, res.removed_series,
			       res.stale_leases, res.leased);
		else if (res.unreferenced_packs)
			printf("%" PRIu64 " pack(s) not listed by any backup "
			       "(left by an interrupted backup; reused by "
			       "the next one, removed by --repair)\n",
			       res.unreferenced_packs);
	}
	if (rc)
		ex = die(rc, "check");
out:
	{
		struct metric m[] = {{"snapfs_errors", res.errors},
				     {"snapfs_bytes_read", res.bytes_read}};

		run_metrics("check", co.series ? co.series : "", ex, m,
			    rc == 0 || rc == SNAP_ECORRUPT ? 2 : 0);
	}
	repo_close(r);
	return ex;
}

/* --- stats --------------------------------------------------------------*/

static const char *stats_help =
	"usage: snapctl -r REPO stats [--json]\n"
	"\n"
	"Counts the objects and bytes the repository holds: manifests, packs,\n"
	"and the series they belong to.\n";

struct usage {
	uint64_t objects, bytes, manifests, packs, pack_bytes;
};

static int count_object(const char *key, uint64_t size, void *ctx)
{
	struct usage *u = ctx;

	u->objects++;
	u->bytes += size;
	if (!strncmp(key, "manifests/", 10))
		u->manifests++;
	else if (!strncmp(key, "data/", 5)) {
		u->packs++;
		u->pack_bytes += size;
	}
	return 0;
}

static int cmd_stats(int argc, char **argv)
{
	struct usage u = {0};
	struct repo *r = NULL;
	int rc, ex;

	if ((ex = parse_args(argc, argv, "stats", stats_help, NULL, NULL,
			     NULL)) >= 0)
		return ex;
	if ((ex = open_repo("stats", &r)))
		return ex;
	rc = store_list(r->st, "", count_object, &u);
	if (rc) {
		ex = die(rc, "stats");
	} else if (G.json) {
		print_json(json_pack("{s:I,s:I,s:I,s:I,s:I}", "objects",
				     (json_int_t)u.objects, "bytes",
				     (json_int_t)u.bytes, "manifests",
				     (json_int_t)u.manifests, "packs",
				     (json_int_t)u.packs, "pack_bytes",
				     (json_int_t)u.pack_bytes));
	} else {
		char b[32], pb[32];

		human_bytes(u.bytes, b);
		human_bytes(u.pack_bytes, pb);
		printf("%" PRIu64 " objects, %s: %" PRIu64 " manifests, %" PRIu64
		       " packs (%s)\n",
		       u.objects, b, u.manifests, u.packs, pb);
	}
	repo_close(r);
	return ex;
}

/* --- key ----------------------------------------------------------------*/

static const char *key_help =
	"usage: snapctl -r REPO key list [--json]\n"
	"       snapctl -r REPO key add NEW [--json]\n"
	"       snapctl -r REPO key passwd --new-password-file F|--new-password-command C\n"
	"       snapctl -r REPO key remove SLOT [--json]\n"
	"\n"
	"Manages the secrets that open an encrypted repository, rewriting only\n"
	"snapfs.json: data stays encrypted under the same master key.  The\n"
	"repository is opened with the usual options (--password-file,\n"
	"--encryption-key-file, ...); NEW is one of\n"
	"  --new-password-file F, --new-password-command C   a passphrase\n"
	"  --new-key-file F, --new-key-command C             a 16/24/32-byte key\n"
	"  --new-key-format FMT                              auto, raw or base64\n"
	"add gives the repository one more slot for NEW (a passphrase for a\n"
	"key-file repository, a second key for another team) and checks that\n"
	"NEW alone opens it; passwd replaces the passphrase that opened it;\n"
	"remove takes a slot back.  The primary key file of a key-file\n"
	"repository is its master key and cannot be taken back.  The first\n"
	"slot raises the repository to format 3, which older snapfs refuses.\n";

struct key_args {
	struct key_source pass, key;
	int format_set;
};

static int key_opt(int c, void *ctx)
{
	struct key_args *a = ctx;

	switch (c) {
	case OPT_NEW_PASS: a->pass.file = optarg; return 0;
	case OPT_NEW_PASSCMD: a->pass.command = optarg; return 0;
	case OPT_NEW_KEY: a->key.file = optarg; return 0;
	case OPT_NEW_KEYCMD: a->key.command = optarg; return 0;
	case OPT_NEW_KEYFMT:
		if (keysrc_format(optarg, &a->key.format)) {
			usage_error("key", "%s", snap_errmsg());
			return -2;
		}
		return 0;
	}
	return -1;
}

static int cmd_key(int argc, char **argv)
{
	static const struct option opts[] = {
		{"new-password-file", required_argument, NULL, OPT_NEW_PASS},
		{"new-password-command", required_argument, NULL, OPT_NEW_PASSCMD},
		{"new-key-file", required_argument, NULL, OPT_NEW_KEY},
		{"new-key-command", required_argument, NULL, OPT_NEW_KEYCMD},
		{"new-key-format", required_argument, NULL, OPT_NEW_KEYFMT},
		{NULL, 0, NULL, 0}};
	struct key_args a = {0};
	struct repo *r = NULL;
	const char *sub;
	char id[SLOT_ID_LEN + 1];
	int rc = 0, ex, npass, nkey;

	if ((ex = parse_args(argc, argv, "key", key_help, opts, key_opt, &a)) >= 0)
		return ex;
	if (optind >= argc)
		return usage_error("key", "give list, add, passwd or remove");
	sub = argv[optind];
	npass = keysrc_given(&a.pass);
	nkey = keysrc_given(&a.key);
	a.pass.warn = a.key.warn = key_warning;
	if (!strcmp(sub, "list") || !strcmp(sub, "remove")) {
		if (npass || nkey)
			return usage_error("key", "%s takes no new secret", sub);
		if (optind + 1 + !strcmp(sub, "remove") != argc)
			return usage_error("key", strcmp(sub, "list")
						  ? "remove takes one SLOT"
						  : "list takes no argument");
	} else if (!strcmp(sub, "add") || !strcmp(sub, "passwd")) {
		if (optind + 1 != argc)
			return usage_error("key", "%s takes no argument", sub);
		if (npass + nkey != 1 || (!strcmp(sub, "passwd") && !npass))
			return usage_error("key", !strcmp(sub, "passwd")
						  ? "give --new-password-file or "
						    "--new-password-command"
						  : "give one new secret: a "
						    "passphrase or a key");
	} else {
		return usage_error("key", "unknown subcommand '%s'", sub);
	}
	if ((ex = open_repo("key", &r)))
		return ex;
	if (!strcmp(sub, "list")) {
		json_t *j = NULL;

		rc = keyslot_list(r, &j);
		if (rc == 0 && G.json) {
			print_json(j);
			j = NULL;
		} else if (rc == 0) {
			json_t *o;
			size_t i;

			printf("primary  %-10s%s\n",
			       json_string_value(json_object_get(j, "primary")),
			       r->slot[0] ? "" : "  (opened it)");
			json_array_foreach(json_object_get(j, "slots"), i, o) {
				const char *sid = json_string_value(
					json_object_get(o, "id"));
				const char *kind = json_string_value(
					json_object_get(o, "kind"));
				const char *when = json_string_value(
					json_object_get(o, "created"));

				printf("%s  %-10s  added %s%s\n", sid ? sid : "?",
				       kind ? kind : "?", when ? when : "?",
				       sid && !strcmp(sid, r->slot)
					       ? "  (opened it)"
					       : "");
			}
		}
		json_decref(j);
	} else if (!strcmp(sub, "add")) {
		rc = keyslot_add(r, npass ? &a.pass : NULL, nkey ? &a.key : NULL,
				 id);
		if (rc == 0 && G.json)
			print_json(json_pack("{s:s,s:s}", "slot", id, "kind",
					     npass ? "passphrase" : "keyfile"));
		else if (rc == 0 && !G.quiet)
			printf("added key slot %s (%s)\n", id,
			       npass ? "passphrase" : "key file");
	} else if (!strcmp(sub, "passwd")) {
		rc = keyslot_passwd(r, &a.pass);
		if (rc == 0 && G.json)
			print_json(json_pack("{s:s}", "slot", r->slot));
		else if (rc == 0 && !G.quiet)
			printf("passphrase changed%s%s\n",
			       r->slot[0] ? " for slot " : "", r->slot);
	} else {
		rc = keyslot_remove(r, argv[optind + 1]);
		if (rc == 0 && G.json)
			print_json(json_pack("{s:s}", "removed",
					     argv[optind + 1]));
		else if (rc == 0 && !G.quiet)
			printf("removed key slot %s\n", argv[optind + 1]);
	}
	if (rc)
		ex = die(rc, "key");
	repo_close(r);
	return ex;
}

/* --- mirror -------------------------------------------------------------*/

static const char *mirror_help =
	"usage: snapctl mirror SRC DST [--label L]... [--series S]... [--remove]\n"
	"                      [--parallel N] [--json]\n"
	"\n"
	"Copies the repository at SRC to the location DST (any two stores):\n"
	"series by series, the packs DST lacks, then the manifests DST lacks in\n"
	"backupNum order, each only after the packs it needs, so DST never\n"
	"holds a backup it cannot read.  Objects are never overwritten; a run\n"
	"after an interruption copies what is missing.  DST must be empty or a\n"
	"mirror of the same repository.  No key is needed: what is copied is\n"
	"encrypted already.  --label and --series pick series (repeatable);\n"
	"--remove deletes from DST the series SRC no longer has (of the picked\n"
	"labels), after the copy succeeded.  Check DST with 'snapctl -r DST\n"
	"check --read-data'.\n";

struct mirror_args {
	const char *series[64], *labels[64];
	size_t nseries, nlabels;
	int remove;
};

static int mirror_opt(int c, void *ctx)
{
	struct mirror_args *a = ctx;

	if (c == OPT_SERIES || c == OPT_LABEL) {
		const char **v = c == OPT_SERIES ? a->series : a->labels;
		size_t *n = c == OPT_SERIES ? &a->nseries : &a->nlabels;

		if (*n == 64) {
			usage_error("mirror", "at most 64 --series and --label");
			return -2;
		}
		if (c == OPT_SERIES ? series_check(optarg) : label_check(optarg)) {
			usage_error("mirror", "%s", snap_errmsg());
			return -2;
		}
		v[(*n)++] = optarg;
	} else if (c == OPT_REMOVE) {
		a->remove = 1;
	} else {
		return -1;
	}
	return 0;
}

static int cmd_mirror(int argc, char **argv)
{
	static const struct option opts[] = {
		{"series", required_argument, NULL, OPT_SERIES},
		{"label", required_argument, NULL, OPT_LABEL},
		{"remove", no_argument, NULL, OPT_REMOVE},
		{NULL, 0, NULL, 0}};
	struct mirror_args a = {0};
	struct mirror_opts mo = {0};
	struct mirror_result res;
	struct store *src = NULL, *dst = NULL;
	struct progress prog;
	int rc, ex;

	if ((ex = parse_args(argc, argv, "mirror", mirror_help, opts,
			     mirror_opt, &a)) >= 0)
		return ex;
	if (optind + 2 != argc)
		return usage_error("mirror", "give SRC and DST");
	if (!strcmp(argv[optind], argv[optind + 1]))
		return usage_error("mirror", "SRC and DST are the same");
	ex = EX_OK;
	rc = store_open(argv[optind], &G.ko.store, &src);
	rc = rc ? rc : store_open(argv[optind + 1], &G.ko.store, &dst);
	if (rc) {
		ex = die(rc, "mirror");
		goto out;
	}
	mo.series = a.series;
	mo.nseries = a.nseries;
	mo.labels = a.labels;
	mo.nlabels = a.nlabels;
	mo.remove = a.remove;
	mo.parallel = G.ko.store.parallel ? G.ko.store.parallel
		      : store_is_remote(src) || store_is_remote(dst) ? 8 : 4;
	progress_start(&prog, "mirror", show_progress());
	mo.progress = &prog;
	rc = mirror_run(src, dst, &mo, &res);
	progress_stop(&prog);
	if (rc) {
		ex = die(rc, "mirror");
	} else if (G.json) {
		print_json(json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:f}",
				     "series", (json_int_t)res.series, "packs",
				     (json_int_t)res.packs, "manifests",
				     (json_int_t)res.manifests, "bytes",
				     (json_int_t)res.bytes, "present",
				     (json_int_t)res.present, "removed",
				     (json_int_t)res.removed, "config",
				     res.config, "elapsed", res.elapsed));
	} else if (!G.quiet) {
		char b[32];

		human_bytes(res.bytes, b);
		printf("mirrored %" PRIu64 " series: %" PRIu64 " packs and %" PRIu64
		       " manifests copied (%s), %" PRIu64 " objects there "
		       "already%s, %" PRIu64 " series removed; %.1f s\n",
		       res.series, res.packs, res.manifests, b, res.present,
		       res.config ? ", snapfs.json written" : "", res.removed,
		       res.elapsed);
	}
	{
		struct metric m[] = {{"snapfs_bytes", res.bytes},
				     {"snapfs_files", res.packs + res.manifests}};

		run_metrics("mirror", "", ex, m, rc ? 0 : 2);
	}
out:
	store_close(src);
	store_close(dst);
	return ex;
}

/* --- main ---------------------------------------------------------------*/

static const struct {
	const char *name;
	int (*fn)(int, char **);
} commands[] = {
	{"init", cmd_init},       {"backup", cmd_backup},
	{"list", cmd_list},       {"show", cmd_show},
	{"ls", cmd_ls},           {"cat", cmd_cat},
	{"diff", cmd_diff},
	{"restore", cmd_restore}, {"export", cmd_export},
	{"delete", cmd_delete},   {"prune", cmd_prune},
	{"commit", cmd_commit},
	{"check", cmd_check},     {"stats", cmd_stats},
	{"key", cmd_key},         {"mirror", cmd_mirror},
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS, {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	int c, rc;

	/* Keys and store credentials live in this process: no core dump of
	 * ours may carry them. */
	prctl(PR_SET_DUMPABLE, 0);
	raise_fd_limit();
	G.started = (double)now_ns() / 1e9;

	/* Global options before the command; stop at the command name. */
	while ((c = getopt_long(argc, argv, "+r:qhV", opts, NULL)) != -1) {
		if ((rc = common_opt(c, "")) < 0)
			return EX_USAGE;
		if (rc)
			continue;
		if (c == 'h')
			return fputs(usage_text, stdout), EX_OK;
		if (c == 'V')
			return printf("snapctl (snapfs) %s\n", PACKAGE_VERSION),
			       EX_OK;
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	if (!strcmp(argv[optind], "help")) {
		fputs(usage_text, stdout);
		return EX_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name))
			continue;
		argv += optind;
		argc -= optind;
		optind = 0; /* GNU getopt: full reinitialisation */
		return commands[i].fn(argc, argv);
	}
	fprintf(stderr, "snapctl: unknown command '%s'\n\n%s", argv[optind],
		usage_text);
	return EX_USAGE;
}
