#!/usr/bin/env node
// Verify a JWT with `jose`, a JOSE library independent of ours: the
// signature against the keys at a JWKS URL, then `iss`, `aud`, `exp`,
// `nbf` and the algorithm.
//
//   node verify.mjs --jwks URL --issuer ISS --audience AUD [--alg ES256] [--token JWT]
//
// The token comes from --token or, without it, from stdin. On success it
// prints one line of JSON to stdout, `{"header": {...}, "payload": {...}}`,
// and exits 0. On failure it prints `verify: <jose error code>: <message>`
// to stderr and exits 1 (2 for bad usage).

import { parseArgs } from 'node:util';

import * as jose from 'jose';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        jwks: { type: 'string' },
        issuer: { type: 'string' },
        audience: { type: 'string' },
        alg: { type: 'string', default: 'ES256' },
        token: { type: 'string' },
      },
      strict: true,
    }));
    for (const required of ['jwks', 'issuer', 'audience']) {
      if (!values[required]) throw new Error(`--${required} is required`);
    }
  } catch (err) {
    console.error(`verify: usage: ${err.message}`);
    process.exit(2);
  }
  const token = (values.token ?? (await readStdin())).trim();
  const keys = jose.createRemoteJWKSet(new URL(values.jwks), { timeoutDuration: 5000 });
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(token, keys, {
      issuer: values.issuer,
      audience: values.audience,
      algorithms: [values.alg],
      requiredClaims: ['exp', 'iat', 'sub', 'jti'],
    });
    process.stdout.write(`${JSON.stringify({ header: protectedHeader, payload })}\n`);
  } catch (err) {
    console.error(`verify: ${err.code ?? 'ERROR'}: ${err.message}`);
    process.exit(1);
  }
}

main();
