#!/usr/bin/env python3
"""ext-authz's OCI image, run unpacked as a container runtime would, against
the real OpenID provider (tests/oidc). `make image-test` runs it after
`make image`. Python 3 standard library, node and openssl.

1. Reproducible: packaging the same binary again (tools/oci/image_oci.py,
   same tag, revision and SOURCE_DATE_EPOCH) gives byte-identical files.
2. Unpacked here, independently of the tool: index.json -> manifest ->
   config -> layer, each blob checked against its descriptor's digest and
   size, the layer's uncompressed digest against the config's diff_ids.
3. Run as the image would be: the config's Entrypoint + Cmd, only its Env
   (plus the settings a Deployment gives it), chrooted into the unpacked
   root at its WorkingDir, as its User with no supplementary groups. The
   IAM objects and signing key are files inside the root, where
   k8s/base/deployment.yaml mounts them.
4. It serves /healthz, /readyz and its JWKS (the key we gave it), logs
   JSON (the image's Env), exchanges a token from the IdP for a function
   token that the `jose` npm package verifies against that JWKS, runs as
   a non-root user with no capabilities, and stops cleanly on SIGTERM.

Needs root for the chroot and the user switch (CI runs as root); as
another user it runs the entrypoint in a user namespace (`unshare`).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OIDC_DIR = ROOT / "tests" / "oidc"
GATEWAY = "https://gateway.example.com"
CLIENT_ID = "openfaas-demo"
CLIENT_SECRET = "image-test-secret"
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
# Where k8s/base/deployment.yaml mounts them (and ext-authz's defaults).
IAM_DIR = "etc/faas-mesh-auth/iam"
KEY_DIR = "var/run/faas-mesh-auth/keys"
# Where the pin check pretends the image was pushed.
PIN_REPO = "registry.example.com/faas-mesh-auth/ext-authz"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 25.0


class Failed(Exception):
    pass


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise Failed(msg)


def step(msg: str) -> None:
    print(f"image-test: {msg}", flush=True)


# ---- 1. reproducible ----------------------------------------------------


def check_reproducible(layout: Path, binary: Path, tag: str, revision: str, kubectl: str) -> None:
    """Packages the binary again, with a kustomize pin, and compares."""
    with tempfile.TemporaryDirectory(prefix="image-rebuild-") as tmp_s:
        tmp = Path(tmp_s)
        pin = tmp / "pin"
        out = subprocess.run(
            [sys.executable, str(ROOT / "tools/oci/image_oci.py"), "build", "--binary", str(binary),
             "--out", str(tmp / "out"), "--tag", tag, "--revision", revision,
             "--repo", PIN_REPO, "--pin", str(pin)],
            capture_output=True, text=True, check=False,
        )
        expect(out.returncode == 0, f"rebuild failed:\n{out.stdout}{out.stderr}")
        again = tmp / "out" / "ext-authz"
        files = sorted(p.relative_to(layout).as_posix() for p in layout.rglob("*") if p.is_file())
        files2 = sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file())
        expect(files == files2, f"rebuild wrote other files: {files} vs {files2}")
        for rel in files:
            expect((layout / rel).read_bytes() == (again / rel).read_bytes(), f"rebuild: {rel} differs")
        archive = layout.parent / "ext-authz.tar"
        expect(archive.read_bytes() == (tmp / "out" / "ext-authz.tar").read_bytes(), "rebuild: the archive differs")
        step(f"reproducible: a second packaging gives the same {len(files)} files and archive")
        check_pin(kubectl, tmp, pin, (layout.parent / "ext-authz.digest").read_text().strip())


def check_pin(kubectl: str, tmp: Path, pin: Path, digest: str) -> None:
    """k8s/base with the printed Component runs the image by its digest."""
    shutil.copytree(ROOT / "k8s", tmp / "k8s")
    overlay = tmp / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"resources:\n- ../k8s/base\ncomponents:\n- ../{pin.name}\n"
    )
    out = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False)
    expect(out.returncode == 0, f"{kubectl} kustomize with the pin failed:\n{out.stderr}")
    images = [ln.split("image:", 1)[1].strip() for ln in out.stdout.splitlines() if ln.strip().startswith("image:")]
    expect(images == [f"{PIN_REPO}@{digest}"], f"rendered images {images}, expected {PIN_REPO}@{digest}")
    step(f"pinned: k8s/base with the Component runs {images[0]}")


# ---- 2. unpack ----------------------------------------------------------


def blob(layout: Path, desc: dict, what: str) -> bytes:
    digest = desc.get("digest", "")
    expect(digest.startswith("sha256:"), f"{what}: digest {digest!r}")
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    expect("sha256:" + hashlib.sha256(data).hexdigest() == digest, f"{what}: content does not hash to {digest}")
    expect(len(data) == desc.get("size"), f"{what}: {len(data)} bytes, descriptor says {desc.get('size')}")
    return data


def unpack(layout: Path, rootfs: Path) -> tuple[str, dict]:
    """Returns the manifest digest and the config's `config` (how to run)."""
    index = json.loads((layout / "index.json").read_bytes())
    expect(len(index["manifests"]) == 1, "index.json: one manifest")
    mdesc = index["manifests"][0]
    manifest = json.loads(blob(layout, mdesc, "manifest"))
    config = json.loads(blob(layout, manifest["config"], "config"))
    expect(config["os"] == "linux" and config["architecture"] == "amd64", f"platform {config['os']}/{config['architecture']}")
    diff_ids = config["rootfs"]["diff_ids"]
    expect(len(diff_ids) == len(manifest["layers"]), "one diff_id per layer")
    rootfs.mkdir()
    for desc, diff_id in zip(manifest["layers"], diff_ids):
        expect(desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip", f"layer type {desc['mediaType']}")
        tar_bytes = gzip.decompress(blob(layout, desc, "layer"))
        expect("sha256:" + hashlib.sha256(tar_bytes).hexdigest() == diff_id, "layer: diff_id mismatch")
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            for m in tar.getmembers():
                expect(m.uid == 0 and m.gid == 0, f"{m.name}: owned by {m.uid}:{m.gid}, not root")
                expect(not (m.mode & 0o022), f"{m.name}: writable by group or others")
            # Modes and owners as the tar says, as a runtime does; the
            # checks above bound what they can be. (Pythons before 3.11.4
            # have no extraction filters and behave as "fully_trusted".)
            if hasattr(tarfile, "fully_trusted_filter"):
                tar.extractall(rootfs, filter="fully_trusted")
            else:
                tar.extractall(rootfs)
    return mdesc["digest"], config["config"]


# ---- the IdP and ext-authz's inputs -------------------------------------


def iam_yaml(issuer: str) -> str:
    return f"""apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata:
  name: test-idp
  namespace: openfaas
spec:
  iss: {issuer}
  aud:
    - openfaas
  tokenExpiry: 30m
---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: invoke-policy
  namespace: openfaas
spec:
  statement:
  - sid: 1-invoke-policy
    action: ["Function:Invoke"]
    effect: Allow
    resource: ["dev:*"]
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata:
  name: invoke-role
  namespace: openfaas
spec:
  policy:
  - invoke-policy
  condition:
    principal:
      jwt:sub:
        - {CLIENT_ID}
    StringEqual:
      jwt:iss: ["{issuer}"]
"""


def signing_key(key_dir: Path) -> tuple[str, str]:
    """A P-256 key as the docs make one (openssl), and its public x, y."""
    pem = subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"],
        capture_output=True, check=True,
    ).stdout
    (key_dir / "0001.pem").write_bytes(pem)
    der = subprocess.run(
        ["openssl", "ec", "-pubout", "-outform", "DER"], input=pem, capture_output=True, check=True
    ).stdout
    point = der[-65:]
    expect(point[0] == 4, "openssl gave no uncompressed P-256 point")
    return b64url(point[1:33]), b64url(point[33:])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Proc:
    """A child whose stdout is read line by line with a deadline and whose
    stderr goes to a file."""

    def __init__(self, name: str, argv: list[str], log: Path, **kw):
        self.name = name
        self.log = log
        self.err = open(log, "wb")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err, **kw)
        self.buf = b""

    def line_starting(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.decode(errors="replace").startswith(prefix):
                    return line.decode()
            left = deadline - time.monotonic()
            if left <= 0 or self.p.poll() is not None and not select.select([self.p.stdout], [], [], 0)[0]:
                raise Failed(f"{self.name}: no '{prefix}' line (exit {self.p.poll()}):\n{self.stderr()}")
            ready, _, _ = select.select([self.p.stdout], [], [], left)
            if ready:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk and self.p.poll() is not None:
                    continue
                self.buf += chunk

    def stderr(self) -> str:
        if not self.err.closed:
            self.err.flush()
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise Failed(f"{self.name}: still running {timeout}s after SIGTERM") from None
        self.err.close()
        return self.p.returncode


def http(method: str, url: str, form: list[tuple[str, str]] | None = None) -> tuple[int, dict, bytes]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/x-www-form-urlencoded")
    # Loopback only: no proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def wait_until(what: str, fn, timeout: float = START_TIMEOUT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = fn()
            if result:
                return result
        except (OSError, ValueError) as e:
            last = e
        time.sleep(0.05)
    raise Failed(f"{what}: not within {timeout}s (last error: {last})")


# ---- 3. run the entrypoint as the image would ----------------------------


def entrypoint_argv(run: dict) -> list[str]:
    argv = (run.get("Entrypoint") or []) + (run.get("Cmd") or [])
    expect(bool(argv), "the config has no Entrypoint or Cmd")
    return argv


def user_ids(run: dict) -> tuple[int, int]:
    user = run.get("User", "")
    uid, _, gid = user.partition(":")
    expect(uid.isdigit() and (gid == "" or gid.isdigit()), f"User {user!r} is not numeric uid[:gid]")
    uid_n = int(uid)
    expect(uid_n != 0, f"User {user!r} is root")
    return uid_n, int(gid) if gid else uid_n


def start_ext_authz(rootfs: Path, run: dict, logs: Path) -> Proc:
    uid, gid = user_ids(run)
    workdir = run.get("WorkingDir") or "/"
    env = dict(e.split("=", 1) for e in run.get("Env", []))
    # What the Deployment adds: the issuer, and loopback ports for this test.
    env.update(
        EXT_AUTHZ_ISSUER=GATEWAY,
        EXT_AUTHZ_HTTP_ADDR="127.0.0.1:0",
        EXT_AUTHZ_GRPC_ADDR="127.0.0.1:0",
        EXT_AUTHZ_RELOAD_INTERVAL="1s",
    )
    argv = entrypoint_argv(run)
    if os.geteuid() == 0:
        def enter():
            os.chroot(rootfs)
            os.chdir(workdir)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

        return Proc("ext-authz", argv, logs / "ext-authz.log", env=env, preexec_fn=enter)
    # Not root: the same, in a user namespace where the image's ids exist.
    wrapped = ["unshare", "--user", f"--map-user={uid}", f"--map-group={gid}",
               f"--root={rootfs}", f"--wd={workdir}", "--"] + argv
    return Proc("ext-authz", wrapped, logs / "ext-authz.log", env=env)


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def run_test(layout: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="image-test-") as tmp_s:
        tmp = Path(tmp_s)
        os.chmod(tmp, 0o755)  # the image's user must reach the root inside
        rootfs = tmp / "rootfs"
        logs = tmp / "logs"
        logs.mkdir()
        digest, run = unpack(layout, rootfs)
        step(f"unpacked {digest}: Entrypoint {run.get('Entrypoint')} Cmd {run.get('Cmd')} "
             f"User {run.get('User')} WorkingDir {run.get('WorkingDir')} Env {run.get('Env')}")
        uid, gid = user_ids(run)

        idp = Proc(
            "oidc-provider",
            ["node", str(OIDC_DIR / "provider.mjs"), "--port", "0", "--host", "127.0.0.1",
             "--client-id", CLIENT_ID, "--audience", "openfaas", "--alg", "RS256"],
            logs / "oidc.log", cwd=OIDC_DIR,
            env={**{k: v for k, v in os.environ.items() if k != "DEBUG"}, "OIDC_CLIENT_SECRET": CLIENT_SECRET},
        )
        authz = None
        try:
            issuer = idp.line_starting("issuer=", START_TIMEOUT).removeprefix("issuer=")
            # The mounted ConfigMap and Secret, as the Deployment has them:
            # root-owned, the key readable by the pod's group (fsGroup).
            iam = rootfs / IAM_DIR
            keys = rootfs / KEY_DIR
            iam.mkdir(parents=True)
            keys.mkdir(parents=True)
            (iam / "iam.yaml").write_text(iam_yaml(issuer))
            x, y = signing_key(keys)
            if os.geteuid() == 0:
                os.chown(keys / "0001.pem", 0, gid)
                os.chmod(keys / "0001.pem", 0o440)

            authz = start_ext_authz(rootfs, run, logs)
            line = authz.line_starting("listening ", START_TIMEOUT)
            addrs = dict(part.split("=", 1) for part in line.split()[1:])
            base = f"http://{addrs['http']}"
            step(f"entrypoint up: {line}")

            # Non-root, without capabilities.
            st = proc_status(authz.p.pid)
            host_uids = {int(u) for u in st["Uid"].split()}
            host_gids = {int(g) for g in st["Gid"].split()}
            expect(0 not in host_uids, f"running as root: Uid {st['Uid']}")
            if os.geteuid() == 0:
                expect(host_uids == {uid} and host_gids == {gid}, f"Uid {st['Uid']} Gid {st['Gid']}, image says {uid}:{gid}")
                expect(st["Groups"] == "", f"supplementary groups {st['Groups']!r}")
            else:
                # Inside its namespace it is the image's user.
                inner = Path(f"/proc/{authz.p.pid}/uid_map").read_text().split()
                expect(inner[:1] == [str(uid)], f"uid_map {inner}, image says {uid}")
            expect(int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, f"capabilities {st['CapEff']}")
            exe = os.readlink(f"/proc/{authz.p.pid}/exe")
            expect(exe == str(rootfs / run["Entrypoint"][0].lstrip("/")), f"running {exe}, not the image's entrypoint")
            step(f"non-root: uid {st['Uid']}, gid {st['Gid']}, no capabilities, exe {exe}")

            for path in ("/healthz", "/readyz"):
                status = wait_until(f"GET {path}", lambda p=path: http("GET", base + p)[0] == 200)
                expect(status is True, f"GET {path}")
            step("/healthz and /readyz: 200")

            status, _, body = http("GET", base + "/.well-known/jwks.json")
            expect(status == 200, f"JWKS: HTTP {status}")
            jwks = json.loads(body)["keys"]
            expect(len(jwks) == 1, f"JWKS has {len(jwks)} keys, expected our one")
            k = jwks[0]
            expect((k["kty"], k["crv"], k["alg"], k["x"], k["y"]) == ("EC", "P-256", "ES256", x, y),
                   f"JWKS key {k} is not the one in {KEY_DIR}")
            step(f"JWKS: our key, kid {k['kid']}")

            # A client-credentials token from the IdP, exchanged for a
            # function token.
            doc = json.loads(http("GET", issuer + "/.well-known/openid-configuration")[2])
            status, _, body = http("POST", doc["token_endpoint"], [
                ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET),
                ("scope", "email"), ("grant_type", "client_credentials")])
            expect(status == 200, f"IdP token: HTTP {status} {body!r}")
            idp_token = json.loads(body)["access_token"]
            status, headers, body = http("POST", base + "/oauth/token", [
                ("subject_token", idp_token), ("subject_token_type", ID_TOKEN),
                ("grant_type", GRANT), ("scope", "function")])
            expect(status == 200, f"exchange: HTTP {status} {body!r}\n{authz.stderr()}")
            answer = json.loads(body)
            expect(answer["token_type"] == "Bearer" and answer["scope"] == "function", f"exchange answered {answer}")
            token = answer["access_token"]
            verified = subprocess.run(
                ["node", str(OIDC_DIR / "verify.mjs"), "--jwks", base + "/.well-known/jwks.json",
                 "--issuer", GATEWAY, "--audience", GATEWAY, "--alg", "ES256"],
                input=token, capture_output=True, text=True, cwd=OIDC_DIR, timeout=20, check=False,
            )
            expect(verified.returncode == 0, f"jose refused the exchanged token: {verified.stderr}")
            claims = json.loads(verified.stdout)
            expect(claims["header"]["kid"] == k["kid"], f"signed with {claims['header']['kid']}")
            expect(claims["payload"]["sub"] == f"fed:{CLIENT_ID}", f"sub {claims['payload']['sub']}")
            expect(claims["payload"]["function"]["permissions"] == ["dev:*"],
                   f"permissions {claims['payload']['function']}")
            step(f"exchange: IdP token -> function token for {claims['payload']['sub']}, "
                 f"permissions {claims['payload']['function']['permissions']}, verified by jose")

            code = authz.stop(STOP_TIMEOUT)
            log = authz.stderr()
            authz = None
            expect(code == 0, f"exit {code} after SIGTERM:\n{log}")
            lines = [ln for ln in log.splitlines() if ln.strip()]
            expect(bool(lines), "ext-authz logged nothing")
            for ln in lines:
                try:
                    json.loads(ln)
                except ValueError:
                    raise Failed(f"a log line is not JSON (the image's Env asks for JSON): {ln!r}") from None
            step(f"SIGTERM: exit 0; {len(lines)} log lines, all JSON")
        finally:
            if authz is not None:
                authz.stop(STOP_TIMEOUT)
            idp.stop(10)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layout", required=True, type=Path)
    p.add_argument("--binary", required=True, type=Path, help="the binary the layout was built from")
    p.add_argument("--tag", required=True)
    p.add_argument("--revision", default="")
    p.add_argument("--kubectl", default="kubectl", help="renders k8s/base with the digest pin")
    args = p.parse_args(argv)
    started = time.monotonic()
    try:
        for tool in ("node", "openssl"):
            expect(subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode == 0,
                   f"{tool} is not installed")
        expect((OIDC_DIR / "node_modules" / "oidc-provider").is_dir(),
               f"{OIDC_DIR}/node_modules is missing: run `make setup`")
        if os.geteuid() != 0:
            step("not root: running the entrypoint in a user namespace (unshare)")
        check_reproducible(args.layout, args.binary, args.tag, args.revision, args.kubectl)
        run_test(args.layout)
    except (Failed, OSError, KeyError, ValueError, subprocess.CalledProcessError) as e:
        print(f"image-test: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    step(f"passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
