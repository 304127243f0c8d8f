/*
 * sigv4.h - AWS Signature Version 4 (HMAC-SHA-256), header form.
 *
 * Builds the canonical request from method, path, query parameters,
 * headers and the payload hash, then the string to sign and the
 * Authorization header value.  Query names and values and the path are
 * given raw (unencoded) and encoded here with RFC 3986 unreserved rules;
 * S3 paths are encoded once (never double-encoded), '/' kept.
 *
 * Pure function: no I/O, no allocation visible to the caller.  Secrets are
 * only read.  Verified against AWS's published test-suite vectors
 * (tests/unit.c).
 */
#ifndef SNAPFS_SIGV4_H
#define SNAPFS_SIGV4_H

#include <stddef.h>

#include "util.h"

struct kv {
	const char *name, *value;
};

struct sigv4_req {
	const char *method;
	const char *path; /* raw, starts with '/' */
	const struct kv *query;
	size_t nquery;
	const struct kv *headers; /* must include host and x-amz-date */
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256, or "UNSIGNED-PAYLOAD" */
};

struct sigv4_key {
	const char *access_key, *secret_key;
	const char *region, *service;
};

/* Writes the Authorization header value into out.  amz_date is the
 * request's x-amz-date (YYYYMMDDTHHMMSSZ).  Returns 0 or SNAP_EINVAL
 * (out too small, malformed date). */
int sigv4_authorization(const struct sigv4_req *req, const struct sigv4_key *key,
			const char *amz_date, char *out, size_t outlen);

/* Appends the RFC 3986 encoding of s to out (keep_slash: leave '/'). */
int uri_encode(struct buf *out, const char *s, int keep_slash);

/* Appends "?a=1&b=2" (encoded) for n pairs; a NULL value drops "=". */
int query_append(struct buf *url, const struct kv *q, size_t n);

#endif
