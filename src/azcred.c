/* azcred.c - Entra ID client-credentials tokens; see azcred.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "azcred.h"
#include "err.h"
#include "http.h"
#include "sigv4.h"

#define AUTHORITY "https://login.microsoftonline.com"
#define SCOPE "https://storage.azure.com/.default"
#define ASSERTION_MAX (64u << 10)

struct sp {
	struct http *http;
	char *url;        /* the token endpoint */
	char *client, *secret, *assertion_file;
	char what[512];
};

static void sp_free(void *p)
{
	struct sp *s = p;

	if (!s)
		return;
	http_free(s->http);
	free(s->url);
	free(s->client);
	free_secret(s->secret);
	free(s->assertion_file);
	free(s);
}

/* The identity service's {"error": ..., "error_description": ...}. */
static int token_error(const struct sp *s, const struct http_resp *r)
{
	json_t *j = json_loadb((const char *)r->body.p, r->body.len, 0, NULL);
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *d = json_string_value(json_object_get(j,
							  "error_description"));
	/* Descriptions go on with "\r\nTrace ID: ..." lines. */
	int dl = d ? (int)strcspn(d, "\r\n") : 0;
	int rc = snap_seterr(r->status == 400 || r->status == 401 ||
					     r->status == 403
				     ? SNAP_EACCES
				     : SNAP_ENET,
			     "%s: HTTP %ld%s%s%s%.*s", s->what, r->status,
			     e ? " " : "", e ? e : "", d ? ": " : "", dl,
			     d ? d : "");

	json_decref(j);
	return rc;
}

static int token_fetch(void *ctx, struct cred *out)
{
	struct sp *s = ctx;
	struct buf form = BUF_INIT, body = BUF_INIT;
	struct http_resp r = {0};
	char *assertion = NULL;
	json_t *j = NULL, *exp;
	const char *tok;
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
			      "Accept: application/json", NULL};
	int rc = 0;

	if (s->assertion_file) {
		assertion = malloc(ASSERTION_MAX);
		rc = assertion ? cred_read_file(s->what, s->assertion_file,
						  (uint8_t *)assertion,
						  ASSERTION_MAX)
			       : snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	rc = rc ? rc : buf_addstr(&form, "grant_type=client_credentials&"
					 "client_id=");
	rc = rc ? rc : uri_encode(&form, s->client, 0);
	rc = rc ? rc : buf_addstr(&form, "&scope=");
	rc = rc ? rc : uri_encode(&form, SCOPE, 0);
	if (assertion) {
		rc = rc ? rc
			: buf_addstr(&form, "&client_assertion_type=urn%3Aietf"
					    "%3Aparams%3Aoauth%3Aclient-"
					    "assertion-type%3Ajwt-bearer&"
					    "client_assertion=");
		rc = rc ? rc : uri_encode(&form, assertion, 0);
	} else {
		rc = rc ? rc : buf_addstr(&form, "&client_secret=");
		rc = rc ? rc : uri_encode(&form, s->secret, 0);
	}
	rc = rc ? rc : buf_addc(&form, 0);
	if (rc)
		goto out;
	struct http_req req = {
		.method = "POST",
		.url = s->url,
		.what = s->what,
		.headers = hdrs,
		.body = form.p,
		.body_len = form.len - 1,
		.idempotent = 1,
		.out = &body,
	};
	rc = http_exec(s->http, &req, &r);
	if (rc)
		goto out;
	if (r.status != 200) {
		rc = token_error(s, &r);
		goto out;
	}
	j = json_loadb((const char *)body.p, body.len, 0, NULL);
	tok = json_string_value(json_object_get(j, "access_token"));
	exp = json_object_get(j, "expires_in");
	if (!tok || !*tok || (!json_is_integer(exp) && !json_is_string(exp))) {
		rc = snap_seterr(SNAP_EACCES, "%s: no access_token and "
				 "expires_in in the answer", s->what);
		goto out;
	}
	/* v1 endpoints send expires_in as a string. */
	out->expires = time(NULL) +
		       (json_is_integer(exp)
				? (time_t)json_integer_value(exp)
				: (time_t)strtol(json_string_value(exp), NULL,
						 10));
	out->secret = strdup(tok);
	if (!out->secret)
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
out:
	json_decref(j);
	if (assertion) {
		OPENSSL_cleanse(assertion, ASSERTION_MAX);
		free(assertion);
	}
	buf_free_secret(&form);
	buf_free_secret(&body);
	http_resp_free(&r);
	return rc;
}

int azcred_open(const char *url, struct cred_cache **out)
{
	const char *tenant = getenv_set("AZURE_TENANT_ID");
	const char *client = getenv_set("AZURE_CLIENT_ID");
	const char *secret = getenv_set("AZURE_CLIENT_SECRET");
	const char *file = getenv_set("AZURE_FEDERATED_TOKEN_FILE");
	const char *host = getenv_set("AZURE_AUTHORITY_HOST");
	struct http_cfg hc = {.retries = 2, .connect_timeout = 5};
	struct sp *s;
	size_t hl;
	int rc;

	*out = NULL;
	if (!tenant || !client)
		return 0;
	if (!secret && !file)
		return snap_seterr(SNAP_EACCES, "no credentials for %s: "
				   "AZURE_TENANT_ID and AZURE_CLIENT_ID are set "
				   "but neither AZURE_CLIENT_SECRET nor "
				   "AZURE_FEDERATED_TOKEN_FILE", url);
	if (!host)
		host = AUTHORITY;
	hl = strlen(host);
	while (hl && host[hl - 1] == '/')
		hl--;
	s = calloc(1, sizeof(*s));
	if (!s)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	s->url = malloc(hl + strlen(tenant) + 32);
	if (s->url)
		sprintf(s->url, "%.*s/%s/oauth2/v2.0/token", (int)hl, host,
			tenant);
	s->client = strdup(client);
	/* A secret first, as EnvironmentCredential comes before workload
	 * identity in the Azure SDKs' default chain. */
	if (secret)
		s->secret = strdup(secret);
	else
		s->assertion_file = strdup(file);
	if (!s->url || !s->client || (!s->assertion_file && !s->secret)) {
		sp_free(s);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	snprintf(s->what, sizeof(s->what),
		 "Entra ID token for client %.64s at %.400s", client, s->url);
	rc = http_new(&hc, &s->http);
	if (rc) {
		sp_free(s);
		return rc;
	}
	return cred_cache_new(token_fetch, s, sp_free, s->what, out);
}
