/*
 * store_azure.c - the Azure Blob backend (SharedKey, SAS or Entra ID
 * bearer tokens over libcurl).
 *
 * Objects are block blobs at PREFIX/key in one container.  Small objects
 * are one Put Blob; objects of 64 MiB or more go up as Put Block + Put
 * Block List (uncommitted blocks of a failed upload are discarded by the
 * service).  Create-only puts send If-None-Match: * (409: the blob
 * exists).  Listing pages with List Blobs markers.
 *
 * Credentials, first match wins: AZURE_STORAGE_SAS_TOKEN,
 * AZURE_STORAGE_KEY (SharedKey, with the account from the location), a
 * service principal (azcred.h: bearer tokens, refreshed, and a request
 * refused for an expired one retried once with a fresh one).  ?endpoint=URL points at Azurite
 * (path style, e.g. http://127.0.0.1:10000/devstoreaccount1) or a
 * sovereign cloud.  Secrets are wiped on close and never logged.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "azcred.h"
#include "crypto.h"
#include "err.h"
#include "http.h"
#include "location.h"
#include "sigv4.h"
#include "store.h"

#define AZ_VERSION "2021-08-06"
#define BLOCK_THRESHOLD (64u << 20)
#define BLOCK_SIZE (4u << 20)

struct azure {
	struct store s;
	struct location loc;
	struct http *http;
	struct buf key; /* decoded account key; empty with SAS */
	char *sas;      /* without the leading '?' */
	struct cred_cache *token; /* Entra ID bearer token, or NULL */
	char *base_path; /* path part of the endpoint, e.g. "/devstoreaccount1" */
	size_t block_threshold;
};

struct azsign {
	struct azure *a;
	const char *method;
	const char *path;           /* URL path as sent (encoded) */
	const struct kv *query;
	size_t nquery;
	const char *const *headers; /* the request's own headers */
	size_t body_len;
	uint64_t gen; /* of the bearer token of the last attempt */
};

static int cmp_kv(const void *x, const void *y)
{
	return strcmp(((const struct kv *)x)->name, ((const struct kv *)y)->name);
}

/* Value of a header among "Name: value" lines, "" when absent. */
static const char *hval(const char *const *h, const char *name)
{
	size_t n = strlen(name);

	for (; h && *h; h++)
		if (!strncasecmp(*h, name, n) && (*h)[n] == ':')
			return *h + n + 1 + strspn(*h + n + 1, " ");
	return "";
}

static int bearer(struct cred_cache *cc, struct curl_slist **list,
		  uint64_t *gen)
{
	struct buf h = BUF_INIT;
	struct cred cr;
	int rc = cred_get(cc, &cr);

	*gen = cr.gen;
	rc = rc ? rc : buf_addstr(&h, "Bearer ");
	rc = rc ? rc : buf_addstr(&h, cr.secret);
	rc = rc ? rc : buf_addc(&h, 0);
	rc = rc ? rc : hdr_add(list, "Authorization", (char *)h.p);
	buf_free_secret(&h);
	cred_wipe(&cr);
	return rc;
}

static int az_sign(void *ctx, struct curl_slist **list)
{
	struct azsign *c = ctx;
	struct azure *a = c->a;
	char date[64], len[32], auth[512];
	struct buf sts = BUF_INIT, sig = BUF_INIT;
	struct kv q[8];
	uint8_t mac[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	SNAP_TRY(hdr_add(list, "x-ms-date", date));
	SNAP_TRY(hdr_add(list, "x-ms-version", AZ_VERSION));
	if (a->token)
		return bearer(a->token, list, &c->gen);
	if (!a->key.len)
		return 0; /* SAS: the token in the URL is the authorisation */
	/* Content-Length is the empty string when zero (since 2015-02-21). */
	if (c->body_len)
		snprintf(len, sizeof(len), "%zu", c->body_len);
	else
		len[0] = 0;
	rc = buf_addstr(&sts, c->method);
	const char *lines[] = {"", "", len, "", hval(c->headers, "Content-Type"),
			       "", "", "", hval(c->headers, "If-None-Match"),
			       "", ""};
	for (size_t i = 0; rc == 0 && i < sizeof(lines) / sizeof(*lines); i++) {
		rc = buf_addc(&sts, '\n');
		rc = rc ? rc : buf_addstr(&sts, lines[i]);
	}
	rc = rc ? rc : buf_addc(&sts, '\n');
	/* Canonicalised x-ms- headers, sorted by name. */
	struct kv xh[8];
	size_t nx = 0;
	char xline[8][256];
	xh[nx++] = (struct kv){"x-ms-date", date};
	xh[nx++] = (struct kv){"x-ms-version", AZ_VERSION};
	for (const char *const *h = c->headers; h && *h && nx < 8; h++) {
		if (strncasecmp(*h, "x-ms-", 5))
			continue;
		const char *colon = strchr(*h, ':');
		if (!colon || (size_t)(colon - *h) >= sizeof(xline[0]))
			continue;
		snprintf(xline[nx], sizeof(xline[0]), "%.*s", (int)(colon - *h),
			 *h);
		for (char *p = xline[nx]; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		xh[nx] = (struct kv){xline[nx], colon + 1 + strspn(colon + 1, " ")};
		nx++;
	}
	qsort(xh, nx, sizeof(*xh), cmp_kv);
	for (size_t i = 0; rc == 0 && i < nx; i++) {
		rc = buf_addstr(&sts, xh[i].name);
		rc = rc ? rc : buf_addc(&sts, ':');
		rc = rc ? rc : buf_addstr(&sts, xh[i].value);
		rc = rc ? rc : buf_addc(&sts, '\n');
	}
	/* Canonicalised resource: /account/path, then sorted query. */
	rc = rc ? rc : buf_addc(&sts, '/');
	rc = rc ? rc : buf_addstr(&sts, a->loc.host);
	rc = rc ? rc : buf_addstr(&sts, c->path);
	if (c->nquery > sizeof(q) / sizeof(*q))
		rc = snap_seterr(SNAP_EINVAL, "too many query parameters");
	if (rc == 0 && c->nquery) {
		memcpy(q, c->query, c->nquery * sizeof(*q));
		qsort(q, c->nquery, sizeof(*q), cmp_kv);
	}
	for (size_t i = 0; rc == 0 && i < c->nquery; i++) {
		rc = buf_addc(&sts, '\n');
		rc = rc ? rc : buf_addstr(&sts, q[i].name);
		rc = rc ? rc : buf_addc(&sts, ':');
		rc = rc ? rc : buf_addstr(&sts, q[i].value ? q[i].value : "");
	}
	if (rc == 0) {
		hmac_sha256(a->key.p, a->key.len, sts.p, sts.len, mac);
		rc = base64_encode(mac, 32, &sig);
		rc = rc ? rc : buf_addc(&sig, 0);
	}
	if (rc == 0) {
		snprintf(auth, sizeof(auth), "SharedKey %s:%s", a->loc.host,
			 (char *)sig.p);
		rc = hdr_add(list, "Authorization", auth);
	}
	buf_free(&sts);
	buf_free(&sig);
	return rc;
}

static void on_detail(const char *path, const char *text, void *ctx)
{
	if (!strcmp(path, "Error/AuthenticationErrorDetail"))
		snprintf(ctx, 256, "%s", text);
}

/* Why a bearer token was refused ("Lifetime validation failed. The token
 * is expired."), "" when the answer does not say. */
static void auth_detail(const struct http_resp *r, char detail[256])
{
	detail[0] = 0;
	if (r->body.len && r->body.p[0] == '<')
		xml_walk(r->body.p, r->body.len, on_detail, detail);
	detail[strcspn(detail, "\r\n")] = 0;
}

static int az_error(struct azure *a, const char *method, const char *key,
		    const struct http_resp *r)
{
	char code[128], msg[512], detail[256];

	xml_error(&r->body, code, sizeof(code), msg, sizeof(msg));
	auth_detail(r, detail);
	if (msg[0]) {
		/* Azure appends request ids and times on new lines. */
		char *cut = strstr(msg, "RequestId:");

		if (cut)
			*cut = 0;
	}
	if (!strcmp(code, "ContainerNotFound"))
		return snap_seterr(SNAP_ENOTREPO,
				   "container %s does not exist at %s (create "
				   "it with 'snapctl init --create-bucket')",
				   a->loc.bucket, a->loc.endpoint);
	const char *pre = key ? a->loc.prefix : "";

	if (!key)
		key = "";
	if (r->status == 404)
		return snap_seterr(SNAP_ENOENT, "%s/%s%s: no such blob",
				   a->loc.bucket, pre, key);
	if ((r->status == 403 || r->status == 401) && a->token)
		return snap_seterr(SNAP_EACCES,
				   "access denied to %s/%s%s: the service refused "
				   "the %s (%s%s%s)",
				   a->loc.bucket, pre, key, cred_what(a->token),
				   code[0] ? code : "HTTP 403",
				   detail[0] ? ": " : "", detail);
	if (r->status == 403 || r->status == 401)
		return snap_seterr(SNAP_EACCES,
				   "access denied to %s/%s%s: check credentials "
				   "(%s)",
				   a->loc.bucket, pre, key,
				   code[0] ? code : "HTTP 403");
	return snap_seterr(r->status >= 500 || r->status == 429 ? SNAP_ENET
								 : SNAP_EIO,
			   "%s %s/%s%s: HTTP %ld %s%s%s (after %d attempt%s)",
			   method, a->loc.bucket, pre, key,
			   r->status, code, msg[0] ? ": " : "", msg, r->attempts,
			   r->attempts == 1 ? "" : "s");
}

/* key NULL: the container itself. */
static int az_request(struct azure *a, const char *method, const char *key,
		      const struct kv *query, size_t nquery,
		      const char *const *headers, const uint8_t *body,
		      size_t body_len, struct buf *out, struct http_resp *resp)
{
	struct buf url = BUF_INIT, path = BUF_INIT, raw = BUF_INIT;
	struct azsign sc = {a, method, NULL, query, nquery, headers, body_len,
			    0};
	char what[1024];
	int rc;

	rc = buf_addstr(&raw, a->base_path);
	rc = rc ? rc : buf_addc(&raw, '/');
	rc = rc ? rc : buf_addstr(&raw, a->loc.bucket);
	if (key) {
		rc = rc ? rc : buf_addc(&raw, '/');
		rc = rc ? rc : buf_addstr(&raw, a->loc.prefix);
		rc = rc ? rc : buf_addstr(&raw, key);
	}
	rc = rc ? rc : buf_addc(&raw, 0);
	rc = rc ? rc : uri_encode(&path, (char *)raw.p, 1);
	rc = rc ? rc : buf_addc(&path, 0);
	if (rc)
		goto out;
	const char *hs = strstr(a->loc.endpoint, "://");
	const char *slash = strchr(hs + 3, '/');
	rc = buf_add(&url, a->loc.endpoint,
		     slash ? (size_t)(slash - a->loc.endpoint)
			   : strlen(a->loc.endpoint));
	rc = rc ? rc : buf_addstr(&url, (char *)path.p);
	rc = rc ? rc : query_append(&url, query, nquery);
	if (rc == 0 && a->sas) {
		rc = buf_addc(&url, nquery ? '&' : '?');
		rc = rc ? rc : buf_addstr(&url, a->sas);
	}
	rc = rc ? rc : buf_addc(&url, 0);
	if (rc)
		goto out;
	sc.path = (char *)path.p;
	snprintf(what, sizeof(what), "%s/%s%s", a->loc.bucket,
		 key ? a->loc.prefix : "", key ? key : "");
	struct http_req req = {
		.method = method,
		.url = (char *)url.p,
		.what = what,
		.headers = headers,
		.body = body,
		.body_len = body_len,
		.idempotent = 1,
		.out = out,
		.sign = az_sign,
		.sign_ctx = &sc,
	};
	rc = http_exec(a->http, &req, resp);
	/* A bearer token the service saw expire before we did (clock skew):
	 * one fresh token, one more try. */
	if (rc == 0 && (resp->status == 401 || resp->status == 403) &&
	    a->token) {
		char detail[256];

		auth_detail(resp, detail);
		if (strstr(detail, "expired") && cred_invalidate(a->token, sc.gen)) {
			http_resp_free(resp);
			memset(resp, 0, sizeof(*resp));
			rc = http_exec(a->http, &req, resp);
		}
	}
out:
	buf_free(&url);
	buf_free(&path);
	buf_free(&raw);
	return rc;
}

static int az_put_blocks(struct azure *a, const char *key, const uint8_t *p,
			 size_t n, int flags)
{
	struct buf list = BUF_INIT, id = BUF_INIT;
	struct http_resp r = {0};
	int rc = buf_addstr(&list, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
				   "<BlockList>");

	for (size_t off = 0, i = 0; rc == 0 && off < n; off += BLOCK_SIZE, i++) {
		char raw[32];
		size_t len = n - off < BLOCK_SIZE ? n - off : BLOCK_SIZE;

		/* Block ids must all have the same length. */
		snprintf(raw, sizeof(raw), "snapfs-%08zu", i);
		id.len = 0;
		rc = base64_encode((uint8_t *)raw, strlen(raw), &id);
		rc = rc ? rc : buf_addc(&id, 0);
		if (rc)
			break;
		struct kv q[] = {{"comp", "block"}, {"blockid", (char *)id.p}};
		rc = az_request(a, "PUT", key, q, 2, NULL, p + off, len, NULL, &r);
		if (rc == 0 && r.status != 201)
			rc = az_error(a, "Put Block", key, &r);
		rc = rc ? rc : buf_addstr(&list, "<Latest>");
		rc = rc ? rc : buf_addstr(&list, (char *)id.p);
		rc = rc ? rc : buf_addstr(&list, "</Latest>");
	}
	rc = rc ? rc : buf_addstr(&list, "</BlockList>");
	if (rc == 0) {
		struct kv q[] = {{"comp", "blocklist"}};
		const char *hdrs[] = {"Content-Type: application/xml",
				      flags & STORE_CREATE_ONLY ? "If-None-Match: *"
								: NULL,
				      NULL};

		rc = az_request(a, "PUT", key, q, 1, hdrs, list.p, list.len,
				NULL, &r);
		if (rc == 0 && r.status == 409)
			rc = snap_seterr(SNAP_EEXIST, "%s: already exists", key);
		else if (rc == 0 && r.status != 201)
			rc = az_error(a, "Put Block List", key, &r);
	}
	http_resp_free(&r);
	buf_free(&list);
	buf_free(&id);
	return rc;
}

static int az_put(struct store *st, const char *key, const void *p, size_t n,
		  int flags)
{
	struct azure *a = (struct azure *)st;
	struct http_resp r = {0};
	const char *hdrs[] = {"Content-Type: application/octet-stream",
			      "x-ms-blob-type: BlockBlob",
			      flags & STORE_CREATE_ONLY ? "If-None-Match: *" : NULL,
			      NULL};
	int rc;

	if (n >= a->block_threshold)
		return az_put_blocks(a, key, p, n, flags);
	rc = az_request(a, "PUT", key, NULL, 0, hdrs, p, n, NULL, &r);
	if (rc == 0 && r.status == 409) {
		rc = snap_seterr(SNAP_EEXIST, "%s: already exists", key);
		/* A retried create-only put may have landed the first time. */
		if (r.attempts > 1 && store_holds(st, key, p, n))
			rc = 0;
	} else if (rc == 0 && r.status != 201) {
		rc = az_error(a, "PUT", key, &r);
	}
	http_resp_free(&r);
	return rc;
}

static int az_head(struct store *st, const char *key, uint64_t *size)
{
	struct azure *a = (struct azure *)st;
	struct http_resp r = {0};
	int rc = az_request(a, "HEAD", key, NULL, 0, NULL, NULL, 0, NULL, &r);

	if (rc == 0 && r.status == 200)
		*size = r.length < 0 ? 0 : (uint64_t)r.length;
	else if (rc == 0)
		rc = az_error(a, "HEAD", key, &r);
	http_resp_free(&r);
	return rc;
}

static int az_get(struct store *st, const char *key, int64_t off, int64_t len,
		  struct buf *out)
{
	struct azure *a = (struct azure *)st;
	struct http_resp r = {0};
	char range[80];
	const char *hdrs[2] = {range, NULL};
	int rc;

	if (off < 0) {
		uint64_t size;

		/* Blob storage has no suffix ranges. */
		SNAP_TRY(az_head(st, key, &size));
		off = (uint64_t)-off > size ? 0 : (int64_t)size + off;
		len = -1;
		if ((uint64_t)off >= size)
			return 0;
	}
	if (len == 0)
		return 0;
	if (len > 0)
		snprintf(range, sizeof(range), "x-ms-range: bytes=%lld-%lld",
			 (long long)off, (long long)(off + len - 1));
	else if (off > 0)
		snprintf(range, sizeof(range), "x-ms-range: bytes=%lld-",
			 (long long)off);
	else
		hdrs[0] = NULL;
	rc = az_request(a, "GET", key, NULL, 0, hdrs, NULL, 0, out, &r);
	if (rc == 0 && r.status == 416)
		rc = 0;
	else if (rc == 0 && r.status != 200 && r.status != 206)
		rc = az_error(a, "GET", key, &r);
	http_resp_free(&r);
	return rc;
}

const struct list_syntax az_list_syntax = {
	.what = "List Blobs",
	.root = "EnumerationResults",
	.entry = "EnumerationResults/Blobs/Blob",
	.name = "EnumerationResults/Blobs/Blob/Name",
	.size = "EnumerationResults/Blobs/Blob/Properties/Content-Length",
	.next = "EnumerationResults/NextMarker",
};

static int az_list_fetch(void *ctx, const char *prefix, const char *marker,
			 struct buf *body)
{
	struct azure *a = ctx;
	const char *page = getenv("SNAPFS_LIST_PAGE"); /* tests: force paging */
	struct http_resp r = {0};
	struct kv q[5] = {{"comp", "list"}, {"restype", "container"},
			  {"prefix", prefix}};
	size_t nq = 3;
	int rc;

	if (marker)
		q[nq++] = (struct kv){"marker", marker};
	if (page)
		q[nq++] = (struct kv){"maxresults", page};
	rc = az_request(a, "GET", NULL, q, nq, NULL, NULL, 0, body, &r);
	if (rc == 0 && r.status != 200)
		rc = az_error(a, "List Blobs", NULL, &r);
	http_resp_free(&r);
	return rc;
}

static int az_list(struct store *st, const char *prefix, store_list_cb cb,
		   void *ctx)
{
	struct azure *a = (struct azure *)st;

	return list_pages(&az_list_syntax, az_list_fetch, a, a->loc.bucket,
			  a->loc.prefix, prefix, cb, ctx);
}

static int az_del(struct store *st, const char *key)
{
	struct azure *a = (struct azure *)st;
	struct http_resp r = {0};
	int rc = az_request(a, "DELETE", key, NULL, 0, NULL, NULL, 0, NULL, &r);

	if (rc == 0 && r.status != 202 && r.status != 200 && r.status != 404)
		rc = az_error(a, "DELETE", key, &r);
	http_resp_free(&r);
	return rc;
}

static int az_create(struct store *st)
{
	struct azure *a = (struct azure *)st;
	struct http_resp r = {0};
	struct kv q[] = {{"restype", "container"}};
	int rc = az_request(a, "PUT", NULL, q, 1, NULL, NULL, 0, NULL, &r);

	if (rc == 0 && r.status != 201 && r.status != 409)
		rc = az_error(a, "create container", NULL, &r);
	http_resp_free(&r);
	return rc;
}

static void az_close(struct store *st)
{
	struct azure *a = (struct azure *)st;

	http_free(a->http);
	cred_cache_free(a->token);
	if (a->key.p)
		OPENSSL_cleanse(a->key.p, a->key.cap);
	buf_free(&a->key);
	free_secret(a->sas);
	free(a->base_path);
	location_free(&a->loc);
	free(a->s.url);
	free(a);
}

static const struct store_ops azure_ops = {
	.scheme = "azure",
	.put = az_put,
	.get = az_get,
	.head = az_head,
	.list = az_list,
	.del = az_del,
	.create = az_create,
	.close = az_close,
};

int store_azure_open(const char *url, const struct store_opts *so,
		     struct store **out)
{
	struct azure *a = calloc(1, sizeof(*a));
	struct http_cfg hc = {0};
	const char *key = getenv("AZURE_STORAGE_KEY");
	const char *sas = getenv("AZURE_STORAGE_SAS_TOKEN");
	const char *env_acct = getenv("AZURE_STORAGE_ACCOUNT");
	const char *hs, *slash;
	int rc;

	if (!a)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	a->s.ops = &azure_ops;
	rc = location_parse(url, &a->loc);
	if (rc) {
		free(a);
		return rc;
	}
	a->s.url = strdup(url);
	hs = strstr(a->loc.endpoint, "://");
	slash = hs ? strchr(hs + 3, '/') : NULL;
	a->base_path = strdup(slash ? slash : "");
	a->block_threshold = BLOCK_THRESHOLD;
	/* Tests lower the threshold to exercise Put Block on small data. */
	if (getenv("SNAPFS_AZURE_BLOCK_THRESHOLD"))
		a->block_threshold =
			strtoull(getenv("SNAPFS_AZURE_BLOCK_THRESHOLD"), NULL, 10);
	if (a->block_threshold < (1u << 20))
		a->block_threshold = 1u << 20;
	if (!a->s.url || !a->base_path) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto fail;
	}
	if (env_acct && *env_acct && strcmp(env_acct, a->loc.host)) {
		rc = snap_seterr(SNAP_EINVAL,
				 "AZURE_STORAGE_ACCOUNT is '%s' but the "
				 "location names account '%s'",
				 env_acct, a->loc.host);
		goto fail;
	}
	if (sas && *sas) {
		a->sas = strdup(sas[0] == '?' ? sas + 1 : sas);
		if (!a->sas) {
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
			goto fail;
		}
	} else if (key && *key) {
		if (base64_decode(key, &a->key) || !a->key.len) {
			rc = snap_seterr(SNAP_EACCES,
					 "AZURE_STORAGE_KEY is not valid "
					 "base64");
			goto fail;
		}
	} else if (!(so && so->anonymous) && !a->loc.anonymous) {
		rc = azcred_open(url, &a->token);
		if (rc == 0 && !a->token)
			rc = snap_seterr(SNAP_EACCES,
					 "no credentials for %s: set "
					 "AZURE_STORAGE_KEY, "
					 "AZURE_STORAGE_SAS_TOKEN, or a service "
					 "principal's AZURE_TENANT_ID, "
					 "AZURE_CLIENT_ID and "
					 "AZURE_CLIENT_SECRET",
					 url);
		if (rc)
			goto fail;
	}
	hc.ca_file = a->loc.ca_file;
	store_http_cfg(so, &hc);
	rc = http_new(&hc, &a->http);
	if (rc)
		goto fail;
	*out = &a->s;
	return 0;
fail:
	az_close(&a->s);
	return rc;
}
