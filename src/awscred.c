/* awscred.c - the AWS credential chain; see awscred.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "awscred.h"
#include "err.h"
#include "http.h"
#include "runcmd.h"
#include "sigv4.h"

#define TOKEN_MAX (64u << 10) /* a web identity token or process output */
#define IMDS_DEFAULT "http://169.254.169.254"
#define ECS_HOST "http://169.254.170.2"

/* One temporary-credential source; which fields are set says which. */
struct src {
	struct http *http;
	char *role_arn, *token_file, *session_name, *sts_url; /* web identity */
	char *command;                                        /* process */
	char *url, *auth, *auth_file;                         /* container */
	char *imds;                                           /* IMDSv2 base */
	char what[512];
};

static void src_free(void *p)
{
	struct src *a = p;

	if (!a)
		return;
	http_free(a->http);
	free(a->role_arn);
	free(a->token_file);
	free(a->session_name);
	free(a->sts_url);
	free(a->command);
	free(a->url);
	free_secret(a->auth);
	free(a->auth_file);
	free(a->imds);
	free(a);
}

static int set(char **dst, const char *v)
{
	if (!v)
		return 0;
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : snap_seterr(SNAP_ENOMEM, "out of memory");
}

static int http_src(struct src *a, int imds)
{
	struct http_cfg hc = {0};

	hc.ca_file = getenv_set("AWS_CA_BUNDLE");
	/* A host without the metadata service must not wait long for it:
	 * the SDKs give it a second and one retry. */
	hc.retries = imds ? 1 : 2;
	hc.connect_timeout = imds ? 1 : 5;
	hc.stall_timeout = imds ? 5 : 30;
	return http_new(&hc, &a->http);
}

/* A non-2xx answer of a credential endpoint as an error. */
static int endpoint_error(const char *what, const struct http_resp *r)
{
	char code[128], msg[512];

	xml_error(&r->body, code, sizeof(code), msg, sizeof(msg));
	if (!code[0] && r->body.len && r->body.p[0] == '{') {
		json_t *j = json_loadb((const char *)r->body.p, r->body.len, 0,
				       NULL);
		const char *c = j ? json_string_value(json_object_get(j, "Code"))
				  : NULL;
		const char *m = j ? json_string_value(json_object_get(j,
							"Message"))
				  : NULL;

		snprintf(code, sizeof(code), "%s", c ? c : "");
		snprintf(msg, sizeof(msg), "%s", m ? m : "");
		json_decref(j);
	}
	return snap_seterr(r->status == 401 || r->status == 403 ||
					   r->status == 400
				   ? SNAP_EACCES
				   : SNAP_ENET,
			   "%s: HTTP %ld%s%s%s%s", what, r->status,
			   code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
}

/* The JSON of credential_process (SessionToken), the container endpoint
 * and IMDS (Token). */
static int json_creds(const uint8_t *p, size_t n, const char *what,
		      int process, struct cred *out)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)p, n, 0, &jerr), *v;
	const char *id, *sec, *tok, *exp, *code;
	int rc = 0;

	if (!json_is_object(j)) {
		/* jansson's own text quotes the token it stopped at, which
		 * may be the secret: only where. */
		rc = snap_seterr(SNAP_EACCES, "%s: not a JSON object (%s at "
				 "byte %d)", what, j ? "other JSON" : "bad JSON",
				 j ? 0 : jerr.position);
		goto out;
	}
	v = json_object_get(j, "Version");
	if (process && json_integer_value(v) != 1) {
		rc = snap_seterr(SNAP_EACCES, "%s: \"Version\": 1 expected",
				 what);
		goto out;
	}
	code = json_string_value(json_object_get(j, "Code"));
	if (code && strcmp(code, "Success")) {
		rc = snap_seterr(SNAP_EACCES, "%s: %s", what, code);
		goto out;
	}
	id = json_string_value(json_object_get(j, "AccessKeyId"));
	sec = json_string_value(json_object_get(j, "SecretAccessKey"));
	tok = json_string_value(json_object_get(j, "SessionToken"));
	if (!tok)
		tok = json_string_value(json_object_get(j, "Token"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	if (!id || !*id || !sec || !*sec) {
		rc = snap_seterr(SNAP_EACCES, "%s: no AccessKeyId and "
				 "SecretAccessKey in its answer", what);
		goto out;
	}
	if (exp && (out->expires = cred_parse_time(exp)) == -1) {
		rc = snap_seterr(SNAP_EACCES, "%s: bad Expiration '%s'", what,
				 exp);
		goto out;
	}
	out->id = strdup(id);
	out->secret = strdup(sec);
	out->token = tok && *tok ? strdup(tok) : NULL;
	if (!out->id || !out->secret || (tok && *tok && !out->token))
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
out:
	json_decref(j);
	if (rc)
		cred_wipe(out);
	return rc;
}

/* One request of a source; body (2xx) into *out. */
static int src_request(struct src *a, const char *method, const char *url,
		       const char *const *hdrs, const char *body,
		       struct buf *out)
{
	struct http_resp r = {0};
	struct http_req req = {
		.method = method,
		.url = url,
		.what = a->what,
		.headers = hdrs,
		.body = (const uint8_t *)body,
		.body_len = body ? strlen(body) : 0,
		.idempotent = 1,
		.out = out,
	};
	int rc = http_exec(a->http, &req, &r);

	if (rc == 0 && (r.status < 200 || r.status > 299))
		rc = endpoint_error(a->what, &r);
	http_resp_free(&r);
	return rc;
}

struct sts_creds {
	struct cred *c;
	char exp[64];
	int nomem;
};

static void on_sts(const char *path, const char *text, void *ctx)
{
	struct sts_creds *s = ctx;
	const char *leaf = strrchr(path, '/');
	char **dst = NULL;

	if (!strstr(path, "/Credentials/") || !leaf)
		return;
	leaf++;
	if (!strcmp(leaf, "AccessKeyId"))
		dst = &s->c->id;
	else if (!strcmp(leaf, "SecretAccessKey"))
		dst = &s->c->secret;
	else if (!strcmp(leaf, "SessionToken"))
		dst = &s->c->token;
	else if (!strcmp(leaf, "Expiration"))
		snprintf(s->exp, sizeof(s->exp), "%s", text);
	if (dst && !*dst && !(*dst = strdup(text)))
		s->nomem = 1;
}

static int webid_fetch(void *ctx, struct cred *out)
{
	struct src *a = ctx;
	struct buf form = BUF_INIT, resp = BUF_INIT;
	struct sts_creds sc = {out, "", 0};
	uint8_t *tok = malloc(TOKEN_MAX);
	int rc;
	const char *hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
		"Accept: application/xml", NULL};

	if (!tok)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	/* The kubelet rotates the projected token: read it every time. */
	rc = cred_read_file(a->what, a->token_file, tok, TOKEN_MAX);
	rc = rc ? rc
		: buf_addstr(&form, "Action=AssumeRoleWithWebIdentity&"
				    "Version=2011-06-15&RoleArn=");
	rc = rc ? rc : uri_encode(&form, a->role_arn, 0);
	rc = rc ? rc : buf_addstr(&form, "&RoleSessionName=");
	rc = rc ? rc : uri_encode(&form, a->session_name, 0);
	rc = rc ? rc : buf_addstr(&form, "&WebIdentityToken=");
	rc = rc ? rc : uri_encode(&form, (char *)tok, 0);
	rc = rc ? rc : buf_addc(&form, 0);
	rc = rc ? rc
		: src_request(a, "POST", a->sts_url, hdrs, (char *)form.p,
			      &resp);
	rc = rc ? rc : xml_walk(resp.p, resp.len, on_sts, &sc);
	if (rc == 0 && sc.nomem)
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	if (rc == 0 && (!out->id || !out->secret || !out->token ||
			(out->expires = cred_parse_time(sc.exp)) == -1))
		rc = snap_seterr(SNAP_EACCES, "%s: the answer holds no "
				 "Credentials", a->what);
	OPENSSL_cleanse(tok, TOKEN_MAX);
	free(tok);
	buf_free_secret(&form);
	buf_free_secret(&resp);
	if (rc)
		cred_wipe(out);
	return rc;
}

static int process_fetch(void *ctx, struct cred *out)
{
	struct src *a = ctx;
	uint8_t *buf = malloc(TOKEN_MAX);
	size_t n = 0;
	int rc;

	if (!buf)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	rc = runcmd_output(a->what, a->command, SNAP_EACCES, buf, TOKEN_MAX,
			   &n);
	if (rc == 0 && n == TOKEN_MAX)
		rc = snap_seterr(SNAP_EACCES, "%s: output too long", a->what);
	rc = rc ? rc : json_creds(buf, n, a->what, 1, out);
	OPENSSL_cleanse(buf, TOKEN_MAX);
	free(buf);
	return rc;
}

static int container_fetch(void *ctx, struct cred *out)
{
	struct src *a = ctx;
	struct buf resp = BUF_INIT, hdr = BUF_INIT;
	uint8_t *tok = NULL;
	const char *hdrs[2] = {NULL, NULL};
	int rc = 0;

	if (a->auth_file || a->auth) {
		if (a->auth_file) {
			tok = malloc(TOKEN_MAX);
			rc = tok ? cred_read_file(a->what, a->auth_file, tok,
					      TOKEN_MAX)
				 : snap_seterr(SNAP_ENOMEM, "out of memory");
		}
		rc = rc ? rc : buf_addstr(&hdr, "Authorization: ");
		rc = rc ? rc
			: buf_addstr(&hdr, tok ? (char *)tok : a->auth);
		rc = rc ? rc : buf_addc(&hdr, 0);
		/* A line break would smuggle headers in. */
		if (rc == 0 && strpbrk((char *)hdr.p, "\r\n"))
			rc = snap_seterr(SNAP_EACCES, "%s: the authorization "
					 "token holds a line break", a->what);
		hdrs[0] = (char *)hdr.p;
	}
	rc = rc ? rc : src_request(a, "GET", a->url, hdrs, NULL, &resp);
	rc = rc ? rc : json_creds(resp.p, resp.len, a->what, 0, out);
	if (tok) {
		OPENSSL_cleanse(tok, TOKEN_MAX);
		free(tok);
	}
	buf_free_secret(&hdr);
	buf_free_secret(&resp);
	return rc;
}

static int imds_fetch(void *ctx, struct cred *out)
{
	struct src *a = ctx;
	struct buf tok = BUF_INIT, role = BUF_INIT, resp = BUF_INIT;
	struct buf url = BUF_INIT, th = BUF_INIT;
	const char *ttl[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600",
			     NULL};
	const char *hdrs[2] = {NULL, NULL};
	size_t n;
	int rc;

	rc = buf_addstr(&url, a->imds);
	rc = rc ? rc : buf_addstr(&url, "/latest/api/token");
	rc = rc ? rc : buf_addc(&url, 0);
	rc = rc ? rc : src_request(a, "PUT", (char *)url.p, ttl, "", &tok);
	rc = rc ? rc : buf_addstr(&th, "X-aws-ec2-metadata-token: ");
	rc = rc ? rc : buf_add(&th, tok.p, tok.len);
	rc = rc ? rc : buf_addc(&th, 0);
	hdrs[0] = (char *)th.p;
	url.len = 0;
	rc = rc ? rc : buf_addstr(&url, a->imds);
	rc = rc ? rc
		: buf_addstr(&url, "/latest/meta-data/iam/security-credentials/");
	rc = rc ? rc : buf_addc(&url, 0);
	rc = rc ? rc : src_request(a, "GET", (char *)url.p, hdrs, NULL, &role);
	if (rc == 0) {
		/* One role per instance profile; the first line names it. */
		for (n = 0; n < role.len && role.p[n] != '\n' &&
			    role.p[n] != '\r';)
			n++;
		role.len = n;
		if (n == 0 || memchr(role.p, '/', n))
			rc = snap_seterr(SNAP_EACCES, "%s: no IAM role attached "
					 "to this instance", a->what);
	}
	if (rc == 0)
		url.len--; /* the NUL */
	rc = rc ? rc : buf_add(&url, role.p, role.len);
	rc = rc ? rc : buf_addc(&url, 0);
	rc = rc ? rc : src_request(a, "GET", (char *)url.p, hdrs, NULL, &resp);
	rc = rc ? rc : json_creds(resp.p, resp.len, a->what, 0, out);
	buf_free_secret(&tok);
	buf_free_secret(&th);
	buf_free_secret(&resp);
	buf_free(&role);
	buf_free(&url);
	return rc;
}

/* A profile's settings, from the credentials file, then the config file
 * (first value wins). */
struct profile {
	char *key_id, *secret, *token;
	char *process, *role_arn, *webid_file, *session_name, *source;
	int found;
	char files[2][1024];
};

static void profile_free(struct profile *p)
{
	free(p->key_id);
	free_secret(p->secret);
	free_secret(p->token);
	free(p->process);
	free(p->role_arn);
	free(p->webid_file);
	free(p->session_name);
	free(p->source);
}

/* Strips spaces around s in place. */
static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = 0;
	return s;
}

static int ini_read(const char *file, const char *const want[2],
		    struct profile *p)
{
	static const char *const names[] = {
		"aws_access_key_id", "aws_secret_access_key",
		"aws_session_token", "credential_process", "role_arn",
		"web_identity_token_file", "role_session_name",
		"source_profile"};
	char **dst[] = {&p->key_id, &p->secret, &p->token, &p->process,
			&p->role_arn, &p->webid_file, &p->session_name,
			&p->source};
	char line[4096];
	int in = 0, rc = 0;
	FILE *f = fopen(file, "re");

	if (!f)
		return 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *k = trim(line), *v;

		if (*k == '[') {
			in = !strcmp(k, want[0]) || (want[1] && !strcmp(k, want[1]));
			p->found |= in;
			continue;
		}
		if (!in || *k == '#' || *k == ';' || !(v = strchr(k, '=')))
			continue;
		*v++ = 0;
		k = trim(k);
		v = trim(v);
		for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
			if (!strcmp(k, names[i]) && !*dst[i])
				rc = set(dst[i], v);
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	return rc;
}

static int profile_load(const char *name, struct profile *p)
{
	const char *home = getenv("HOME");
	const char *cf = getenv_set("AWS_SHARED_CREDENTIALS_FILE");
	const char *cfg = getenv_set("AWS_CONFIG_FILE");
	char want[2][300];
	const char *w[2];
	int rc;

	snprintf(p->files[0], sizeof(p->files[0]), "%s",
		 cf ? cf : home ? home : "~");
	if (!cf)
		strncat(p->files[0], "/.aws/credentials",
			sizeof(p->files[0]) - strlen(p->files[0]) - 1);
	snprintf(p->files[1], sizeof(p->files[1]), "%s",
		 cfg ? cfg : home ? home : "~");
	if (!cfg)
		strncat(p->files[1], "/.aws/config",
			sizeof(p->files[1]) - strlen(p->files[1]) - 1);
	snprintf(want[0], sizeof(want[0]), "[%s]", name);
	w[0] = want[0];
	w[1] = NULL;
	rc = ini_read(p->files[0], w, p);
	/* The config file calls it [profile NAME]; [default] stays. */
	snprintf(want[1], sizeof(want[1]), "[profile %s]", name);
	w[0] = want[1];
	w[1] = strcmp(name, "default") ? NULL : want[0];
	return rc ? rc : ini_read(p->files[1], w, p);
}

static int sts_src(struct src *a, const char *region, const char *role,
		   const char *file, const char *session)
{
	char url[300], name[64];
	const char *e = getenv_set("AWS_ENDPOINT_URL_STS");

	if (!e) {
		snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com%s",
			 region, strncmp(region, "cn-", 3) ? "" : ".cn");
		e = url;
	}
	snprintf(name, sizeof(name), "snapfs-%ld", (long)time(NULL));
	snprintf(a->what, sizeof(a->what),
		 "STS AssumeRoleWithWebIdentity of %s at %s", role, e);
	if (set(&a->role_arn, role) || set(&a->token_file, file) ||
	    set(&a->session_name, session ? session : name) ||
	    set(&a->sts_url, e))
		return SNAP_ENOMEM;
	return http_src(a, 0);
}

/* Plain HTTP only to the container agents' link-local addresses or the
 * loopback: anywhere else the authorization token would travel in clear.
 * The host is compared whole ("http://127.0.0.1.evil.example" is not the
 * loopback, nor is "http://localhost@evil.example"). */
static int container_host_ok(const char *url)
{
	static const char *const ok[] = {
		"localhost", "[::1]", "169.254.170.2", "169.254.170.23",
		"[fd00:ec2::23]"};
	const char *h, *end;
	size_t n;

	if (!strncmp(url, "https://", 8))
		return 1;
	if (strncmp(url, "http://", 7))
		return 0;
	h = url + 7;
	n = strcspn(h, "/?#");
	if (memchr(h, '@', n))
		return 0;
	/* host[:port]; a bracketed IPv6 address keeps its colons */
	end = h[0] == '[' ? memchr(h, ']', n) : NULL;
	n = end ? (size_t)(end + 1 - h) : strcspn(h, ":/?#");
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		if (strlen(ok[i]) == n && !strncmp(h, ok[i], n))
			return 1;
	/* 127.0.0.0/8, dotted quad */
	if (n > 4 && !strncmp(h, "127.", 4)) {
		int dots = 0;

		for (size_t i = 0; i < n; i++) {
			if (h[i] == '.')
				dots++;
			else if (h[i] < '0' || h[i] > '9')
				return 0;
		}
		return dots == 3;
	}
	return 0;
}

static int container_src(struct src *a)
{
	const char *full = getenv_set("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *rel = getenv_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	char url[2048];

	if (rel)
		snprintf(url, sizeof(url), "%s%s", ECS_HOST, rel);
	else
		snprintf(url, sizeof(url), "%s", full);
	if (!rel && !container_host_ok(url))
		return snap_seterr(SNAP_EINVAL, "AWS_CONTAINER_CREDENTIALS_"
				   "FULL_URI %s: plain http is only allowed to "
				   "the loopback or the container agent",
				   url);
	snprintf(a->what, sizeof(a->what), "container credentials at %.400s",
		 url);
	if (set(&a->url, url) ||
	    set(&a->auth_file, getenv_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) ||
	    set(&a->auth, getenv_set("AWS_CONTAINER_AUTHORIZATION_TOKEN")))
		return SNAP_ENOMEM;
	return http_src(a, 0);
}

static char *dup_env(const char *a, const char *b)
{
	const char *v = getenv_set(a);

	if (!v && b)
		v = getenv_set(b);
	return v ? strdup(v) : NULL;
}

/* Static keys from the environment; 1 when found (*out set). */
static int from_env(const struct awscred_cfg *cfg, struct cred_cache **out)
{
	char *id = dup_env("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY");
	char *sec = dup_env("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY");
	char *tok = id && sec ? dup_env("AWS_SESSION_TOKEN", NULL) : NULL;
	const char *what = "the environment (AWS_ACCESS_KEY_ID)";
	int rc;

	if (cfg->minio && (!id || !sec)) {
		free(id);
		free_secret(sec);
		id = dup_env("MINIO_ACCESS_KEY", "MINIO_ROOT_USER");
		sec = dup_env("MINIO_SECRET_KEY", "MINIO_ROOT_PASSWORD");
		what = "the environment (MINIO_ACCESS_KEY)";
	}
	rc = id && sec ? cred_cache_static(id, sec, tok, what, out) : 0;
	free(id);
	free_secret(sec);
	free_secret(tok);
	return rc ? rc : *out != NULL;
}

/* Makes *out the cache over source *ap (handing it over: *ap = NULL). */
static int adopt(cred_fetch_fn fetch, struct src **ap, struct cred_cache **out)
{
	struct src *a = *ap;

	*ap = NULL;
	return cred_cache_new(fetch, a, src_free, a->what, out);
}

/* The profile's credentials; 1 when it gives some, 0 when it is not
 * there (and was not asked for by name). */
static int from_profile(const struct awscred_cfg *cfg, struct src **ap,
			struct cred_cache **out)
{
	const char *named = getenv_set("AWS_PROFILE");
	const char *name = named ? named : "default";
	struct profile p = {0};
	char what[2400];
	int rc = profile_load(name, &p);

	if (rc)
		goto out;
	snprintf(what, sizeof(what), "profile '%.200s' of %s and %s", name,
		 p.files[0], p.files[1]);
	if (!p.found) {
		if (named)
			rc = snap_seterr(SNAP_EACCES, "AWS_PROFILE=%s: no such "
					 "profile in %s or %s", name, p.files[0],
					 p.files[1]);
	} else if (p.role_arn && p.webid_file) {
		rc = sts_src(*ap, cfg->region, p.role_arn, p.webid_file,
			     p.session_name);
		rc = rc ? rc : adopt(webid_fetch, ap, out);
	} else if (p.role_arn) {
		rc = snap_seterr(SNAP_EINVAL, "%s: role_arn with %s is not "
				 "supported; use credential_process (aws "
				 "configure export-credentials) or web "
				 "identity", what,
				 p.source ? "source_profile" : "no token file");
	} else if (p.key_id && p.secret) {
		rc = cred_cache_static(p.key_id, p.secret, p.token, what, out);
	} else if (p.process) {
		snprintf((*ap)->what, sizeof((*ap)->what),
			 "credential_process of profile '%s'", name);
		rc = set(&(*ap)->command, p.process);
		rc = rc ? rc : adopt(process_fetch, ap, out);
	}
	/* A profile of settings only (region, ...) gives none: the chain
	 * goes on to the container and the instance, as the SDKs do. */
out:
	profile_free(&p);
	return rc ? rc : *out != NULL;
}

int awscred_open(const struct awscred_cfg *cfg, struct cred_cache **out)
{
	const char *role = getenv_set("AWS_ROLE_ARN");
	const char *file = getenv_set("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *dis = getenv_set("AWS_EC2_METADATA_DISABLED");
	const char *imds = getenv_set("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	struct src *a = NULL;
	int rc;

	*out = NULL;
	rc = from_env(cfg, out);
	if (rc)
		goto out;
	a = calloc(1, sizeof(*a));
	if (!a) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	if (role && file) {
		rc = sts_src(a, cfg->region, role, file,
			     getenv_set("AWS_ROLE_SESSION_NAME"));
		rc = rc ? rc : adopt(webid_fetch, &a, out);
		goto out;
	}
	rc = from_profile(cfg, &a, out);
	if (rc)
		goto out;
	if (getenv_set("AWS_CONTAINER_CREDENTIALS_FULL_URI") ||
	    getenv_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
		rc = container_src(a);
		rc = rc ? rc : adopt(container_fetch, &a, out);
		goto out;
	}
	if (dis && !strcasecmp(dis, "true")) {
		rc = snap_seterr(SNAP_EACCES, "no credentials for %s: set "
				 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
				 "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, "
				 "or a profile in ~/.aws (instance metadata "
				 "is disabled); or ?anonymous=true for a "
				 "public bucket", cfg->url);
		goto out;
	}
	if (!imds)
		imds = IMDS_DEFAULT;
	snprintf(a->what, sizeof(a->what), "instance metadata at %s", imds);
	rc = set(&a->imds, imds);
	rc = rc ? rc : http_src(a, 1);
	rc = rc ? rc : adopt(imds_fetch, &a, out);
	if (rc)
		rc = snap_preerr(SNAP_EACCES, "no credentials for %s: none in "
				 "the environment (AWS_ACCESS_KEY_ID, "
				 "AWS_ROLE_ARN) or ~/.aws, nor from instance "
				 "metadata", cfg->url);
out:
	src_free(a);
	return rc < 0 ? rc : 0;
}
