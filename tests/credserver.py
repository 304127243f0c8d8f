#!/usr/bin/env python3
"""A test-only stand-in for the credential services that cannot run here:
AWS STS AssumeRoleWithWebIdentity, EC2 instance metadata (IMDSv2), the
ECS / EKS Pod Identity container endpoint, and the Entra ID (Azure AD)
OAuth2 token endpoint.

usage: credserver.py --state DIR [--rgw URL --access K --secret S
                     --role ARN] [--token-file F] [--container-auth A]
                     [--tenant T --client-id C --client-secret S]

Listens on 127.0.0.1 on a free port and prints the port.

The AWS credentials it hands out are real: each one is minted by the
Ceph RADOS Gateway's own STS (AssumeRole, signed with the test user's
keys), so the gateway verifies the session token of every request made
with them.  Only the Expiration it reports is its own, --lifetime seconds
from now (the gateway's shortest session, 15 minutes, is too long for a
test to wait for a refresh).

  POST /sts                       AssumeRoleWithWebIdentity: the token must be
                                  the current content of --token-file
  PUT  /latest/api/token          IMDSv2 session token (TTL header required)
  GET  /latest/meta-data/iam/security-credentials/[ROLE]
                                  the role name, then its credentials; both
                                  need the session token (no IMDSv1)
  GET  /container                 container credentials; Authorization
                                  must be --container-auth
  GET  /process                   credential_process JSON (Version 1), for
                                  a `curl` credential_process
  POST /TENANT/oauth2/v2.0/token  client-credentials grant for
                                  https://storage.azure.com/.default, with
                                  --client-secret or an assertion that is
                                  the content of --token-file: a JWT
                                  with the audience, issuer and expiry
                                  Azurite's --oauth basic checks
  GET  /_control?mode=M&lifetime=S
       mode ok: normal; deny: every credential request is refused;
       expired: credentials or tokens that expired an hour ago
State: DIR/counts (JSON, requests answered with credentials per
endpoint) is rewritten after each request; DIR/secrets lists every
secret key, session token and bearer token handed out, one per line.
"""
import argparse, base64, datetime, hashlib, hmac, json, os, re, secrets
import sys, threading, time, urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--state", required=True)
ap.add_argument("--rgw")
ap.add_argument("--access")
ap.add_argument("--secret")
ap.add_argument("--role", default="arn:aws:iam:::role/snaprole")
ap.add_argument("--token-file")
ap.add_argument("--container-auth", default="")
ap.add_argument("--tenant", default="")
ap.add_argument("--client-id", default="")
ap.add_argument("--client-secret", default="")
ap.add_argument("--lifetime", type=int, default=3600)
a = ap.parse_args()

lock = threading.Lock()
state = {"mode": "ok", "lifetime": a.lifetime}
counts = {}
imds_tokens = set()


def bump(name):
    with lock:
        counts[name] = counts.get(name, 0) + 1
        tmp = os.path.join(a.state, "counts.tmp")
        with open(tmp, "w") as f:
            json.dump(counts, f)
        os.rename(tmp, os.path.join(a.state, "counts"))


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def expiry():
    if state["mode"] == "expired":
        return time.time() - 3600
    return time.time() + state["lifetime"]


def sigv4_post(url, body, region="us-east-1", service="sts"):
    """One SigV4-signed form POST with the test user's keys."""
    t = datetime.datetime.now(datetime.timezone.utc)
    amz, day = t.strftime("%Y%m%dT%H%M%SZ"), t.strftime("%Y%m%d")
    host = url.split("://", 1)[1].rstrip("/")
    ph = hashlib.sha256(body).hexdigest()
    signed = "content-type;host;x-amz-content-sha256;x-amz-date"
    canon = "\n".join([
        "POST", "/", "",
        "content-type:application/x-www-form-urlencoded\nhost:%s\n"
        "x-amz-content-sha256:%s\nx-amz-date:%s\n" % (host, ph, amz),
        signed, ph])
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                     hashlib.sha256(canon.encode()).hexdigest()])
    k = ("AWS4" + a.secret).encode()
    for m in (day, region, service, "aws4_request"):
        k = hmac.new(k, m.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(url.rstrip("/") + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "x-amz-date": amz, "x-amz-content-sha256": ph,
        "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, "
                         "SignedHeaders=%s, Signature=%s"
                         % (a.access, scope, signed, sig)})
    return urllib.request.urlopen(req, timeout=30).read().decode()


def mint():
    """Real temporary credentials from the gateway's STS."""
    body = urllib.parse.urlencode({
        "Action": "AssumeRole", "Version": "2011-06-15",
        "RoleArn": a.role, "RoleSessionName": "credserver",
        "DurationSeconds": "900"}).encode()
    x = sigv4_post(a.rgw, body)
    get = lambda tag: re.search("<%s>(.*?)</%s>" % (tag, tag), x).group(1)
    # For the test to check that no message ever quotes them.
    with lock, open(os.path.join(a.state, "secrets"), "a") as f:
        f.write(get("SecretAccessKey") + "\n" + get("SessionToken") + "\n")
    return {"AccessKeyId": get("AccessKeyId"),
            "SecretAccessKey": get("SecretAccessKey"),
            "Token": get("SessionToken"), "Expiration": iso(expiry())}


def jwt():
    b64 = lambda d: base64.urlsafe_b64encode(
        json.dumps(d).encode()).rstrip(b"=").decode()
    now = int(time.time())
    exp = int(expiry())
    claims = {"aud": "https://storage.azure.com",
              "iss": "https://sts.windows.net/%s/" % a.tenant,
              "iat": now - 60, "nbf": now - 60, "exp": exp,
              "appid": a.client_id, "tid": a.tenant,
              "oid": "00000000-0000-0000-0000-000000000001"}
    sig = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=")
    tok = b64({"alg": "RS256", "typ": "JWT"}) + "." + b64(claims) + "." + \
        sig.decode()
    with lock, open(os.path.join(a.state, "secrets"), "a") as f:
        f.write(tok + "\n")
    return tok


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("credserver: %s\n" % (fmt % args))

    def reply(self, code, body, ctype="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def form(self):
        n = int(self.headers.get("Content-Length") or 0)
        return dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))

    def denied(self):
        return state["mode"] == "deny"

    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        if self.path != "/latest/api/token":
            return self.reply(404, "not found")
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(400, "missing TTL")
        tok = secrets.token_urlsafe(24)
        imds_tokens.add(tok)
        self.reply(200, tok)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path == "/_control":
            for k, v in urllib.parse.parse_qsl(u.query):
                state[k] = int(v) if k == "lifetime" else v
            return self.reply(200, json.dumps(state))
        pre = "/latest/meta-data/iam/security-credentials/"
        if u.path.startswith(pre):
            if self.headers.get("X-aws-ec2-metadata-token") not in imds_tokens:
                return self.reply(401, "")
            role = u.path[len(pre):]
            if not role:
                return self.reply(200, "snaprole\n")
            if role != "snaprole":
                return self.reply(404, "not found")
            if self.denied():
                return self.reply(200, json.dumps({"Code": "AssumeRoleUnauthorizedAccess", "Message": "denied"}),
                                  "application/json")
            c = mint()
            c.update({"Code": "Success", "Type": "AWS-HMAC",
                      "LastUpdated": iso(time.time())})
            bump("imds")
            return self.reply(200, json.dumps(c), "application/json")
        if u.path == "/container":
            if self.headers.get("Authorization", "") != a.container_auth:
                return self.reply(401, json.dumps({"Code": "AccessDenied", "Message": "bad authorization token"}),
                                  "application/json")
            if self.denied():
                return self.reply(403, json.dumps({"Code": "AccessDenied", "Message": "denied"}),
                                  "application/json")
            bump("container")
            return self.reply(200, json.dumps(mint()), "application/json")
        if u.path == "/process":
            if self.denied():
                return self.reply(403, "denied")
            c = mint()
            bump("process")
            return self.reply(200, json.dumps({
                "Version": 1, "AccessKeyId": c["AccessKeyId"],
                "SecretAccessKey": c["SecretAccessKey"],
                "SessionToken": c["Token"], "Expiration": c["Expiration"]}),
                "application/json")
        self.reply(404, "not found")

    def sts_error(self, code, kind, msg):
        self.reply(code, "<ErrorResponse><Error><Type>Sender</Type><Code>%s"
                   "</Code><Message>%s</Message></Error></ErrorResponse>"
                   % (kind, msg), "text/xml")

    def do_POST(self):
        f = self.form()
        if self.path == "/sts":
            with open(a.token_file) as t:
                want = t.read().strip()
            if f.get("Action") != "AssumeRoleWithWebIdentity":
                return self.sts_error(400, "InvalidAction", "bad action")
            if f.get("WebIdentityToken") != want or self.denied():
                return self.sts_error(400, "InvalidIdentityToken",
                                      "The web identity token is not valid")
            if f.get("RoleArn") != a.role:
                return self.sts_error(403, "AccessDenied",
                                      "Not authorized to assume the role")
            if not f.get("RoleSessionName"):
                return self.sts_error(400, "ValidationError",
                                      "RoleSessionName is required")
            c = mint()
            bump("sts")
            return self.reply(200, (
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                "<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s"
                "</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s"
                "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                "</AssumeRoleWithWebIdentityResponse>") % (
                    c["AccessKeyId"], c["SecretAccessKey"], c["Token"],
                    c["Expiration"]), "text/xml")
        if self.path == "/%s/oauth2/v2.0/token" % a.tenant:
            if (f.get("grant_type") != "client_credentials"
                    or f.get("scope") != "https://storage.azure.com/.default"):
                return self.reply(400, json.dumps({
                    "error": "invalid_request",
                    "error_description": "AADSTS900144: bad grant or scope"}),
                    "application/json")
            if f.get("client_assertion_type") == \
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                with open(a.token_file) as t:
                    ok = f.get("client_assertion") == t.read().strip()
            else:
                ok = f.get("client_secret") == a.client_secret
            if f.get("client_id") != a.client_id or not ok or self.denied():
                return self.reply(401, json.dumps({
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client "
                    "secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client "
                    "secret ID, for a secret added to app '%s'." % a.client_id}),
                    "application/json")
            bump("entra")
            life = state["lifetime"]
            return self.reply(200, json.dumps({
                "token_type": "Bearer", "expires_in": life,
                "ext_expires_in": life, "access_token": jwt()}),
                "application/json")
        self.reply(404, "not found")


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
