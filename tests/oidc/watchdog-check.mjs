#!/usr/bin/env node
// What OpenFaaS's own watchdog does with `jwt_auth=true` (faas-middleware,
// auth/jwt_authenticator.go), re-enacted with `jose`, to prove that the
// function tokens ext-authz issues work there too, so functions can move to
// the sidecar filter one at a time. Like the watchdog it:
//   - reads the discovery document once, then `jwks_uri` once;
//   - accepts only asymmetric algorithms, and the key type must match;
//   - requires a `kid` naming a JWKS key;
//   - checks `iss` == the discovery `issuer` and `aud` contains it, with
//     1 s of leeway for `exp`/`nbf`;
//   - requires `function.permissions` (and `function.audience` if not
//     empty) to match `namespace:name` as an anchored wildcard.
//
//   node watchdog-check.mjs --discovery URL --namespace NS --name FN [--token JWT]
//
// Prints the status the watchdog would answer (200, 401 or 403) and a
// reason, e.g. `200 ok`, and exits 0; bad usage exits 2.

import { parseArgs } from 'node:util';

import * as jose from 'jose';

const ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function getJson(url) {
  const res = await fetch(url, { headers: { 'User-Agent': 'openfaas-watchdog' }, signal: AbortSignal.timeout(10000) });
  if (res.status !== 200) throw new Error(`GET ${url}: status ${res.status}`);
  return res.json();
}

function wildcard(pattern) {
  const quoted = pattern.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${quoted.join('.*')}$`);
}

function matchResource(resources, ref, required) {
  if (!required && (!resources || resources.length === 0)) return true;
  return (resources ?? []).some((r) => r === '*' || (r.length > 0 ? wildcard(r).test(ref) : r === ref));
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        discovery: { type: 'string' },
        namespace: { type: 'string' },
        name: { type: 'string' },
        token: { type: 'string' },
      },
      strict: true,
    }));
    for (const required of ['discovery', 'namespace', 'name']) {
      if (!values[required]) throw new Error(`--${required} is required`);
    }
  } catch (err) {
    console.error(`watchdog-check: usage: ${err.message}`);
    process.exit(2);
  }
  const config = await getJson(values.discovery);
  const jwks = await getJson(config.jwks_uri);
  const token = (values.token ?? (await readStdin())).trim();
  if (!token) {
    console.log('401 Bearer must be present in Authorization header');
    return;
  }
  let payload;
  try {
    const header = jose.decodeProtectedHeader(token);
    if (typeof header.kid !== 'string') throw new Error('invalid kid');
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk) throw new Error(`invalid kid: ${header.kid}`);
    const family = { RS: 'RSA', PS: 'RSA', ES: 'EC', Ed: 'OKP' }[header.alg?.slice(0, 2)];
    if (family !== jwk.kty) throw new Error(`signing method ${header.alg} does not match key type ${jwk.kty}`);
    const key = await jose.importJWK(jwk, header.alg);
    ({ payload } = await jose.jwtVerify(token, key, {
      issuer: config.issuer,
      audience: config.issuer,
      algorithms: ALGS,
      clockTolerance: 1,
    }));
  } catch (err) {
    console.log(`401 failed to verify JWT token: ${err.message}`);
    return;
  }
  const ref = `${values.namespace}:${values.name}`;
  const fn = payload.function ?? {};
  if (matchResource(fn.audience, ref, false) && matchResource(fn.permissions, ref, true)) {
    console.log('200 ok');
  } else {
    console.log('403 insufficient permissions');
  }
}

main().catch((err) => {
  console.error(`watchdog-check: ${err.message}`);
  process.exit(1);
});
