/* location.c - repository location parsing; see location.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "location.h"

void location_free(struct location *loc)
{
	free(loc->path);
	free(loc->host);
	free(loc->bucket);
	free(loc->prefix);
	free(loc->region);
	free(loc->ca_file);
	free(loc->endpoint);
	memset(loc, 0, sizeof(*loc));
}

static int truthy(const char *v, int *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : snap_seterr(SNAP_ENOMEM, "out of memory");
}

static int parse_opts(char *q, struct location *loc, const char *url)
{
	char *save = NULL;

	for (char *kv = strtok_r(q, "&", &save); kv;
	     kv = strtok_r(NULL, "&", &save)) {
		char *v = strchr(kv, '=');
		int bad = 0;

		if (!v)
			return snap_seterr(SNAP_EINVAL,
					   "bad location '%s': option '%s' "
					   "needs a value",
					   url, kv);
		*v++ = 0;
		if (!strcmp(kv, "region"))
			bad = set_str(&loc->region, v);
		else if (!strcmp(kv, "secure"))
			bad = truthy(v, &loc->secure);
		else if (!strcmp(kv, "path_style"))
			bad = truthy(v, &loc->path_style);
		else if (!strcmp(kv, "anonymous"))
			bad = truthy(v, &loc->anonymous);
		else if (!strcmp(kv, "ca"))
			bad = set_str(&loc->ca_file, v);
		else if (!strcmp(kv, "endpoint"))
			bad = set_str(&loc->endpoint, v);
		else
			return snap_seterr(SNAP_EINVAL,
					   "bad location '%s': unknown option "
					   "'%s' (known: region, secure, "
					   "path_style, ca, anonymous, endpoint)",
					   url, kv);
		if (bad)
			return snap_seterr(SNAP_EINVAL,
					   "bad location '%s': bad value '%s' "
					   "for '%s'",
					   url, v, kv);
	}
	return 0;
}

int location_parse(const char *url, struct location *loc)
{
	char *copy = NULL, *rest, *q, *slash, *bucket_end;
	const char *scheme_end = strstr(url, "://");
	size_t n;
	int rc = 0;

	memset(loc, 0, sizeof(*loc));
	loc->secure = 1;
	if (!scheme_end || !strncmp(url, "file://", 7)) {
		loc->kind = LOC_FILE;
		if (scheme_end && url[7] != '/')
			return snap_seterr(SNAP_EINVAL,
					   "bad location '%s': file:// needs "
					   "an absolute path (file:///path)",
					   url);
		return set_str(&loc->path, scheme_end ? url + 7 : url);
	}
	if (!strncmp(url, "s3://", 5)) {
		loc->kind = LOC_S3;
	} else if (!strncmp(url, "minio://", 8)) {
		loc->kind = LOC_S3;
		loc->minio = 1;
		loc->path_style = 1;
	} else if (!strncmp(url, "azure://", 8)) {
		loc->kind = LOC_AZURE;
	} else {
		return snap_seterr(SNAP_EINVAL,
				   "unsupported location '%.*s://...': use a "
				   "path, file:///path, s3://, minio:// or "
				   "azure://",
				   (int)(scheme_end - url), url);
	}
	copy = strdup(scheme_end + 3);
	if (!copy)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	q = strchr(copy, '?');
	if (q) {
		*q++ = 0;
		rc = parse_opts(q, loc, url);
		if (rc)
			goto out;
	}
	slash = strchr(copy, '/');
	if (!slash || slash == copy || !slash[1]) {
		rc = snap_seterr(SNAP_EINVAL,
				 "bad location '%s': expected %s", url,
				 loc->kind == LOC_AZURE
					 ? "azure://ACCOUNT/CONTAINER[/PREFIX]"
				 : loc->minio
					 ? "minio://HOST:PORT/BUCKET[/PREFIX]"
					 : "s3://HOST[:PORT]/BUCKET[/PREFIX]");
		goto out;
	}
	*slash = 0;
	rest = slash + 1;
	bucket_end = strchr(rest, '/');
	if (bucket_end)
		*bucket_end = 0;
	if ((rc = set_str(&loc->host, copy)) || (rc = set_str(&loc->bucket, rest)))
		goto out;
	/* The prefix is stored with one trailing slash so keys concatenate. */
	rest = bucket_end ? bucket_end + 1 : "";
	while (*rest == '/')
		rest++;
	n = strlen(rest);
	while (n && rest[n - 1] == '/')
		rest[--n] = 0;
	loc->prefix = malloc(n + 2);
	if (!loc->prefix) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(loc->prefix, n + 2, "%s%s", rest, n ? "/" : "");
	if (strstr(loc->prefix, "//") || strstr(loc->prefix, "..")) {
		rc = snap_seterr(SNAP_EINVAL, "bad location '%s': bad prefix",
				 url);
		goto out;
	}
	if (loc->kind == LOC_S3) {
		/* A host without a dot is AWS ("s3://aws/bucket"): the
		 * regional endpoint, virtual-hosted unless told otherwise. */
		int aws = !strchr(loc->host, '.') && !strchr(loc->host, ':') &&
			  strcmp(loc->host, "localhost");
		const char *reg = loc->region ? loc->region
				  : getenv("AWS_REGION") ? getenv("AWS_REGION")
				  : getenv("AWS_DEFAULT_REGION")
					  ? getenv("AWS_DEFAULT_REGION")
					  : "us-east-1";

		if (!loc->region && (rc = set_str(&loc->region, reg)))
			goto out;
		if (aws) {
			free(loc->host);
			loc->host = malloc(64 + strlen(loc->region));
			if (!loc->host) {
				rc = snap_seterr(SNAP_ENOMEM, "out of memory");
				goto out;
			}
			sprintf(loc->host, "s3.%s.amazonaws.com", loc->region);
		} else if (!loc->minio && !strstr(url, "path_style=false")) {
			loc->path_style = 1;
		}
		if (!loc->endpoint) {
			char ep[600];

			snprintf(ep, sizeof(ep), "%s://%s",
				 loc->secure ? "https" : "http", loc->host);
			rc = set_str(&loc->endpoint, ep);
		}
	} else if (!loc->endpoint) {
		char ep[600];

		snprintf(ep, sizeof(ep), "%s://%s.blob.core.windows.net",
			 loc->secure ? "https" : "http", loc->host);
		rc = set_str(&loc->endpoint, ep);
	} else {
		n = strlen(loc->endpoint);
		while (n && loc->endpoint[n - 1] == '/')
			loc->endpoint[--n] = 0;
	}
out:
	free(copy);
	if (rc)
		location_free(loc);
	return rc;
}
