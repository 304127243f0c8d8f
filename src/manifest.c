/* manifest.c - manifest JSON, MAC and validation; see manifest.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "manifest.h"
#include "tree.h"

#define LABEL_RULE                                                             \
	"a label is 3-25 characters of [A-Za-z0-9_.-] and does not start "    \
	"with '..'"

int label_check(const char *label)
{
	size_t n = label ? strlen(label) : 0;

	if (n < LABEL_MIN || n > LABEL_MAX || strncmp(label, "..", 2) == 0)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = label[i];

		if (!isascii(c) || !(isalnum(c) || c == '_' || c == '.' ||
				     c == '-'))
			goto bad;
	}
	return 0;
bad:
	return snap_seterr(SNAP_EINVAL, "invalid label '%s': %s",
			   label ? label : "", LABEL_RULE);
}

int group_check(const char *name)
{
	if (!name_ok(name, strlen(name)) || strlen(name) > 255 ||
	    name[0] == '.')
		return snap_seterr(SNAP_EINVAL,
				   "invalid group name '%s': a group is one "
				   "path component, not starting with '.'",
				   name);
	return 0;
}

static int uuid_ok(const char *u)
{
	if (strlen(u) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (u[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)u[i]) ||
			   isupper((unsigned char)u[i])) {
			return 0;
		}
	}
	return 1;
}

int series_check(const char *series)
{
	size_t n = strlen(series);
	char label[LABEL_MAX + 1];

	if (n < LABEL_MIN + 37 || n > LABEL_MAX + 37 || series[n - 37] != '-' ||
	    !uuid_ok(series + n - 36))
		return snap_seterr(SNAP_EINVAL, "invalid series id '%s'",
				   series);
	series_label(series, label);
	return label_check(label);
}

void series_label(const char *series, char out[LABEL_MAX + 1])
{
	size_t n = strlen(series);
	size_t l = n > 37 ? n - 37 : 0;

	if (l > LABEL_MAX)
		l = LABEL_MAX;
	memcpy(out, series, l);
	out[l] = 0;
}

void manifest_key(const char *series, uint32_t num, char *out, size_t n)
{
	snprintf(out, n, "manifests/%s/%u.json", series, num);
}

static json_t *hexstr(const uint8_t *p, size_t n)
{
	char h[2 * 64 + 1];

	hex_encode(p, n, h);
	return json_string(h);
}

static const struct {
	const char *name;
	int bit;
} xns[] = {{"security", XNS_SECURITY},
	   {"system", XNS_SYSTEM},
	   {"trusted", XNS_TRUSTED},
	   {"user", XNS_USER}};

int xattr_ns_of(const char *name)
{
	for (size_t i = 0; i < sizeof(xns) / sizeof(xns[0]); i++) {
		size_t n = strlen(xns[i].name);

		if (strncmp(name, xns[i].name, n) == 0 && name[n] == '.')
			return xns[i].bit;
	}
	return 0;
}

static json_t *ref_json(const struct ref *r)
{
	/* A NULL from hexstr() makes the pack fail: "o" steals references
	 * even then, so nothing leaks. */
	return json_pack("{s:o,s:o,s:I,s:I,s:I}", "id", hexstr(r->id, ID_LEN),
			 "pack", hexstr(r->pack, PACK_ID_LEN), "offset",
			 (json_int_t)r->off, "length", (json_int_t)r->len,
			 "raw_length", (json_int_t)r->raw);
}

struct dumpctx {
	struct buf *out;
	int err;
};

static int dump_cb(const char *p, size_t n, void *ctx)
{
	struct dumpctx *d = ctx;

	if (!d->err)
		d->err = buf_add(d->out, p, n);
	return d->err ? -1 : 0;
}

/* Appends root's text to out (as it was on failure).  Not json_dumps():
 * jansson ignores a failed write of an object's key, and an allocation
 * failing in its string buffer there would drop the key from the text
 * (from what the MAC covers, or from the manifest) without an error.  Our
 * own sink remembers the failure. */
static int dump_json(json_t *root, size_t flags, struct buf *out)
{
	struct dumpctx d = {out, 0};
	size_t start = out->len;

	if (json_dump_callback(root, dump_cb, &d, flags) || d.err) {
		out->len = start;
		return snap_seterr(SNAP_ENOMEM, "out of memory dumping JSON");
	}
	return 0;
}

static int mac_of(json_t *root, const struct keys *k, uint8_t mac[32])
{
	struct buf s = BUF_INIT;
	int rc = dump_json(root, JSON_COMPACT | JSON_SORT_KEYS, &s);

	if (rc == 0)
		hmac_sha256(k->mac, sizeof(k->mac), s.p, s.len, mac);
	buf_free(&s);
	return rc;
}

/* Why jansson refused (je: of a json_pack_ex, or NULL after a failed
 * append or set).  Only a name that is not UTF-8 is the input's fault;
 * anything else is an allocation that failed, here or in an inner pack
 * whose NULL the outer one refused. */
static int json_failed(const json_error_t *je)
{
	if (je && json_error_code(je) == json_error_invalid_utf8)
		return snap_seterr(SNAP_EINVAL, "encoding manifest: %s",
				   je->text);
	return snap_seterr(SNAP_ENOMEM, "out of memory encoding manifest");
}

/* A group's fields only some writers have: absent means "not recorded".
 * Non-zero when one could not be set. */
static int group_extras(json_t *o, const struct mgroup *g)
{
	char ino[24];

	if (g->hardlink_next &&
	    json_object_set_new(o, "hardlink_next",
				json_integer((json_int_t)g->hardlink_next)))
		return -1;
	/* The inode's bits as a string: bit 63 is set. */
	snprintf(ino, sizeof(ino), "%llu", (unsigned long long)g->ino);
	if (g->ino && json_object_set_new(o, "ino", json_string(ino)))
		return -1;
	if (g->nxattrs) {
		json_t *xs = json_array();

		if (!xs || json_object_set_new(o, "xattrs", xs))
			return -1;
		for (size_t i = 0; i < g->nxattrs; i++)
			if (json_array_append_new(
				    xs, json_pack("{s:s,s:o}", "name",
						  g->xattrs[i].name, "value",
						  hexstr(g->xattrs[i].val,
							 g->xattrs[i].len))))
				return -1;
	}
	return 0;
}

static int groups_json(const struct manifest *m, json_t *groups)
{
	for (size_t i = 0; i < m->ngroups; i++) {
		const struct mgroup *g = &m->groups[i];
		json_error_t je;
		json_t *o;

		o = json_pack_ex(&je, 0, "{s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:I}",
				 "group_id", g->name, "root",
				 ref_json(&g->root), "files",
				 (json_int_t)g->files, "bytes",
				 (json_int_t)g->bytes, "mode",
				 (json_int_t)g->mode, "uid", (json_int_t)g->uid,
				 "gid", (json_int_t)g->gid, "mtime_ns",
				 (json_int_t)g->mtime_ns);
		if (!o)
			return json_failed(&je);
		if (group_extras(o, g)) {
			json_decref(o);
			return json_failed(NULL);
		}
		if (json_array_append_new(groups, o))
			return json_failed(NULL);
	}
	return 0;
}

int manifest_encode(const struct manifest *m, const struct keys *k,
		    struct buf *out)
{
	json_t *root, *packs, *ns = NULL;
	char created[40], since[40];
	json_error_t je;
	uint8_t mac[32];
	size_t start = out->len;
	int rc = 0;

	format_time(m->created, created);
	format_time(m->since, since);
	/* Every jansson call is checked: a group or pack dropped by a failed
	 * allocation would still make a valid-looking manifest, and this one
	 * is the commit point of the backup. */
	root = json_pack_ex(
		&je, 0,
		"{s:i,s:s,s:I,s:s,s:s,s:I,s:s,s:I,s:s,s:b,s:[],s:[],s:I,s:s,"
		"s:s,s:{s:I,s:I,s:I,s:I,s:i}}",
		"format_version", MANIFEST_VERSION, "backup_id", m->series,
		"backup_num", (json_int_t)m->num, "type",
		m->full ? "full" : "incremental", "label", m->label,
		"created_ns", (json_int_t)m->created, "created", created,
		"since_ns", (json_int_t)m->since, "since",
		m->since ? since : "", "encrypted", m->encrypted, "groups",
		"packs", "parent", (json_int_t)m->parent, "status", m->status,
		"snapfs_version", PACKAGE_VERSION, "stats", "bytes_new",
		(json_int_t)m->bytes_new, "bytes_reused",
		(json_int_t)m->bytes_reused, "files_new",
		(json_int_t)m->files_new, "files_reused",
		(json_int_t)m->files_reused, "elapsed_ms",
		(int)(m->elapsed * 1000));
	if (!root)
		return json_failed(&je);
	rc = groups_json(m, json_object_get(root, "groups"));
	if (rc)
		goto out;
	packs = json_object_get(root, "packs");
	for (size_t i = 0; i < m->npacks; i++)
		if (json_array_append_new(packs,
					  hexstr(m->packs[i], PACK_ID_LEN))) {
			rc = json_failed(NULL);
			goto out;
		}
	/* Fields only some writers have: absent means "not recorded". */
	if ((m->ino_next &&
	     json_object_set_new(root, "ino_next",
				 json_integer((json_int_t)m->ino_next))) ||
	    (m->stage_token[0] &&
	     json_object_set_new(root, "stage_token",
				 json_string(m->stage_token))) ||
	    (m->index_token[0] &&
	     json_object_set_new(root, "index_token",
				 json_string(m->index_token)))) {
		rc = json_failed(NULL);
		goto out;
	}
	if (m->excludes) {
		json_t *x = json_loads(m->excludes, 0, NULL);

		if (!json_is_object(x) ||
		    json_object_set_new(root, "excludes", x)) {
			if (!json_is_object(x))
				json_decref(x);
			rc = json_failed(NULL);
			goto out;
		}
	}
	if (m->xattr_ns >= 0) {
		ns = json_array();
		for (size_t i = 0; ns && i < sizeof(xns) / sizeof(xns[0]); i++)
			if ((m->xattr_ns & xns[i].bit) &&
			    json_array_append_new(ns, json_string(xns[i].name))) {
				json_decref(ns);
				ns = NULL;
			}
		/* set_new takes ns (and drops it on failure), NULL included */
		if (json_object_set_new(root, "xattr_namespaces", ns)) {
			rc = json_failed(NULL);
			goto out;
		}
	}
	if (k->encrypted) {
		rc = mac_of(root, k, mac);
		if (rc)
			goto out;
		if (json_object_set_new(root, "mac", hexstr(mac, sizeof(mac)))) {
			rc = json_failed(NULL);
			goto out;
		}
	}
	rc = dump_json(root, JSON_INDENT(2) | JSON_SORT_KEYS, out);
	if (rc == 0 && buf_addc(out, '\n')) {
		out->len = start;
		rc = SNAP_ENOMEM;
	}
	if (rc)
		rc = json_failed(NULL);
out:
	json_decref(root);
	return rc;
}

static int hex_field(json_t *o, const char *name, uint8_t *out, size_t n)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s && strlen(s) == 2 * n && hex_decode(s, out, n) == 0 ? 0 : -1;
}

static int u32_field(json_t *o, const char *name, uint32_t *out)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > UINT32_MAX)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int u64_field(json_t *o, const char *name, uint64_t *out)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int parse_ref(json_t *o, struct ref *r)
{
	if (!json_is_object(o) || hex_field(o, "id", r->id, ID_LEN) ||
	    hex_field(o, "pack", r->pack, PACK_ID_LEN) ||
	    u32_field(o, "offset", &r->off) ||
	    u32_field(o, "length", &r->len) ||
	    u32_field(o, "raw_length", &r->raw))
		return -1;
	return 0;
}

#define BAD(...)                                                               \
	do {                                                                   \
		rc = snap_seterr(SNAP_ECORRUPT, __VA_ARGS__);                  \
		goto out;                                                      \
	} while (0)
/* Not BAD: a reader (the mount's cache) drops a copy that is corrupt. */
#define NOMEM(key)                                                             \
	do {                                                                   \
		rc = snap_seterr(SNAP_ENOMEM, "%s: out of memory", key);       \
		goto out;                                                      \
	} while (0)

/* A group's attributes: [{name, value (hex)}], names unique. */
static int parse_xattrs(json_t *v, struct mgroup *g)
{
	if (!json_is_array(v) || json_array_size(v) > 4096)
		return -1;
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *x = json_array_get(v, i);
		const char *name = json_string_value(json_object_get(x, "name"));
		const char *hex = json_string_value(json_object_get(x, "value"));
		size_t n = hex ? strlen(hex) : 1;
		uint8_t *val;
		int bad;

		if (!name || !*name || strlen(name) > 255 || !hex || n % 2 ||
		    n / 2 > 65536)
			return -1;
		for (size_t j = 0; j < g->nxattrs; j++)
			if (strcmp(g->xattrs[j].name, name) == 0)
				return -1;
		val = malloc(n / 2 + 1);
		if (!val)
			return -1;
		bad = hex_decode(hex, val, n / 2) ||
		      xattr_append(&g->xattrs, &g->nxattrs, name, val, n / 2);
		free(val);
		if (bad)
			return -1;
	}
	return 0;
}

int manifest_parse(const char *text, size_t n, const struct keys *k,
		   const char *series, uint32_t num, struct manifest *m)
{
	json_t *root, *v, *groups, *packs, *stats;
	json_error_t jerr;
	char key[160];
	const char *s;
	uint8_t mac[32], want[32];
	char lbl[LABEL_MAX + 1];
	int rc = 0;

	memset(m, 0, sizeof(*m));
	manifest_key(series, num, key, sizeof(key));
	root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root && json_error_code(&jerr) == json_error_out_of_memory)
		return snap_seterr(SNAP_ENOMEM, "%s: out of memory", key);
	if (!root)
		return snap_seterr(SNAP_ECORRUPT, "%s: not valid JSON: %s", key,
				   jerr.text);
	if (!json_is_object(root))
		BAD("%s: not a JSON object", key);
	v = json_object_get(root, "format_version");
	if (!json_is_integer(v))
		BAD("%s: no format_version", key);
	if (json_integer_value(v) != MANIFEST_VERSION) {
		rc = snap_seterr(SNAP_EUNSUPP,
				 "%s: format version %lld is not supported by "
				 "this snapfs (%d)",
				 key, (long long)json_integer_value(v),
				 MANIFEST_VERSION);
		goto out;
	}
	if (k->encrypted) {
		/* Authenticate before trusting any field. */
		if (hex_field(root, "mac", mac, sizeof(mac)))
			BAD("%s: no MAC in an encrypted repository", key);
		json_object_del(root, "mac");
		rc = mac_of(root, k, want);
		if (rc)
			goto out;
		if (!ct_equal(mac, want, sizeof(mac)))
			BAD("%s: MAC mismatch (tampered manifest or wrong key)",
			    key);
	}
	s = json_string_value(json_object_get(root, "backup_id"));
	if (!s || strlen(s) >= SERIES_MAX || series_check(s))
		BAD("%s: bad backup_id", key);
	snprintf(m->series, sizeof(m->series), "%s", s);
	if (strcmp(m->series, series) != 0)
		BAD("%s: backup_id '%s' does not match its location", key, s);
	if (u32_field(root, "backup_num", &m->num) || m->num == 0 ||
	    (num && m->num != num))
		BAD("%s: bad backup_num", key);
	s = json_string_value(json_object_get(root, "type"));
	if (!s || (strcmp(s, "full") && strcmp(s, "incremental")))
		BAD("%s: bad type", key);
	m->full = strcmp(s, "full") == 0;
	if (m->full != (m->num == 1))
		BAD("%s: type '%s' does not fit backup_num %u", key, s, m->num);
	s = json_string_value(json_object_get(root, "label"));
	if (!s || label_check(s))
		BAD("%s: bad label", key);
	snprintf(m->label, sizeof(m->label), "%s", s);
	series_label(m->series, lbl);
	if (strcmp(m->label, lbl) != 0)
		BAD("%s: label does not match backup_id", key);
	v = json_object_get(root, "created_ns");
	if (!json_is_integer(v))
		BAD("%s: bad created_ns", key);
	m->created = json_integer_value(v);
	v = json_object_get(root, "since_ns");
	if (!json_is_integer(v))
		BAD("%s: bad since_ns", key);
	m->since = json_integer_value(v);
	v = json_object_get(root, "encrypted");
	if (!json_is_boolean(v))
		BAD("%s: bad encrypted flag", key);
	m->encrypted = json_is_true(v);
	if (m->encrypted != k->encrypted)
		BAD("%s: an %s backup in an %s repository", key,
		    m->encrypted ? "encrypted" : "unencrypted",
		    k->encrypted ? "encrypted" : "unencrypted");
	if (u32_field(root, "parent", &m->parent) ||
	    (m->full ? m->parent != 0 : (m->parent == 0 || m->parent >= m->num)))
		BAD("%s: bad parent", key);
	s = json_string_value(json_object_get(root, "status"));
	if (!s || strlen(s) >= sizeof(m->status))
		BAD("%s: bad status", key);
	snprintf(m->status, sizeof(m->status), "%s", s);
	s = json_string_value(json_object_get(root, "snapfs_version"));
	snprintf(m->version, sizeof(m->version), "%s", s ? s : "");
	v = json_object_get(root, "xattr_namespaces");
	m->xattr_ns = v ? 0 : -1;
	if (v && !json_is_array(v))
		BAD("%s: bad xattr_namespaces", key);
	for (size_t i = 0; v && i < json_array_size(v); i++) {
		char name[32];

		s = json_string_value(json_array_get(v, i));
		if (!s || strlen(s) > sizeof(name) - 2)
			BAD("%s: bad xattr_namespaces", key);
		/* A namespace this version does not know is kept out of
		 * the bits, which only ever claim absence for known ones. */
		snprintf(name, sizeof(name), "%s.", s);
		m->xattr_ns |= xattr_ns_of(name);
	}

	if (json_object_get(root, "ino_next") &&
	    u64_field(root, "ino_next", &m->ino_next))
		BAD("%s: bad ino_next", key);
	s = json_string_value(json_object_get(root, "stage_token"));
	if (s && strlen(s) >= sizeof(m->stage_token))
		BAD("%s: bad stage_token", key);
	snprintf(m->stage_token, sizeof(m->stage_token), "%s", s ? s : "");
	s = json_string_value(json_object_get(root, "index_token"));
	if (s && strlen(s) >= sizeof(m->index_token))
		BAD("%s: bad index_token", key);
	snprintf(m->index_token, sizeof(m->index_token), "%s", s ? s : "");
	v = json_object_get(root, "excludes");
	if (v && !json_is_object(v))
		BAD("%s: bad excludes", key);
	if (v && !(m->excludes = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS))) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}

	groups = json_object_get(root, "groups");
	if (!json_is_array(groups))
		BAD("%s: bad groups", key);
	m->ngroups = json_array_size(groups);
	m->groups = calloc(m->ngroups ? m->ngroups : 1, sizeof(*m->groups));
	if (!m->groups)
		NOMEM(key);
	for (size_t i = 0; i < m->ngroups; i++) {
		json_t *g = json_array_get(groups, i);
		struct mgroup *mg = &m->groups[i];

		s = json_string_value(json_object_get(g, "group_id"));
		if (!s || group_check(s))
			BAD("%s: bad group_id", key);
		mg->name = strdup(s);
		if (!mg->name)
			NOMEM(key);
		if (parse_ref(json_object_get(g, "root"), &mg->root) ||
		    u64_field(g, "files", &mg->files) ||
		    u64_field(g, "bytes", &mg->bytes) ||
		    u32_field(g, "mode", &mg->mode) ||
		    u32_field(g, "uid", &mg->uid) ||
		    u32_field(g, "gid", &mg->gid) ||
		    !json_is_integer(json_object_get(g, "mtime_ns")))
			BAD("%s: bad group '%s'", key, s);
		mg->mtime_ns = json_integer_value(json_object_get(g, "mtime_ns"));
		if (json_object_get(g, "hardlink_next") &&
		    u64_field(g, "hardlink_next", &mg->hardlink_next))
			BAD("%s: bad group '%s'", key, s);
		if (json_object_get(g, "ino")) {
			const char *ino = json_string_value(json_object_get(g, "ino"));
			char *end;

			errno = 0;
			mg->ino = ino ? strtoull(ino, &end, 10) : 0;
			if (!ino || !*ino || *end || errno)
				BAD("%s: bad group '%s'", key, s);
		}
		v = json_object_get(g, "xattrs");
		if (v && parse_xattrs(v, mg))
			BAD("%s: bad attributes of group '%s'", key, s);
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->groups[j].name, mg->name) == 0)
				BAD("%s: duplicate group '%s'", key, s);
	}
	packs = json_object_get(root, "packs");
	if (!json_is_array(packs))
		BAD("%s: bad packs", key);
	m->npacks = json_array_size(packs);
	m->packs = calloc(m->npacks ? m->npacks : 1, PACK_ID_LEN);
	if (!m->packs)
		NOMEM(key);
	for (size_t i = 0; i < m->npacks; i++) {
		s = json_string_value(json_array_get(packs, i));
		if (!s || strlen(s) != 2 * PACK_ID_LEN ||
		    hex_decode(s, m->packs[i], PACK_ID_LEN))
			BAD("%s: bad pack id", key);
	}
	stats = json_object_get(root, "stats");
	if (json_is_object(stats)) {
		u64_field(stats, "bytes_new", &m->bytes_new);
		u64_field(stats, "bytes_reused", &m->bytes_reused);
		u64_field(stats, "files_new", &m->files_new);
		u64_field(stats, "files_reused", &m->files_reused);
		v = json_object_get(stats, "elapsed_ms");
		if (json_is_integer(v))
			m->elapsed = json_integer_value(v) / 1000.0;
	}
out:
	json_decref(root);
	if (rc)
		manifest_free(m);
	return rc;
}

void mgroup_free(struct mgroup *g)
{
	free(g->name);
	for (size_t i = 0; i < g->nxattrs; i++) {
		free(g->xattrs[i].name);
		free(g->xattrs[i].val);
	}
	free(g->xattrs);
	g->name = NULL;
	g->xattrs = NULL;
	g->nxattrs = 0;
}

int mgroup_copy(struct mgroup *dst, const struct mgroup *src)
{
	*dst = *src;
	dst->xattrs = NULL;
	dst->nxattrs = 0;
	dst->name = strdup(src->name);
	if (!dst->name)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	for (size_t i = 0; i < src->nxattrs; i++)
		if (xattr_append(&dst->xattrs, &dst->nxattrs, src->xattrs[i].name,
				 src->xattrs[i].val, src->xattrs[i].len)) {
			mgroup_free(dst);
			return SNAP_ENOMEM;
		}
	return 0;
}

void manifest_free(struct manifest *m)
{
	for (size_t i = 0; m->groups && i < m->ngroups; i++)
		mgroup_free(&m->groups[i]);
	free(m->groups);
	free(m->packs);
	free(m->excludes);
	m->groups = NULL;
	m->packs = NULL;
	m->excludes = NULL;
	m->ngroups = m->npacks = 0;
}
