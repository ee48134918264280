#!/usr/bin/env python3
"""Generates the IAM CRDs in this folder (JwtIssuer, Policy, Role; group
iam.openfaas.com, version v1). Python 3 standard library only.

    python3 k8s/crds/generate.py          # rewrite the three YAML files
    python3 k8s/crds/generate.py --check  # exit 1 if any file is stale

The schemas follow the OpenFaaS IAM docs and the rules our engine enforces
(core/src/iam.rs), so a CR the API server accepts also loads in ext-authz.
What a schema cannot express is left to the engine: Role -> Policy
references, unique `iss` across JwtIssuers, one namespace for all objects.
The claim-map shape (`jwt:<claim>` -> [values]) is written once below and
used for every condition operator, so the 17 copies cannot drift.

Only RE2 syntax in patterns (Kubernetes validates with Go's regexp: no
look-around, no back-references). Maps of claims need a CEL rule for their
keys (`x-kubernetes-validations`, GA since Kubernetes 1.29); maxItems and
maxProperties bound the rules' cost.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GROUP = "iam.openfaas.com"

# --- shared pieces --------------------------------------------------------

DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"
# `*`, `ns:*` or `ns:name`; the namespace is an RFC 1123 label and the name
# an RFC 1123 subdomain (function names are labels; secret names may have
# dots), as ResourcePattern in core/src/iam/action.rs.
RESOURCE_PATTERN = rf"^(\*|{DNS_LABEL}:(\*|{DNS_SUBDOMAIN}))$"
# Go time.ParseDuration, positive only: components like 1h, 30m, 1.5h, 90s;
# at least one of them must have a non-zero digit (our engine refuses 0).
_UNIT = "(ns|us|µs|μs|ms|s|m|h)"
_NUM = r"([0-9]+(\.[0-9]*)?|\.[0-9]+)"
_NONZERO = r"([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)"
DURATION_PATTERN = rf"^\+?({_NUM}{_UNIT})*{_NONZERO}{_UNIT}({_NUM}{_UNIT})*$"
# An issuer URL: https to any host, or http to a loopback host; no user
# info, query, fragment or whitespace (check_url in core/src/iam/compile.rs).
_HOST = r"([^\s/?#@:\[\]\x00-\x1f\x7f]+|\[[0-9A-Fa-f:.]+\])"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_LOOPBACK = rf"(localhost|127\.{_OCTET}\.{_OCTET}\.{_OCTET}|\[::1\])"
_PORT = "(:[0-9]+)?"
_PATH = r"(/[^\s?#\x00-\x1f\x7f]*)?"
ISS_PATTERN = rf"^(https://{_HOST}|http://{_LOOPBACK}){_PORT}{_PATH}$"
ISS_INTERNAL_PATTERN = rf"^$|^https?://{_HOST}{_PORT}{_PATH}$"

ACTIONS = [
    "Function:List", "Function:Get", "Function:Create", "Function:Update",
    "Function:Delete", "Function:Logs", "Function:Scale", "Function:Invoke",
    "Secret:List", "Secret:Create", "Secret:Update", "Secret:Delete",
    "Namespace:List", "Namespace:Get", "Namespace:Create", "Namespace:Update",
    "Namespace:Delete", "System:Info",
    "Function:*", "Secret:*", "Namespace:*", "*",
]
OPERATORS = [
    "StringEqual", "StringEquals",
    "StringEqualIgnoreCase", "StringEqualsIgnoreCase",
    "StringLike",
    "ForAnyValue:StringEqual", "ForAnyValue:StringEquals",
]
CLAIM_KEY_RULE = "self.all(k, k.startsWith('jwt:') && size(k) > 4)"
# The examples' placeholder (PLACEHOLDER in core/src/iam/wire.rs): refused
# wherever a JwtIssuer or Role says whom to trust, so examples applied
# unedited fail. Not on Policy conditions: no identity is named there, and
# statements x operators x claims x values would exceed the CEL cost budget.
PLACEHOLDER = "EDIT-ME"
PLACEHOLDER_RULE = f"!self.contains('{PLACEHOLDER}')"


def no_placeholder(schema: dict) -> dict:
    """The string schema, refusing the examples' placeholder."""
    return {
        **schema,
        "x-kubernetes-validations": [
            {
                "rule": PLACEHOLDER_RULE,
                "message": f"{PLACEHOLDER} is an example's placeholder: replace it with your own value",
            }
        ],
    }


def claim_map(description: str, trusts: bool = False) -> dict:
    """`jwt:<claim>` -> non-empty list of strings (values are OR'd).
    `trusts`: a Role's, naming whom to trust (placeholders refused)."""
    value = {"type": "string", "maxLength": 2048}
    return {
        "type": "object",
        "description": description,
        "minProperties": 1,
        "maxProperties": 32,
        "additionalProperties": {
            "type": "array",
            "minItems": 1,
            "maxItems": 256,
            "items": no_placeholder(value) if trusts else value,
        },
        "x-kubernetes-validations": [
            {
                "rule": CLAIM_KEY_RULE,
                "message": "keys must name a claim as jwt:<claim>, e.g. jwt:sub",
            }
        ],
    }


def condition(description: str, trusts: bool = False) -> dict:
    props = {
        op: claim_map(f"{op}: claim -> values; the values of one claim are OR'd.", trusts)
        for op in OPERATORS
    }
    props["principal"] = claim_map(
        "The principal, as the OpenFaaS docs place it inside the condition "
        "(same as StringEqual).",
        trusts,
    )
    return {
        "type": "object",
        "description": description,
        "minProperties": 1,
        "properties": props,
    }


def string_list(description: str, item: dict, max_items: int) -> dict:
    return {
        "type": "array",
        "description": description,
        "minItems": 1,
        "maxItems": max_items,
        "items": item,
    }


def crd(kind: str, plural: str, description: str, spec: dict, columns: list[dict]) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "faas-mesh-auth"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "categories": ["openfaas-iam"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": columns
                    + [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                            },
                        }
                    },
                }
            ],
        },
    }


# --- the three kinds ------------------------------------------------------

JWT_ISSUER = crd(
    "JwtIssuer",
    "jwtissuers",
    "A trusted identity provider whose tokens may be exchanged at /oauth/token.",
    {
        "type": "object",
        "required": ["iss", "aud"],
        "properties": {
            "iss": no_placeholder({
                "type": "string",
                "description": "The issuer, exactly as in the tokens' iss claim (no trailing-slash "
                "normalisation). https://, or http:// for a loopback host.",
                "maxLength": 2048,
                "pattern": ISS_PATTERN,
            }),
            "issInternal": no_placeholder({
                "type": "string",
                "description": "Optional in-cluster base URL to fetch OIDC discovery and keys "
                "from instead of iss (http or https).",
                "maxLength": 2048,
                "pattern": ISS_INTERNAL_PATTERN,
            }),
            "aud": string_list(
                "Accepted audiences: a subject token's aud must contain one.",
                no_placeholder({"type": "string", "minLength": 1, "maxLength": 2048}),
                64,
            ),
            "tokenExpiry": {
                "type": "string",
                "description": "Lifetime of the tokens issued in exchange, as a Go duration "
                "(1h, 30m, 1h30m). Default 1h.",
                "maxLength": 64,
                "pattern": DURATION_PATTERN,
            },
        },
    },
    [
        {"name": "Issuer", "type": "string", "jsonPath": ".spec.iss"},
        {"name": "Audience", "type": "string", "jsonPath": ".spec.aud"},
        {"name": "Expiry", "type": "string", "jsonPath": ".spec.tokenExpiry"},
    ],
)

POLICY = crd(
    "Policy",
    "policies",
    "A named set of statements: which actions are allowed on which resources.",
    {
        "type": "object",
        "required": ["statement"],
        "properties": {
            "statement": string_list(
                "Statements; a Policy grants the union of them.",
                {
                    "type": "object",
                    "required": ["effect", "action", "resource"],
                    "properties": {
                        "sid": {"type": "string", "description": "Statement id.", "maxLength": 256},
                        "effect": {
                            "type": "string",
                            "description": "Allow: the only effect OpenFaaS IAM has.",
                            "enum": ["Allow"],
                        },
                        "action": string_list(
                            "Actions, or the wildcards Function:*, Secret:*, Namespace:*, *.",
                            {"type": "string", "enum": ACTIONS},
                            64,
                        ),
                        "resource": string_list(
                            "*, namespace:* or namespace:name.",
                            {"type": "string", "maxLength": 317, "pattern": RESOURCE_PATTERN},
                            256,
                        ),
                        "condition": condition(
                            "Optional: the statement holds only while this condition "
                            "matches the claims."
                        ),
                    },
                },
                64,
            )
        },
    },
    [
        {"name": "Actions", "type": "string", "jsonPath": ".spec.statement[*].action"},
        {"name": "Resources", "type": "string", "jsonPath": ".spec.statement[*].resource"},
    ],
)

ROLE = crd(
    "Role",
    "roles",
    "Maps the identities a principal and/or condition match to Policies.",
    {
        "type": "object",
        "required": ["policy"],
        # A Role with neither would match every token of every trusted issuer.
        "anyOf": [{"required": ["principal"]}, {"required": ["condition"]}],
        "properties": {
            "policy": string_list(
                "Names of Policies in the same namespace.",
                {"type": "string", "maxLength": 253, "pattern": f"^{DNS_SUBDOMAIN}$"},
                64,
            ),
            "principal": claim_map(
                "Who the Role is for: claim -> values (values OR'd, claims AND'd with "
                "each other and with the condition).",
                trusts=True,
            ),
            "condition": condition(
                "Operator -> claim -> values. Operators and claims are AND'd; the values "
                "of one claim are OR'd.",
                trusts=True,
            ),
        },
    },
    [{"name": "Policies", "type": "string", "jsonPath": ".spec.policy"}],
)

FILES = {
    "iam.openfaas.com_jwtissuers.yaml": JWT_ISSUER,
    "iam.openfaas.com_policies.yaml": POLICY,
    "iam.openfaas.com_roles.yaml": ROLE,
}

# --- a small YAML emitter (dicts, lists, str, int, bool) ------------------

_PLAIN = re.compile(r"^[A-Za-z_./][A-Za-z0-9_./ ,()-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED and not s.endswith(" ") and ": " not in s:
        return s
    # JSON strings are valid YAML double-quoted scalars.
    return json.dumps(s, ensure_ascii=False)


def emit(value, indent: int = 0) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            key = scalar(k)
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{key}:")
                lines.extend(emit(v, indent + 1 if isinstance(v, dict) else indent))
            elif isinstance(v, (dict, list)):
                lines.append(f"{pad}{key}: {'{}' if isinstance(v, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key}: {scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                sub = emit(item, indent + 1)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines.extend(sub[1:])
            elif isinstance(item, list) and item:
                lines.append(f"{pad}-")
                lines.extend(emit(item, indent + 1))
            else:
                lines.append(f"{pad}- {scalar(item)}")
    return lines


def render(doc: dict) -> str:
    header = "# Generated by k8s/crds/generate.py: edit that, run it, commit both.\n"
    return header + "\n".join(emit(doc)) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, doc in FILES.items():
        text = render(doc)
        path = HERE / name
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"crds: stale, run python3 k8s/crds/generate.py: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
