#!/usr/bin/env node
// A real OpenID provider for local runs and integration tests: the certified
// `oidc-provider` package, configured with one client-credentials client
// that gets JWT access tokens, as a machine identity does from Keycloak,
// Auth0 or Okta before it exchanges them at the OpenFaaS gateway; and two
// public clients for people (`faas-mesh-auth login`): authorization code
// with PKCE on a loopback redirect, and the device grant. People sign in on
// oidc-provider's own development pages (any login, any password; the
// login becomes `sub`).
//
//   node provider.mjs [--port 0] [--host 127.0.0.1] [--client-id openfaas-demo]
//                     [--client-secret ...] [--audience openfaas] [--alg RS256]
//                     [--ttl 3600] [--people-client-id faas-mesh-auth]
//                     [--device-client-id faas-mesh-auth-device]
//                     [--device-ttl 600] [--device-interval 5]
//
// Every flag also reads an environment variable (OIDC_PORT, OIDC_HOST,
// OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_AUDIENCE, OIDC_ALG, OIDC_TTL,
// OIDC_PEOPLE_CLIENT_ID, OIDC_DEVICE_CLIENT_ID, OIDC_DEVICE_TTL,
// OIDC_DEVICE_INTERVAL).
// Once listening it prints exactly one line to stdout:
//
//   issuer=http://127.0.0.1:PORT
//
// Everything else (oidc-provider's notices included) goes to stderr, and no
// secret or token is ever logged. SIGTERM or SIGINT closes the server and
// exits 0.
//
// `POST /test/rotate-key` rotates the signing key as an IdP does: a new key
// signs from then on, the old ones stay published; it answers {"kid": NEW}.
//
// The token request is the one the OpenFaaS docs show for Keycloak:
//
//   curl -X POST "$ISSUER/token" -d client_id=openfaas-demo \
//     -d client_secret=... -d grant_type=client_credentials -d scope=email

import * as http from 'node:http';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider from 'oidc-provider';

// oidc-provider prints its notices with console.info, to stdout: keep stdout
// for the one machine-readable line.
console.info = (...args) => console.error(...args);
const log = (msg) => console.error(`oidc-provider-test: ${msg}`);

const OPTIONS = {
  port: { env: 'OIDC_PORT', default: '0' },
  host: { env: 'OIDC_HOST', default: '127.0.0.1' },
  'client-id': { env: 'OIDC_CLIENT_ID', default: 'openfaas-demo' },
  // A development secret: this provider exists for tests and local runs.
  'client-secret': { env: 'OIDC_CLIENT_SECRET', default: 'dev-secret-not-for-production' },
  audience: { env: 'OIDC_AUDIENCE', default: 'openfaas' },
  alg: { env: 'OIDC_ALG', default: 'RS256' },
  ttl: { env: 'OIDC_TTL', default: '3600' },
  'people-client-id': { env: 'OIDC_PEOPLE_CLIENT_ID', default: 'faas-mesh-auth' },
  'device-client-id': { env: 'OIDC_DEVICE_CLIENT_ID', default: 'faas-mesh-auth-device' },
  'device-ttl': { env: 'OIDC_DEVICE_TTL', default: '600' },
  'device-interval': { env: 'OIDC_DEVICE_INTERVAL', default: '5' },
};

function settings() {
  const { values } = parseArgs({
    options: Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' }])),
    strict: true,
  });
  const out = {};
  for (const [name, { env, default: def }] of Object.entries(OPTIONS)) {
    out[name] = values[name] ?? process.env[env] ?? def;
  }
  const port = Number(out.port);
  const ttl = Number(out.ttl);
  for (const name of ['device-ttl', 'device-interval']) {
    const n = Number(out[name]);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`--${name} ${out[name]}: not a positive number of seconds`);
    }
    out[name] = n;
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port ${out.port}: not a port number`);
  }
  if (!Number.isInteger(ttl) || ttl < 1) {
    throw new Error(`--ttl ${out.ttl}: not a positive number of seconds`);
  }
  if (!['RS256', 'ES256'].includes(out.alg)) {
    throw new Error(`--alg ${out.alg}: use RS256 or ES256`);
  }
  if (!out['client-id'] || !out['client-secret'] || !out.audience
      || !out['people-client-id'] || !out['device-client-id']) {
    throw new Error('--client-id, --client-secret, --audience, --people-client-id and --device-client-id must not be empty');
  }
  if (new Set([out['client-id'], out['people-client-id'], out['device-client-id']]).size !== 3) {
    throw new Error('--client-id, --people-client-id and --device-client-id must differ');
  }
  return { ...out, port, ttl };
}

// A fresh signing key per run, published at the provider's jwks_uri.
async function signingKey(alg) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk;
}

// The resource server that client-credentials tokens are for. A resource
// indicator must be an absolute URI; the audience (`aud`) is set apart from
// it, so it can be a plain name such as `openfaas`.
const RESOURCE = 'urn:faas-mesh-auth:gateway';

async function main() {
  const s = settings();
  // The signing key first (oidc-provider signs with the first that fits),
  // then the retired ones, still published.
  let keys = [await signingKey(s.alg)];

  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(s.port, s.host, resolve);
  });
  const { port } = server.address();
  const issuer = `http://${s.host}:${port}`;

  const configuration = () => ({
    jwks: { keys },
    clients: [
      {
        client_id: s['client-id'],
        client_secret: s['client-secret'],
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        // The docs' curl sends the secret as form fields.
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: s.alg,
      },
      // A person at a terminal with a browser (RFC 8252): a public native
      // client, PKCE, and a loopback redirect whose port may be any (a
      // native client's loopback redirect matches on every port).
      {
        client_id: s['people-client-id'],
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
        id_token_signed_response_alg: s.alg,
      },
      // A person at a terminal without a browser (RFC 8628).
      {
        client_id: s['device-client-id'],
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
        response_types: [],
        redirect_uris: [],
        id_token_signed_response_alg: s.alg,
      },
    ],
    // `openid` is what the provider serves by default; `email` and
    // `profile` are what the docs' curl asks for. A client-credentials
    // token carries the ones its resource server accepts.
    scopes: ['openid', 'email', 'profile', 'function'],
    features: {
      // oidc-provider's own login and consent pages: any login and any
      // password sign in, and the login is the account's `sub`.
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A plain `grant_type=client_credentials&scope=...` has no
        // `resource`: give it the gateway's, so it gets a JWT.
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== RESOURCE) {
            throw new Provider.errors.InvalidTarget(`unknown resource ${resource}`);
          }
          return {
            scope: 'openid email profile function',
            audience: s.audience,
            accessTokenTTL: s.ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: s.alg } },
          };
        },
      },
    },
    ttl: { ClientCredentials: s.ttl, DeviceCode: s['device-ttl'] },
  });

  const newProvider = () => {
    const provider = new Provider(issuer, configuration());
    provider.on('grant.success', (ctx) => {
      log(`issued ${ctx.oidc.params.grant_type} token to ${ctx.oidc.client?.clientId}`);
    });
    provider.on('grant.error', (_ctx, err) => {
      log(`token request refused: ${err.error}: ${err.error_description}`);
    });
    provider.on('server_error', (_ctx, err) => {
      log(`server error: ${err.message}`);
    });
    // oidc-provider's device authorization answer has no `interval`, so
    // clients poll every 5 s (RFC 8628 section 3.2); name ours.
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        ctx.body.interval = s['device-interval'];
      }
    });
    return provider.callback();
  };

  // Client-credentials JWTs keep no server-side state, so a rotation can
  // simply swap in a provider built with the new key set.
  let handle = newProvider();
  server.on('request', (req, res) => {
    if (req.method === 'POST' && req.url === '/test/rotate-key') {
      signingKey(s.alg).then((key) => {
        keys = [key, ...keys];
        handle = newProvider();
        log(`rotated: ${s.alg} key ${key.kid} signs, ${keys.length} keys published`);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ kid: key.kid }));
      }, (err) => {
        log(`rotation failed: ${err.message}`);
        res.statusCode = 500;
        res.end();
      });
      return;
    }
    handle(req, res);
  });

  const stop = (signal) => {
    log(`${signal}: stopping`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));

  log(`client ${s['client-id']}, audience ${s.audience}, ${s.alg} key ${keys[0].kid}, token ttl ${s.ttl}s`);
  log(`people: client ${s['people-client-id']} (code + PKCE), client ${s['device-client-id']} (device, code ttl ${s['device-ttl']}s, interval ${s['device-interval']}s)`);
  process.stdout.write(`issuer=${issuer}\n`);
}

main().catch((err) => {
  console.error(`oidc-provider-test: ${err.message}`);
  process.exit(64);
});
