/*
 * awscred.h - AWS credentials the way the SDKs and the CLI find them.
 *
 * The chain, first match wins, as the SDKs order it:
 *   1. environment: AWS_ACCESS_KEY_ID (or AWS_ACCESS_KEY),
 *      AWS_SECRET_ACCESS_KEY (or AWS_SECRET_KEY), AWS_SESSION_TOKEN; for
 *      minio:// also MINIO_ACCESS_KEY/MINIO_SECRET_KEY and
 *      MINIO_ROOT_USER/MINIO_ROOT_PASSWORD;
 *   2. web identity (EKS service accounts): AWS_ROLE_ARN and
 *      AWS_WEB_IDENTITY_TOKEN_FILE [AWS_ROLE_SESSION_NAME], exchanged by
 *      STS AssumeRoleWithWebIdentity at AWS_ENDPOINT_URL_STS or the
 *      regional endpoint; the token file is read again at each refresh,
 *      since the kubelet rotates it;
 *   3. the profile AWS_PROFILE (or "default") of AWS_SHARED_CREDENTIALS_FILE
 *      (~/.aws/credentials) and AWS_CONFIG_FILE (~/.aws/config): static
 *      keys, credential_process (its JSON, Version 1), or role_arn with
 *      web_identity_token_file; a profile named in AWS_PROFILE that does
 *      not exist is an error, not a reason to go on;
 *   4. container credentials (ECS, EKS Pod Identity):
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI, with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE);
 *   5. EC2 instance metadata, IMDSv2 (a session token first), at
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT or 169.254.169.254, unless
 *      AWS_EC2_METADATA_DISABLED=true.
 * Temporary credentials are refreshed before they expire (cred.h).  The
 * first fetch happens in awscred_open(), so a source that cannot give
 * credentials fails there, with a message naming what was tried and why
 * it failed; never a secret.
 */
#ifndef SNAPFS_AWSCRED_H
#define SNAPFS_AWSCRED_H

#include "cred.h"

struct awscred_cfg {
	const char *url;    /* the store, for messages */
	const char *region; /* of the STS endpoint */
	int minio;          /* also the MINIO_* variables */
};

/* The credentials of the first source that applies; SNAP_EACCES with the
 * chain's story when none gives any. */
int awscred_open(const struct awscred_cfg *cfg, struct cred_cache **out);

#endif
