/*
 * azcred.h - Azure AD / Entra ID service principals, as the Azure SDKs'
 * EnvironmentCredential finds them.
 *
 * AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET (a client
 * secret, as DC/OS's backup-azure plan passes CLIENT_ID, TENANT_ID and
 * CLIENT_SECRET) or AZURE_FEDERATED_TOKEN_FILE (AKS workload identity: a
 * signed assertion, read again at each refresh).  The OAuth2
 * client-credentials grant at AZURE_AUTHORITY_HOST (default
 * https://login.microsoftonline.com; other clouds have their own) gives a
 * bearer token for https://storage.azure.com/, refreshed before it
 * expires (cred.h).  Neither secret nor token appears in a message; the
 * identity service's own error (AADSTS7000215: invalid client secret)
 * does.
 */
#ifndef SNAPFS_AZCRED_H
#define SNAPFS_AZCRED_H

#include "cred.h"

/* A token cache when the variables name a service principal (the first
 * token fetched here), else 0 with *out NULL.  A tenant and client
 * without a secret or token file is SNAP_EACCES. */
int azcred_open(const char *url, struct cred_cache **out);

#endif
