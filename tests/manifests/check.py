#!/usr/bin/env python3
"""`make manifests`: static checks of k8s/ and of the OCI packaging.

* every YAML file in k8s/ parses (duplicate keys are errors);
* the CRDs are what k8s/crds/generate.py writes, and are structural
  schemas Kubernetes would accept (types everywhere, RE2-only patterns, CEL
  rules this file knows how to evaluate);
* the accept cases in tests/manifests/cases validate against their CRD's
  openAPIV3Schema (as JSON Schema draft 4, unknown fields refused as
  `kubectl apply` does by default, CEL rules evaluated); each reject
  case's marked object does not; the examples in k8s/examples are refused
  for their EDIT-ME placeholders alone and validate once edited as
  examples-edited.yaml says;
* `kubectl kustomize` renders every layout and every component, and the
  rendered objects agree with each other and with ext-authz and the
  filter (ports, names, the issuer, the ext_authz settings authz.rs
  expects, ...); AuthorizationPolicy, PeerAuthentication and NetworkPolicy
  objects validate against the fields of their APIs;
* the bypass-closing policies select the pods the WasmPlugin and the
  gateway's CUSTOM policy select, and a small evaluator of Istio's rule
  matching shows which requests each gateway policy (and component) sends
  to ext-authz;
* tools/oci/wasm_oci.py writes a valid, reproducible layout and archive,
  and its verifier catches tampering.

Needs PyYAML and jsonschema (tests/manifests/requirements.txt, installed
into .venv by `make setup`) and kubectl ($KUBECTL). Prints
`manifests: N passed, M failed`; exits 1 on any failure.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CASES = Path(__file__).resolve().parent / "cases"
KUBECTL = os.environ.get("KUBECTL", "kubectl")
RENDER_DIR = ROOT / "target" / "manifests"
EXPECT = "faas-mesh-auth.test/expect"

sys.dont_write_bytecode = True  # no __pycache__ in k8s/ or tools/
sys.path.insert(0, str(K8S / "crds"))
sys.path.insert(0, str(ROOT / "tools" / "oci"))
import generate  # noqa: E402  (k8s/crds/generate.py)
import wasm_oci  # noqa: E402  (tools/oci/wasm_oci.py)

# --- a tiny runner --------------------------------------------------------

CHECKS: list[tuple[str, object]] = []


def check(name: str):
    def register(fn):
        CHECKS.append((name, fn))
        return fn

    return register


def run() -> int:
    passed = failed = 0
    i = 0
    while i < len(CHECKS):  # checks may register more checks
        name, fn = CHECKS[i]
        i += 1
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
            print(f"FAIL {name}: {detail}")
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"manifests: {passed} passed, {failed} failed")
    return 1 if failed else 0


# --- YAML -----------------------------------------------------------------


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last
    silently; Kubernetes' decoders refuse them)."""


def _mapping(loader, node, deep=False):
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_all(path: Path) -> list:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]


def load_one(path: Path, kind: str | None = None) -> dict:
    docs = [d for d in load_all(path) if kind is None or d.get("kind") == kind]
    assert len(docs) == 1, f"{path}: expected one {kind or 'document'}, found {len(docs)}"
    return docs[0]


def yaml_files() -> list[Path]:
    return sorted(
        p
        for p in K8S.rglob("*")
        if p.is_file() and (p.suffix in (".yaml", ".yml") or p.name == "Kustomization")
    )


@check("k8s/: every YAML file parses, without duplicate keys")
def _parse_all():
    files = yaml_files()
    assert len(files) >= 20, f"only {len(files)} YAML files found"
    for p in files:
        try:
            load_all(p)
        except yaml.YAMLError as e:
            raise AssertionError(f"{p.relative_to(ROOT)}: {e}") from None


DOC_EXAMPLES = ROOT / "docs" / "examples"


@check("docs/examples/: every YAML file parses; objects are named; the workflow may request an OIDC token")
def _doc_examples():
    files = sorted(p for p in DOC_EXAMPLES.glob("*") if p.suffix in (".yaml", ".yml"))
    assert files, f"no YAML files in {DOC_EXAMPLES.relative_to(ROOT)}"
    workflows = 0
    for p in files:
        try:
            docs = load_all(p)
        except yaml.YAMLError as e:
            raise AssertionError(f"{p.relative_to(ROOT)}: {e}") from None
        for d in docs:
            if "jobs" in d:  # a GitHub Actions workflow
                workflows += 1
                assert d.get("permissions", {}).get("id-token") == "write", (
                    f"{p.relative_to(ROOT)}: a workflow needs permissions.id-token: write"
                )
                for job, spec in d["jobs"].items():
                    assert spec.get("steps"), f"{p.relative_to(ROOT)}: job {job} has no steps"
            else:  # a Kubernetes object
                for key in ("apiVersion", "kind"):
                    assert d.get(key), f"{p.relative_to(ROOT)}: an object without {key}"
                assert d.get("metadata", {}).get("name"), f"{p.relative_to(ROOT)}: a {d['kind']} without a name"
    assert workflows, "docs/examples/ holds no GitHub Actions workflow"


# --- CRDs -----------------------------------------------------------------

CRD_FILES = {kind: K8S / "crds" / name for name, kind in [
    ("iam.openfaas.com_jwtissuers.yaml", "JwtIssuer"),
    ("iam.openfaas.com_policies.yaml", "Policy"),
    ("iam.openfaas.com_roles.yaml", "Role"),
]}


def crd(kind: str) -> dict:
    return load_one(CRD_FILES[kind], "CustomResourceDefinition")


def schema(kind: str) -> dict:
    (version,) = crd(kind)["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


# Every CEL rule the CRDs use, as Python. A rule not listed here fails the
# structural check, so no rule goes unevaluated by the tests.
CEL_RULES = {
    generate.CLAIM_KEY_RULE: lambda m: all(k.startswith("jwt:") and len(k) > 4 for k in m),
    generate.PLACEHOLDER_RULE: lambda v: generate.PLACEHOLDER not in v,
}


@check("crds: the placeholder the CRDs refuse is the one the engine refuses")
def _placeholder_shared():
    src = (ROOT / "core" / "src" / "iam" / "wire.rs").read_text(encoding="utf-8")
    m = re.search(r'pub const PLACEHOLDER: &str = "([^"]+)";', src)
    assert m and m.group(1) == generate.PLACEHOLDER, f"wire.rs {m and m.group(1)!r} vs generate.py {generate.PLACEHOLDER!r}"
    # Where the engine looks for it (compile.rs) is where the CRDs do.
    for kind, paths in {
        "JwtIssuer": ["iss", "issInternal", "aud[]"],
        "Role": ["principal.*[]", "condition.StringEqual.*[]", "condition.principal.*[]"],
    }.items():
        spec = schema(kind)["properties"]["spec"]
        for path in paths:
            node = spec
            for part in path.split("."):
                name, items = part.removesuffix("[]"), part.endswith("[]")
                node = node["additionalProperties"] if name == "*" else node["properties"][name]
                if items:
                    node = node["items"]
            rules = [v["rule"] for v in node.get("x-kubernetes-validations", [])]
            assert generate.PLACEHOLDER_RULE in rules, f"{kind} spec.{path} does not refuse the placeholder"


@check("crds: the YAML files are what k8s/crds/generate.py writes")
def _crds_fresh():
    for name, doc in generate.FILES.items():
        text = (K8S / "crds" / name).read_text(encoding="utf-8")
        assert text == generate.render(doc), f"{name} is stale: run python3 k8s/crds/generate.py"
        assert yaml.load(text, Loader=StrictLoader) == doc, f"{name} does not read back as written"


_JUNCTOR_FORBIDDEN = {"type", "description", "default", "additionalProperties", "nullable"}
_NOT_RE2 = re.compile(r"\(\?[=!<]|\\[1-9]|\(\?P=")


def structural_problems(node: dict, path: str) -> list[str]:
    """The parts of Kubernetes' structural-schema rules that bite in practice."""
    out = []
    if not node.get("x-kubernetes-preserve-unknown-fields") and not node.get(
        "x-kubernetes-int-or-string"
    ):
        if "type" not in node:
            out.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        out.append(f"{path}: both properties and additionalProperties")
    if node.get("uniqueItems"):
        out.append(f"{path}: uniqueItems is not allowed (use x-kubernetes-list-type: set)")
    if "pattern" in node:
        try:
            re.compile(node["pattern"])
        except re.error as e:
            out.append(f"{path}: pattern does not compile: {e}")
        if _NOT_RE2.search(node["pattern"]):
            out.append(f"{path}: pattern uses look-around or back-references (not RE2)")
    for v in node.get("x-kubernetes-validations", []):
        if v.get("rule") not in CEL_RULES:
            out.append(f"{path}: CEL rule unknown to tests/manifests/check.py: {v.get('rule')}")
        if not v.get("message"):
            out.append(f"{path}: CEL rule without a message")
    for junctor in ("anyOf", "allOf", "oneOf"):
        for i, sub in enumerate(node.get(junctor, [])):
            bad = _JUNCTOR_FORBIDDEN & set(sub)
            if bad:
                out.append(f"{path}.{junctor}[{i}]: may not set {sorted(bad)}")
            for req in sub.get("required", []):
                if req not in node.get("properties", {}):
                    out.append(f"{path}.{junctor}[{i}]: requires undeclared field {req}")
    for k, sub in node.get("properties", {}).items():
        out += structural_problems(sub, f"{path}.{k}")
    if isinstance(node.get("additionalProperties"), dict):
        out += structural_problems(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        out += structural_problems(node["items"], f"{path}[]")
    return out


@check("crds: group, names, scope, one served storage version, structural schemas")
def _crds_structural():
    for kind, path in CRD_FILES.items():
        c = crd(kind)
        s = c["spec"]
        assert c["apiVersion"] == "apiextensions.k8s.io/v1"
        assert s["group"] == "iam.openfaas.com" and s["scope"] == "Namespaced"
        assert s["names"]["kind"] == kind
        assert c["metadata"]["name"] == f"{s['names']['plural']}.{s['group']}"
        (v,) = s["versions"]
        assert v["name"] == "v1" and v["served"] and v["storage"]
        cols = [col["name"] for col in v["additionalPrinterColumns"]]
        assert "Age" in cols and len(cols) >= 2, f"{kind}: printer columns {cols}"
        problems = structural_problems(v["schema"]["openAPIV3Schema"], kind)
        assert not problems, "\n".join(problems)


def strict(node):
    """The schema as `kubectl apply` enforces it: unknown fields refused
    (server-side strict field validation; the API server would otherwise
    prune them silently)."""
    node = copy.deepcopy(node)

    def walk(n):
        if isinstance(n, dict):
            if "properties" in n and "additionalProperties" not in n and not n.get(
                "x-kubernetes-preserve-unknown-fields"
            ):
                n["additionalProperties"] = False
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(node)
    return node


def cel_errors(node: dict, value, path: str) -> list[str]:
    out = []
    for v in node.get("x-kubernetes-validations", []):
        if not CEL_RULES[v["rule"]](value):
            out.append(f"{path}: {v['message']}")
    if isinstance(value, dict):
        for k, sub in node.get("properties", {}).items():
            if k in value:
                out += cel_errors(sub, value[k], f"{path}.{k}")
        if isinstance(node.get("additionalProperties"), dict):
            for k, item in value.items():
                out += cel_errors(node["additionalProperties"], item, f"{path}.{k}")
    if isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            out += cel_errors(node["items"], item, f"{path}[{i}]")
    return out


DNS_SUBDOMAIN = re.compile(f"^{generate.DNS_SUBDOMAIN}$")


def validation_errors(doc: dict) -> list[str]:
    """Why the API server would refuse this IAM object (empty: it accepts)."""
    kind = doc.get("kind")
    if doc.get("apiVersion") != "iam.openfaas.com/v1" or kind not in CRD_FILES:
        return [f"not an iam.openfaas.com/v1 JwtIssuer, Policy or Role: {doc.get('apiVersion')} {kind}"]
    s = schema(kind)
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in jsonschema.Draft4Validator(strict(s)).iter_errors(doc)
    ]
    errors += cel_errors(s, doc, "")
    name = doc.get("metadata", {}).get("name", "")
    if not (DNS_SUBDOMAIN.match(name) and len(name) <= 253):
        errors.append(f"metadata.name {name!r} is not a Kubernetes object name")
    return errors


def label(path: Path, doc: dict) -> str:
    return f"{path.relative_to(ROOT)}: {doc.get('kind')} {doc.get('metadata', {}).get('name')!r}"


def example_files() -> list[Path]:
    return sorted((K8S / "examples").glob("*.yaml"))


EDITED = Path(__file__).resolve().parent / "examples-edited.yaml"


def edited(text: str) -> str:
    """An example file as a user edits it: every placeholder replaced."""
    with open(EDITED, encoding="utf-8") as f:
        table = yaml.load(f, Loader=StrictLoader)
    for placeholder in sorted(table, key=len, reverse=True):
        text = text.replace(placeholder, table[placeholder])
    return text


@check("examples: refused as shipped, each file by its placeholders alone; valid once edited")
def _examples_valid():
    seen = 0
    message = generate.no_placeholder({})["x-kubernetes-validations"][0]["message"]
    for path in example_files():
        text = path.read_text(encoding="utf-8")
        refused = 0
        for doc in load_all(path):
            errors = validation_errors(doc)
            if generate.PLACEHOLDER in json.dumps(doc["spec"]) and doc["kind"] != "Policy":
                assert errors, f"{label(path, doc)} holds a placeholder but validates"
                assert all(message in e for e in errors), f"{label(path, doc)}: refused for more than placeholders:\n  " + "\n  ".join(errors)
                refused += 1
            else:
                assert not errors, f"{label(path, doc)}:\n  " + "\n  ".join(errors)
            assert doc["metadata"].get("namespace") == "openfaas", f"{label(path, doc)}: namespace"
            seen += 1
        assert refused, f"{path.relative_to(ROOT)}: nothing in it is refused as shipped"
        after = [d for d in yaml.load_all(edited(text), Loader=StrictLoader) if d]
        assert generate.PLACEHOLDER not in json.dumps(after), f"{path.name}: a placeholder {EDITED.name} does not replace"
        for doc in after:
            if doc:
                errors = validation_errors(doc)
                assert not errors, f"{path.name} edited: {doc['kind']} {doc['metadata']['name']}:\n  " + "\n  ".join(errors)
    assert seen >= 12, f"only {seen} example objects"
    with open(EDITED, encoding="utf-8") as f:
        assert yaml.load(f, Loader=StrictLoader)["EDIT-ME-gateway-url"] == params_issuer()


# Issuers strangers cannot own: the providers' own and the cluster's.
REAL_ISSUERS = {"https://token.actions.githubusercontent.com", "https://kubernetes.default.svc.cluster.local"}


@check("examples: the docs' kinds and issuers are there, and nothing names an identity a stranger could own")
def _examples_coverage():
    docs = [d for p in example_files() for d in load_all(p)]
    kinds = {d["kind"] for d in docs}
    assert kinds == {"JwtIssuer", "Policy", "Role"}, kinds
    issuers = [d for d in docs if d["kind"] == "JwtIssuer"]
    iss = {d["spec"]["iss"] for d in issuers}
    assert REAL_ISSUERS <= iss, f"no JwtIssuer for {REAL_ISSUERS - iss}"
    assert any("keycloak" in i for i in iss) and any("auth0.com" in i for i in iss)
    for d in issuers:
        assert d["spec"]["iss"] in REAL_ISSUERS or generate.PLACEHOLDER in d["spec"]["iss"], d["spec"]["iss"]
        assert all(generate.PLACEHOLDER in a for a in d["spec"]["aud"]), f"{d['metadata']['name']}: aud is hard-coded"
    text = "".join(p.read_text(encoding="utf-8") for p in example_files())
    for stranger in ("example-org", "example.eu.auth0.com", "gateway.example.com", "jwt:repository:", "jwt:client_id"):
        assert stranger not in text, f"k8s/examples still mentions {stranger}"
    roles = [d for d in docs if d["kind"] == "Role"]
    gha = [r for r in roles if "https://token.actions.githubusercontent.com" in r["spec"]["condition"]["StringEqual"]["jwt:iss"]]
    assert gha and all(
        "jwt:repository_id" in r["spec"]["principal"] and "jwt:repository_owner_id" in r["spec"]["condition"]["StringEqual"]
        for r in gha
    ), "GitHub: match repository_id and repository_owner_id"
    assert any(
        any(v.startswith("system:serviceaccount:") for v in d["spec"].get("principal", {}).get("jwt:sub", []))
        for d in roles
    )
    assert any("principal" in d["spec"].get("condition", {}) for d in roles), "docs' principal-in-condition form"


def _case_checks():
    accept = sorted((CASES / "accept").glob("*.yaml"))
    reject = sorted((CASES / "reject").glob("*.yaml"))
    assert len(accept) >= 4 and len(reject) >= 10

    for path in accept:
        def f(path=path):
            for doc in load_all(path):
                errors = validation_errors(doc)
                assert not errors, f"{label(path, doc)} should validate:\n  " + "\n  ".join(errors)
        CHECKS.append((f"cases: accept/{path.name} validates", f))

    for path in reject:
        def f(path=path):
            docs = load_all(path)
            marked = [d for d in docs if d.get("metadata", {}).get("annotations", {}).get(EXPECT) == "reject"]
            assert len(marked) == 1, f"{path.name}: mark exactly one object {EXPECT}: reject"
            for doc in docs:
                errors = validation_errors(doc)
                if doc is marked[0]:
                    assert errors, f"{label(path, doc)} validates, but the CRD schema must refuse it"
                else:
                    assert not errors, f"{label(path, doc)} (supporting) should validate: {errors}"
        CHECKS.append((f"cases: reject/{path.name} is refused by the schema", f))


@check("cases: accept and reject cases found")
def _cases():
    _case_checks()


# --- kustomize layouts ----------------------------------------------------

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def layouts() -> list[Path]:
    """Every folder with a kustomization that is not a Component."""
    out = []
    for p in sorted(K8S.rglob("*")):
        if p.is_file() and p.name in KUSTOMIZATION_NAMES:
            if load_one(p).get("kind", "Kustomization") != "Component":
                out.append(p.parent)
    return out


RENDERED: dict[str, list[dict]] = {}


def rendered(rel: str) -> list[dict]:
    if rel not in RENDERED:
        out = subprocess.run(
            [KUBECTL, "kustomize", str(K8S / rel)], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, f"{KUBECTL} kustomize k8s/{rel} failed:\n{out.stderr}"
        RENDER_DIR.mkdir(parents=True, exist_ok=True)
        (RENDER_DIR / (rel.replace("/", "-") + ".yaml")).write_text(out.stdout, encoding="utf-8")
        RENDERED[rel] = [d for d in yaml.load_all(out.stdout, Loader=StrictLoader) if d]
    return RENDERED[rel]


def obj(rel: str, kind: str, name: str | None = None) -> dict:
    found = [d for d in rendered(rel) if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"k8s/{rel}: expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


EXPECTED_LAYOUTS = {
    "base", "examples", "function", "istio/enforce", "istio/audit", "ingress", "gateway-authz", "monitoring",
}


@check("kustomize: the layouts are the documented ones")
def _layouts():
    found = {str(p.relative_to(K8S)) for p in layouts()}
    assert found == EXPECTED_LAYOUTS, f"layouts {sorted(found)}; update EXPECTED_LAYOUTS and k8s/README.md"
    for rel in sorted(found):
        CHECKS.append((f"kustomize: k8s/{rel} renders", lambda rel=rel: _renders(rel)))


CLUSTER_SCOPED = {"CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding"}


def _renders(rel: str):
    docs = rendered(rel)
    assert docs, f"k8s/{rel} renders nothing"
    for d in docs:
        assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), d
        assert d["kind"] not in CLUSTER_SCOPED, f"k8s/{rel}: {d['kind']} does not belong in a layout"
        assert d["metadata"].get("namespace"), f"k8s/{rel}: {d['kind']} {d['metadata']['name']} has no namespace"
        if rel != "function":  # the sample function is not part of faas-mesh-auth
            part_of = d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of")
            assert part_of == "faas-mesh-auth", f"k8s/{rel}: {d['kind']} {d['metadata']['name']} lacks part-of"


def params_issuer() -> str:
    return load_one(K8S / "params" / "params.yaml", "ConfigMap")["data"]["issuer"]


def go_duration_seconds(text: str) -> float:
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9.]+)(ns|us|µs|ms|s|m|h)", text)
    assert parts and "".join(a + b for a, b in parts) == text, f"not a Go duration: {text}"
    return sum(float(n) * units[u] for n, u in parts)


def config_env_names() -> set[str]:
    src = (ROOT / "ext-authz" / "src" / "config.rs").read_text(encoding="utf-8")
    return set(re.findall(r'pub const ENV_[A-Z_]+: &str = "([A-Z_]+)";', src))


def config_default(flag_default: str) -> str:
    src = (ROOT / "ext-authz" / "src" / "config.rs").read_text(encoding="utf-8")
    m = re.search(rf'PathBuf::from\("({re.escape(flag_default)}[^"]*)"\)', src)
    assert m, f"no default {flag_default}* in config.rs"
    return m.group(1)


@check("base: the ext-authz Deployment")
def _deployment():
    d = obj("base", "Deployment", "ext-authz")
    spec, pod = d["spec"], d["spec"]["template"]["spec"]
    assert spec["replicas"] == 2
    assert d["metadata"]["namespace"] == "openfaas"
    (c,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    known = config_env_names()
    assert set(env) <= known, f"env vars ext-authz does not read: {sorted(set(env) - known)}"
    assert env["EXT_AUTHZ_ISSUER"] == params_issuer()
    assert env["EXT_AUTHZ_IAM_DIR"] == config_default("/etc/faas-mesh-auth") == "/etc/faas-mesh-auth/iam"
    assert env["EXT_AUTHZ_SIGNING_KEY_DIR"] == config_default("/var/run/faas-mesh-auth") == "/var/run/faas-mesh-auth/keys"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8080, "grpc": 9000}
    assert env["EXT_AUTHZ_HTTP_ADDR"].endswith(":8080") and env["EXT_AUTHZ_GRPC_ADDR"].endswith(":9000")
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for k in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][k]), f"resources.{k}"
    sc, psc = c["securityContext"], pod["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and sc["runAsNonRoot"] and psc["runAsNonRoot"]
    assert psc["seccompProfile"]["type"] == sc["seccompProfile"]["type"] == "RuntimeDefault"
    grace = go_duration_seconds(env["EXT_AUTHZ_SHUTDOWN_GRACE"])
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > grace + pre_stop, "grace period must outlast preStop + drain"
    assert pod["topologySpreadConstraints"], "spread the replicas"
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    assert mounts["iam"] == env["EXT_AUTHZ_IAM_DIR"] and vols["iam"]["configMap"]["name"] == "ext-authz-iam"
    assert mounts["signing-keys"] == env["EXT_AUTHZ_SIGNING_KEY_DIR"]
    assert vols["signing-keys"]["secret"]["secretName"] == "ext-authz-signing-key"
    assert env["EXT_AUTHZ_IDP_CA_FILE"].startswith(mounts["kube-ca"] + "/")
    assert all(m.get("readOnly") for m in c["volumeMounts"] if m["name"] != "tmp")


@check("base: Service, ServiceAccount, PodDisruptionBudget, and no RBAC or Secret")
def _base_others():
    svc = obj("base", "Service", "ext-authz")
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["http"]["port"] == 8080 and ports["grpc"]["port"] == 9000
    assert ports["grpc"]["appProtocol"] == "grpc"
    dep = obj("base", "Deployment", "ext-authz")
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    sa = obj("base", "ServiceAccount", "ext-authz")
    assert sa["automountServiceAccountToken"] is False
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "ext-authz"
    pdb = obj("base", "PodDisruptionBudget", "ext-authz")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    for rel in EXPECTED_LAYOUTS:
        docs = rendered(rel)
        rbac = [d["kind"] for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io/")]
        assert not rbac, f"k8s/{rel} grants RBAC ({rbac}): ext-authz needs none"
        assert "Secret" not in {d["kind"] for d in docs}, f"k8s/{rel} carries a Secret: keys are never committed"


@check("examples: the ConfigMap ext-authz-iam holds exactly the example files")
def _examples_configmap():
    cm = obj("examples", "ConfigMap", "ext-authz-iam")
    assert cm["metadata"]["namespace"] == "openfaas"
    files = {p.name: p.read_text(encoding="utf-8") for p in example_files()}
    assert cm["data"] == files, "ConfigMap data differs from k8s/examples/*.yaml"
    crs = [d for d in rendered("examples") if d["apiVersion"] == "iam.openfaas.com/v1"]
    want = [d for p in example_files() for d in load_all(p)]
    strip = lambda d: {**d, "metadata": {k: v for k, v in d["metadata"].items() if k != "labels"}}  # noqa: E731
    dump = lambda d: json.dumps(d, sort_keys=True)  # noqa: E731
    assert sorted(map(dump, map(strip, crs))) == sorted(map(dump, want)), "rendered CRs differ from the files"


def wasmplugin(rel: str) -> dict:
    return obj(rel, "WasmPlugin", "faas-mesh-auth")


@check("istio: the WasmPlugin (enforce) and its audit overlay")
def _wasmplugin():
    svc = obj("base", "Service", "ext-authz")
    http_port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
    fn = obj("function", "Deployment", "env")
    fn_port = fn["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    labels = fn["spec"]["template"]["metadata"]["labels"]
    enforce, audit = wasmplugin("istio/enforce"), wasmplugin("istio/audit")
    for w in (enforce, audit):
        s = w["spec"]
        assert w["apiVersion"] == "extensions.istio.io/v1alpha1"
        assert s["phase"] == "AUTHN" and s["failStrategy"] == "FAIL_CLOSE"
        assert s["url"].startswith("oci://") and s["imagePullPolicy"] in ("IfNotPresent", "Always")
        assert s["selector"]["matchLabels"] == {"openfaas.com/jwt-auth": "true"}
        assert s["selector"]["matchLabels"].items() <= labels.items(), "the sample function is not selected"
        assert s["match"] == [{"mode": "SERVER", "ports": [{"number": fn_port}]}], "inbound to the watchdog only"
        cfg = s["pluginConfig"]
        assert cfg["issuer"] == params_issuer()
        ns = svc["metadata"]["namespace"]
        assert cfg["jwks"]["cluster"] == f"outbound|{http_port}||{svc['metadata']['name']}.{ns}.svc.cluster.local"
        assert "function" not in cfg, "identity must come from node metadata, per pod"
    assert enforce["spec"]["pluginConfig"]["mode"] == "enforce"
    assert audit["spec"]["pluginConfig"]["mode"] == "audit"
    a = copy.deepcopy(audit)
    a["spec"]["pluginConfig"]["mode"] = "enforce"
    assert a == enforce, "the audit overlay must change nothing but the mode"


@check("params: one issuer; changing it changes every layout")
def _params_propagate():
    issuer = params_issuer()
    host = issuer.split("/")[2]
    gw = obj("ingress", "Gateway", "openfaas")
    assert all(srv["hosts"] == [host] for srv in gw["spec"]["servers"])
    vs = obj("ingress", "VirtualService", "openfaas-gateway")
    assert vs["spec"]["hosts"] == [host]
    with tempfile.TemporaryDirectory() as tmp:
        # A copy of k8s/ with another issuer: every use must follow.
        import shutil

        copy_root = Path(tmp) / "k8s"
        shutil.copytree(K8S, copy_root)
        p = copy_root / "params" / "params.yaml"
        p.write_text(p.read_text().replace(issuer, "https://faas.corp.test"), encoding="utf-8")
        texts = {}
        for rel in ("base", "istio/enforce", "istio/audit", "ingress"):
            out = subprocess.run([KUBECTL, "kustomize", str(copy_root / rel)], capture_output=True, text=True)
            assert out.returncode == 0, out.stderr
            texts[rel] = out.stdout
            assert issuer not in out.stdout and host not in out.stdout, f"k8s/{rel} still has {issuer}"
        assert "value: https://faas.corp.test" in texts["base"]
        assert "issuer: https://faas.corp.test" in texts["istio/enforce"]
        assert "- faas.corp.test" in texts["ingress"]


def authz_rs_body_settings() -> dict:
    src = (ROOT / "ext-authz" / "src" / "authz.rs").read_text(encoding="utf-8")
    get = lambda key: re.search(rf"//!\s+{key}: (\S+)", src).group(1)  # noqa: E731
    return {
        "maxRequestBytes": int(get("max_request_bytes")),
        "allowPartialMessage": get("allow_partial_message") == "true",
        "packAsBytes": get("pack_as_bytes") == "true",
    }


@check("mesh: the extension provider matches the Service and what authz.rs expects")
def _mesh():
    svc = obj("base", "Service", "ext-authz")
    grpc = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "grpc")
    op = load_one(K8S / "mesh" / "istio-operator.yaml")
    values = load_one(K8S / "mesh" / "istiod-values.yaml")
    assert op["kind"] == "IstioOperator"
    providers = op["spec"]["meshConfig"]["extensionProviders"]
    assert providers == values["meshConfig"]["extensionProviders"], "the two snippets differ"
    (p,) = providers
    g = p["envoyExtAuthzGrpc"]
    assert g["service"] == f"ext-authz.{svc['metadata']['namespace']}.svc.cluster.local"
    assert g["port"] == grpc
    assert g["failOpen"] is False
    assert go_duration_seconds(g["timeout"]) <= 5
    assert g["includeRequestBodyInCheck"] == authz_rs_body_settings()
    policy = obj("gateway-authz", "AuthorizationPolicy", "openfaas-gateway-ext-authz")
    assert policy["spec"]["action"] == "CUSTOM"
    assert policy["spec"]["provider"]["name"] == p["name"]
    assert policy["metadata"]["namespace"] == "openfaas"
    (rule,) = policy["spec"]["rules"]
    (to,) = rule["to"]
    op_ = to["operation"]
    # /system/* is covered: nothing in notPaths matches it.
    assert not any(n in ("/*", "/system/*") or n.startswith("/system") for n in op_["notPaths"])
    assert set(op_["notPaths"]) >= {"/function/*", "/async-function/*"}


@check("function: the sample env function")
def _function():
    d = obj("function", "Deployment", "env")
    assert d["metadata"]["namespace"] == "openfaas-fn"
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels["faas_function"] == "env"
    assert labels["openfaas.com/jwt-auth"] == "true"
    assert labels["sidecar.istio.io/inject"] == "true"
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "ghcr.io/openfaas/alpine:latest"
    assert {"name": "fprocess", "value": "env"} in c["env"]
    svc = obj("function", "Service", "env")
    assert svc["spec"]["selector"] == {"faas_function": "env"}


@check("ingress: token exchange and discovery go to ext-authz, the rest to the gateway")
def _ingress():
    vs = obj("ingress", "VirtualService", "openfaas-gateway")
    first, last = vs["spec"]["http"][0], vs["spec"]["http"][-1]
    exact = {m["uri"]["exact"] for m in first["match"]}
    assert exact == {"/oauth/token", "/.well-known/openid-configuration", "/.well-known/jwks.json"}
    assert first["route"][0]["destination"]["host"] == "ext-authz.openfaas.svc.cluster.local"
    assert first["route"][0]["destination"]["port"]["number"] == 8080
    assert "match" not in last and last["route"][0]["destination"]["host"] == "gateway.openfaas.svc.cluster.local"


# --- Istio and Kubernetes objects: schemas --------------------------------
#
# The fields of the Istio APIs (security.istio.io/v1: AuthorizationPolicy,
# PeerAuthentication) and of networking.k8s.io/v1 NetworkPolicy that these
# layouts may use, as JSON Schema, unknown fields refused; plus the rules
# istiod's validation adds (ports are numeric strings, CUSTOM needs a
# provider and only CUSTOM may have one). No cluster needed.

_STRS = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["matchLabels"],
    "properties": {"matchLabels": {**_LABELS, "minProperties": 1}},
}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    "additionalProperties": False,
}


def _fields(names: list[str]) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {n: _STRS for n in names},
    }


_SOURCE = _fields([
    "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals",
    "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
    "remoteIpBlocks", "notRemoteIpBlocks", "serviceAccounts", "notServiceAccounts",
])
_OPERATION = _fields([
    "hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths",
])


def _one(key: str, inner: dict) -> dict:
    return {
        "type": "array",
        "minItems": 1,
        "items": {"type": "object", "additionalProperties": False, "required": [key], "properties": {key: inner}},
    }


AUTHZ_POLICY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"enum": ["security.istio.io/v1"]},
        "kind": {"enum": ["AuthorizationPolicy"]},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "action", "rules"],
            "properties": {
                "selector": _SELECTOR,
                "action": {"enum": ["ALLOW", "DENY", "AUDIT", "CUSTOM"]},
                "provider": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "minLength": 1}},
                },
                "rules": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "minProperties": 1,
                        "properties": {
                            "from": _one("source", _SOURCE),
                            "to": _one("operation", _OPERATION),
                            "when": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["key"],
                                    "properties": {"key": {"type": "string"}, "values": _STRS, "notValues": _STRS},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

PEER_AUTHN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"enum": ["security.istio.io/v1"]},
        "kind": {"enum": ["PeerAuthentication"]},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "mtls"],
            "properties": {
                "selector": _SELECTOR,
                "mtls": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["mode"],
                    "properties": {"mode": {"enum": ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]}},
                },
            },
        },
    },
}

_K8S_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": _LABELS},
}
_PEER = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"podSelector": _K8S_SELECTOR, "namespaceSelector": _K8S_SELECTOR},
}
NETWORK_POLICY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"enum": ["networking.k8s.io/v1"]},
        "kind": {"enum": ["NetworkPolicy"]},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["podSelector", "policyTypes"],
            "properties": {
                "podSelector": {**_K8S_SELECTOR, "required": ["matchLabels"]},
                "policyTypes": {"type": "array", "items": {"enum": ["Ingress", "Egress"]}},
                "ingress": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "from": {"type": "array", "minItems": 1, "items": _PEER},
                            "ports": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["port"],
                                    "properties": {
                                        "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                                        "port": {"type": ["integer", "string"]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

NEW_KIND_SCHEMAS = {
    "AuthorizationPolicy": AUTHZ_POLICY_SCHEMA,
    "PeerAuthentication": PEER_AUTHN_SCHEMA,
    "NetworkPolicy": NETWORK_POLICY_SCHEMA,
}


def k8s_object_errors(doc: dict) -> list[str]:
    """Why the API server (with istiod's validating webhook) would refuse
    this AuthorizationPolicy, PeerAuthentication or NetworkPolicy."""
    s = NEW_KIND_SCHEMAS[doc["kind"]]
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in jsonschema.Draft4Validator(s).iter_errors(doc)
    ]
    if doc["kind"] == "AuthorizationPolicy" and not errors:
        spec = doc["spec"]
        if (spec["action"] == "CUSTOM") != ("provider" in spec):
            errors.append("spec.provider: required for CUSTOM and only for CUSTOM")
        for i, rule in enumerate(spec["rules"]):
            for j, to in enumerate(rule.get("to", [])):
                for key in ("ports", "notPorts"):
                    for p in to["operation"].get(key, []):
                        if not (p.isdigit() and 0 < int(p) < 65536):
                            errors.append(f"spec.rules[{i}].to[{j}].operation.{key}: {p!r} is not a port")
    return errors


# What is rendered from an overlay of a layout and some components (a
# folder under target/manifests, since kustomize takes relative paths only).
def rendered_with(rel: str, components: list[str], namespace: str | None = None) -> list[dict]:
    key = f"{rel}+{','.join(components)}" + (f"+{namespace}" if namespace else "")
    if key not in RENDERED:
        overlay = RENDER_DIR / "overlays" / key.replace("/", "-").replace("+", "--").replace(",", "-")
        overlay.mkdir(parents=True, exist_ok=True)
        up = lambda p: os.path.relpath(K8S / p, overlay)  # noqa: E731
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [up(rel)],
            "components": [up(c) for c in components],
        }
        if namespace:
            kustomization["namespace"] = namespace
        text = yaml.safe_dump(kustomization)
        (overlay / "kustomization.yaml").write_text(text, encoding="utf-8")
        out = subprocess.run([KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{KUBECTL} kustomize of k8s/{rel} with {components} failed:\n{out.stderr}"
        RENDERED[key] = [d for d in yaml.load_all(out.stdout, Loader=StrictLoader) if d]
    return RENDERED[key]


def components() -> list[str]:
    """Every kustomize Component under k8s/ but params/ (which every layout
    already includes), as a path relative to k8s/."""
    out = []
    for p in sorted(K8S.rglob("*")):
        if p.is_file() and p.name in KUSTOMIZATION_NAMES and p.parent != K8S / "params":
            if load_one(p).get("kind") == "Component":
                out.append(str(p.parent.relative_to(K8S)))
    return out


# Each component and the layout it belongs to (the folder above components/).
EXPECTED_COMPONENTS = {
    "base/components/network-policy": "base",
    "istio/components/watchdog-metrics": "istio/enforce",
    "gateway-authz/components/alertmanager": "gateway-authz",
    "gateway-authz/components/connectors": "gateway-authz",
    "gateway-authz/components/ui": "gateway-authz",
}


@check("components: the optional components are the documented ones, and each renders on its layout")
def _components():
    found = set(components())
    assert found == set(EXPECTED_COMPONENTS), f"components {sorted(found)}; update EXPECTED_COMPONENTS and k8s/README.md"
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    for c, layout in sorted(EXPECTED_COMPONENTS.items()):
        assert c in readme, f"k8s/README.md does not mention {c}"
        CHECKS.append((f"components: k8s/{c} on k8s/{layout} renders and validates",
                       lambda c=c, layout=layout: _component_renders(layout, [c])))
    everything = [c for c, layout in EXPECTED_COMPONENTS.items() if layout == "gateway-authz"]
    CHECKS.append(("components: all of gateway-authz's together render and validate",
                   lambda: _component_renders("gateway-authz", everything)))


def _component_renders(layout: str, comps: list[str]):
    docs = rendered_with(layout, comps)
    for d in docs:
        assert d["metadata"].get("namespace"), f"{d['kind']} {d['metadata']['name']} has no namespace"
        part_of = d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of")
        assert part_of == "faas-mesh-auth", f"{d['kind']} {d['metadata']['name']} lacks part-of"
        if d["kind"] in NEW_KIND_SCHEMAS:
            errors = k8s_object_errors(d)
            assert not errors, f"{d['kind']} {d['metadata']['name']}:\n  " + "\n  ".join(errors)


@check("schemas: every AuthorizationPolicy, PeerAuthentication and NetworkPolicy in every layout")
def _new_kinds_valid():
    seen = set()
    for rel in sorted(EXPECTED_LAYOUTS):
        for d in rendered(rel):
            if d["kind"] in NEW_KIND_SCHEMAS:
                errors = k8s_object_errors(d)
                assert not errors, f"k8s/{rel}: {d['kind']} {d['metadata']['name']}:\n  " + "\n  ".join(errors)
                seen.add((rel, d["kind"], d["metadata"]["name"]))
    want = {
        ("istio/enforce", "AuthorizationPolicy", "faas-mesh-auth-watchdog-only"),
        ("istio/audit", "AuthorizationPolicy", "faas-mesh-auth-watchdog-only"),
        ("gateway-authz", "AuthorizationPolicy", "openfaas-gateway-ext-authz"),
        ("gateway-authz", "AuthorizationPolicy", "openfaas-provider-pod-only"),
        ("base", "PeerAuthentication", "ext-authz"),
    }
    assert want <= seen, f"missing: {sorted(want - seen)}"


@check("schemas: the checker refuses what istiod and the API server refuse")
def _new_kinds_negative():
    good = obj("gateway-authz", "AuthorizationPolicy", "openfaas-provider-pod-only")
    assert not k8s_object_errors(good)
    bad = []
    b = copy.deepcopy(good); b["spec"]["rules"][0]["to"][0]["operation"]["ports"] = [8081]; bad.append(b)  # noqa: E702
    b = copy.deepcopy(good); b["spec"]["rules"][0]["to"][0]["operation"]["ports"] = ["http"]; bad.append(b)  # noqa: E702
    b = copy.deepcopy(good); b["spec"]["provider"] = {"name": "x"}; bad.append(b)  # noqa: E702
    b = copy.deepcopy(good); b["spec"]["rules"][0]["to"][0]["operation"]["notport"] = ["1"]; bad.append(b)  # noqa: E702
    b = copy.deepcopy(good); b["spec"]["action"] = "REJECT"; bad.append(b)  # noqa: E702
    b = copy.deepcopy(good); b["spec"]["selector"] = {"matchLabels": {}}; bad.append(b)  # noqa: E702
    pa = copy.deepcopy(obj("base", "PeerAuthentication", "ext-authz"))
    pa["spec"]["mtls"]["mode"] = "strict"
    bad.append(pa)
    for i, b in enumerate(bad):
        assert k8s_object_errors(b), f"bad object {i} passed: {b['spec']}"


# --- bypasses: what the policies let through ------------------------------
#
# Istio's matching, for the fields these policies use: a string matches
# exactly, or as a prefix ("/ui/*"), a suffix ("*.x") or anything ("*");
# within an operation or source, fields AND, values OR, not* negate; in a
# rule, from and to AND; rules OR.


def _istio_match(pattern: str, value: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _fields_match(spec: dict, values: dict) -> bool:
    for key, patterns in spec.items():
        negate = key.startswith("not")
        field = key[3].lower() + key[4:] if negate else key
        hit = any(_istio_match(p, values[field]) for p in patterns)
        if hit == negate:
            return False
    return True


def matches(policy: dict, *, port: int, method: str = "GET", path: str = "/", principal: str = "") -> bool:
    """Whether a request matches any rule of the policy (paths without the
    query, as Istio compares them)."""
    op_values = {"ports": str(port), "methods": method, "paths": path}
    src_values = {"principals": principal}
    for rule in policy["spec"]["rules"]:
        sources = rule.get("from", [{"source": {}}])
        operations = rule.get("to", [{"operation": {}}])
        if any(_fields_match(f["source"], src_values) for f in sources) and any(
            _fields_match(t["operation"], op_values) for t in operations
        ):
            return True
    return False


def selectors(policy_or_plugin: dict) -> dict:
    return policy_or_plugin["spec"]["selector"]["matchLabels"]


@check("bypass: function pods refuse every port but the WasmPlugin's, on the same pods, in both modes")
def _function_ports():
    fn = obj("function", "Deployment", "env")
    pod_labels = fn["spec"]["template"]["metadata"]["labels"]
    for rel in ("istio/enforce", "istio/audit"):
        w = wasmplugin(rel)
        p = obj(rel, "AuthorizationPolicy", "faas-mesh-auth-watchdog-only")
        assert p["metadata"]["namespace"] == w["metadata"]["namespace"], "same root namespace as the WasmPlugin"
        assert selectors(p) == selectors(w), f"k8s/{rel}: the policy selects {selectors(p)}, the WasmPlugin {selectors(w)}"
        assert selectors(p).items() <= pod_labels.items()
        assert p["spec"]["action"] == "DENY", "DENY: an ALLOW would widen the operator's own ALLOW policies"
        (port,) = [m["number"] for m in w["spec"]["match"][0]["ports"]]
        assert not matches(p, port=port), "the watchdog's port is refused"
        for other in (5000, 3000, 8081, 8082, 9090, 1):
            assert matches(p, port=other), f"port {other} is not refused"
        annotations = p["metadata"].get("annotations", {})
        if rel == "istio/audit":
            assert annotations == {"istio.io/dry-run": "true"}, "audit: the policy must be a dry run"
        else:
            assert "istio.io/dry-run" not in annotations, "enforce: the policy must not be a dry run"
    enforce = obj("istio/enforce", "AuthorizationPolicy", "faas-mesh-auth-watchdog-only")
    audit = copy.deepcopy(obj("istio/audit", "AuthorizationPolicy", "faas-mesh-auth-watchdog-only"))
    del audit["metadata"]["annotations"]
    assert audit == enforce, "the audit overlay must change nothing but the dry-run annotation"
    docs = rendered_with("istio/enforce", ["istio/components/watchdog-metrics"])
    (m,) = [d for d in docs if d["kind"] == "AuthorizationPolicy"]
    assert not matches(m, port=8081) and not matches(m, port=8080) and matches(m, port=8082)


@check("canary: k8s/README.md's per-namespace overlay moves the filter and its port policy together")
def _canary():
    for rel in ("istio/audit", "istio/enforce"):
        docs = rendered_with(rel, [], namespace="staging-fn")
        assert {(d["kind"], d["metadata"]["namespace"]) for d in docs} == {
            ("WasmPlugin", "staging-fn"), ("AuthorizationPolicy", "staging-fn"),
        }, docs
        (w,) = [d for d in docs if d["kind"] == "WasmPlugin"]
        assert w["spec"] == wasmplugin(rel)["spec"], "only the namespace changes"
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    assert "namespace: staging-fn" in readme and "- ../k8s/istio/audit" in readme


# Requests to the gateway pod: (port, method, path, principal) -> checked
# by ext-authz? Before any component, and what each component changes.
SA = "cluster.local/ns/openfaas/sa/"
GATEWAY_CASES = [
    ((8080, "GET", "/system/functions", ""), True),
    ((8080, "POST", "/system/functions", ""), True),
    ((8080, "GET", "/system%2Ffunctions", ""), True),
    ((8080, "POST", "/system/alert", SA + "alertmanager"), True),
    ((8080, "GET", "/ui/", ""), True),
    ((8080, "POST", "/function/env", ""), False),
    ((8080, "GET", "/async-function/env", ""), False),
    ((8080, "GET", "/healthz", ""), False),
    ((8080, "GET", "/", ""), True),
]
COMPONENT_CASES = {
    "gateway-authz/components/alertmanager": [
        ((8080, "POST", "/system/alert", SA + "alertmanager"), False),
        ((8080, "POST", "/system/alert", SA + "default"), True),
        ((8080, "POST", "/system/alert", ""), True),
        ((8080, "GET", "/system/alert", SA + "alertmanager"), True),
        ((8080, "GET", "/system/functions", SA + "alertmanager"), True),
        ((8080, "POST", "/system/alert/", SA + "alertmanager"), True),
    ],
    "gateway-authz/components/connectors": [
        ((8080, "GET", "/system/functions", SA + "cron-connector"), False),
        ((8080, "GET", "/system/namespaces", SA + "cron-connector"), False),
        ((8080, "POST", "/system/functions", SA + "cron-connector"), True),
        ((8080, "DELETE", "/system/functions", SA + "cron-connector"), True),
        ((8080, "GET", "/system/functions", SA + "default"), True),
        ((8080, "GET", "/system/secrets", SA + "cron-connector"), True),
        ((8080, "GET", "/system/function/env", SA + "cron-connector"), True),
    ],
    "gateway-authz/components/ui": [
        ((8080, "GET", "/ui/", ""), False),
        ((8080, "GET", "/ui/index.html", ""), False),
        ((8080, "HEAD", "/ui/", ""), False),
        ((8080, "POST", "/ui/", ""), True),
        ((8080, "GET", "/system/functions", ""), True),
    ],
}


def _gateway_verdicts(policy: dict, cases: list) -> list[str]:
    wrong = []
    for (port, method, path, principal), checked in cases:
        got = matches(policy, port=port, method=method, path=path, principal=principal)
        if got != checked:
            wrong.append(f"{method} :{port}{path} from {principal or 'no principal'}: checked={got}, want {checked}")
    return wrong


@check("bypass: the gateway's API is checked, faas-netes' port closed, on the same pods")
def _gateway_ports():
    custom = obj("gateway-authz", "AuthorizationPolicy", "openfaas-gateway-ext-authz")
    deny = obj("gateway-authz", "AuthorizationPolicy", "openfaas-provider-pod-only")
    assert selectors(deny) == selectors(custom), f"8081 policy selects {selectors(deny)}, the CUSTOM one {selectors(custom)}"
    assert deny["metadata"]["namespace"] == custom["metadata"]["namespace"]
    assert deny["spec"]["action"] == "DENY" and "from" not in deny["spec"]["rules"][0], "8081: everyone outside the pod"
    assert matches(deny, port=8081) and not matches(deny, port=8080) and not matches(deny, port=8082)
    wrong = _gateway_verdicts(custom, GATEWAY_CASES)
    assert not wrong, "\n".join(wrong)


@check("bypass: each gateway component exempts only its own caller, alone and all together")
def _gateway_components():
    merged = []
    for comp, cases in COMPONENT_CASES.items():
        (custom,) = [d for d in rendered_with("gateway-authz", [comp]) if d["spec"].get("action") == "CUSTOM"]
        # What the component does not name keeps its base verdict.
        named = {c[0][2] for c in cases}
        base = [c for c in GATEWAY_CASES if c[0][2] not in named]
        wrong = _gateway_verdicts(custom, cases + base)
        assert not wrong, f"{comp}:\n" + "\n".join(wrong)
        merged += cases
    (custom,) = [d for d in rendered_with("gateway-authz", list(COMPONENT_CASES)) if d["spec"].get("action") == "CUSTOM"]
    wrong = _gateway_verdicts(custom, merged)
    assert not wrong, "all components:\n" + "\n".join(wrong)


@check("base: PeerAuthentication STRICT on the ext-authz pods")
def _peer_authn():
    pa = obj("base", "PeerAuthentication", "ext-authz")
    dep = obj("base", "Deployment", "ext-authz")
    assert pa["spec"]["mtls"]["mode"] == "STRICT"
    assert selectors(pa).items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert pa["metadata"]["namespace"] == dep["metadata"]["namespace"]
    (np,) = [d for d in rendered_with("base", ["base/components/network-policy"]) if d["kind"] == "NetworkPolicy"]
    assert np["spec"]["podSelector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert np["metadata"]["namespace"] == dep["metadata"]["namespace"]
    svc = obj("base", "Service", "ext-authz")
    allowed = {p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]}
    assert {p["port"] for p in svc["spec"]["ports"]} <= allowed, "the NetworkPolicy must let the Service's ports in"
    wasm = wasmplugin("istio/enforce")
    fn_peers = [f for rule in np["spec"]["ingress"] for f in rule["from"] if "namespaceSelector" in f and f["namespaceSelector"] == {}]
    assert any(f["podSelector"]["matchLabels"] == selectors(wasm) for f in fn_peers), "function pods must reach the JWKS"


# --- OCI packaging --------------------------------------------------------

FAKE_WASM = b"\0asm\x01\0\0\0" + bytes(range(256)) * 64


def _build(tmp: Path, variant: str, wasm: bytes = FAKE_WASM, name: str = "img") -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / f"in-{name}-{variant}.wasm"
    src.write_bytes(wasm)
    return wasm_oci.build(src, tmp / variant, name, "0.1.0", variant)


@check("oci: compat layout: digests, sizes, media types, plugin.wasm, archive")
def _oci_compat():
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        r = _build(tmp, "compat")
        layout = Path(r["layout"])
        assert r["variant"] == "compat"
        index = json.loads((layout / "index.json").read_text())
        (m,) = index["manifests"]
        assert m["annotations"]["org.opencontainers.image.ref.name"] == "0.1.0"
        manifest_bytes = (layout / "blobs/sha256" / m["digest"][7:]).read_bytes()
        assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == m["digest"] == r["manifest_digest"]
        manifest = json.loads(manifest_bytes)
        assert [l["mediaType"] for l in manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar+gzip"]
        assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
        for blob in (layout / "blobs/sha256").iterdir():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
        assert r["module_sha256"] == "sha256:" + hashlib.sha256(FAKE_WASM).hexdigest()
        assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


@check("oci: oci variant has the two layers Istio requires")
def _oci_artifact():
    with tempfile.TemporaryDirectory() as t:
        r = _build(Path(t), "oci")
        layout = Path(r["layout"])
        m = json.loads((layout / "blobs/sha256" / r["manifest_digest"][7:]).read_text())
        assert m["config"]["mediaType"] == "application/vnd.module.wasm.config.v1+json"
        assert sorted(l["mediaType"] for l in m["layers"]) == [
            "application/vnd.module.wasm.config.v1+json",
            "application/vnd.module.wasm.content.layer.v1+wasm",
        ]


@check("oci: reproducible, and verify catches tampering and non-wasm input")
def _oci_repro():
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        a = _build(tmp / "a", "compat")
        b = _build(tmp / "b", "compat")
        assert a["manifest_digest"] == b["manifest_digest"], "same input, different digest"
        assert Path(a["archive"]).read_bytes() == Path(b["archive"]).read_bytes()
        other = _build(tmp / "b", "compat", FAKE_WASM + b"\0", name="other")
        assert other["manifest_digest"] != a["manifest_digest"]
        layout = Path(a["layout"])
        manifest = json.loads((layout / "blobs/sha256" / a["manifest_digest"][7:]).read_text())
        blob = layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
        data = blob.read_bytes()
        blob.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
        try:
            wasm_oci.verify(layout)
        except wasm_oci.OciError:
            pass
        else:
            raise AssertionError("a tampered layer verified")
        try:
            _build(tmp / "b", "compat", b"not wasm", name="bad")
        except wasm_oci.OciError:
            pass
        else:
            raise AssertionError("a non-wasm input was packaged")


if __name__ == "__main__":
    sys.exit(run())
