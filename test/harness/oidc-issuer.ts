/**
 * A real OpenID issuer on loopback over TLS (oauth2-mock-server's issuer and request handler,
 * served by our own HTTPS server so its requests can be counted and it can be stopped and started
 * on the same address): discovery, JWKS, and ID tokens shaped like GitHub Actions' and GitLab
 * CI's, with any claims a test wants.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';
import { issueCert, type TestCa } from './tls-ca.js';

export interface TestIssuer {
  /** The issuer URL, as its tokens' `iss` says. */
  url: string;
  /** Requests for the key set (discovery not counted). */
  jwksFetches(): number;
  /** A signed ID token: the issuer's iss/iat/nbf/exp, then `claims` over them. */
  mint(claims: Record<string, unknown>, options?: { expiresInSeconds?: number; kid?: string }): Promise<string>;
  /** The private key (JWK) tokens are signed with, for forging variants of them. */
  signingKey(kid?: string): Record<string, unknown>;
  /** A new key published beside the old ones; returns its kid. */
  rotate(): Promise<string>;
  stop(): Promise<void>;
  /** Listen again on the same address after stop(). */
  start(): Promise<void>;
}

export async function startIssuer(ca: TestCa): Promise<TestIssuer> {
  const issuer = new OAuth2Issuer();
  let current = (await issuer.keys.generate('RS256')).kid;
  const service = new OAuth2Service(issuer);
  const cert = await issueCert(ca, ['127.0.0.1']);
  let jwks = 0;
  const handler = service.requestHandler;
  let server: Server;
  let port = 0;
  const listen = async (): Promise<void> => {
    server = createServer({ key: cert.keyPem, cert: cert.chainPem }, (req, res) => {
      if (req.url?.startsWith('/jwks')) jwks++;
      handler(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as AddressInfo).port;
  };
  await listen();
  issuer.url = `https://127.0.0.1:${port}`;
  return {
    url: issuer.url,
    jwksFetches: () => jwks,
    mint: (claims, options = {}) =>
      issuer.buildToken({
        kid: options.kid ?? current,
        expiresIn: options.expiresInSeconds ?? 300,
        scopesOrTransform: (_header, payload) => Object.assign(payload, claims),
      }),
    signingKey: (kid) => ({ ...issuer.keys.get(kid ?? current)! }),
    async rotate() {
      current = (await issuer.keys.generate('RS256')).kid;
      return current;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    start: listen,
  };
}

/** Claims as GitHub Actions sends them for a push to main of acme/app (overridable). */
export function githubClaims(audience: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const repository = (over.repository as string | undefined) ?? 'acme/app';
  const ref = (over.ref as string | undefined) ?? 'refs/heads/main';
  return {
    aud: audience,
    sub: `repo:${repository}:ref:${ref}`,
    repository,
    repository_id: '690118291',
    repository_owner: repository.split('/')[0],
    repository_owner_id: '9919',
    ref,
    ref_type: 'branch',
    event_name: 'push',
    workflow_ref: `${repository}/.github/workflows/release.yml@${ref}`,
    job_workflow_ref: `${repository}/.github/workflows/release.yml@${ref}`,
    runner_environment: 'github-hosted',
    actor: 'octocat',
    ...over,
  };
}

/** Claims as GitLab CI sends them: ids and booleans as strings. */
export function gitlabClaims(audience: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const project = (over.project_path as string | undefined) ?? 'acme/app';
  const ref = (over.ref as string | undefined) ?? 'main';
  return {
    aud: audience,
    sub: `project_path:${project}:ref_type:branch:ref:${ref}`,
    namespace_path: project.split('/')[0],
    namespace_id: '72',
    project_path: project,
    project_id: '4821',
    ref,
    ref_type: 'branch',
    ref_protected: 'true',
    pipeline_source: 'push',
    user_login: 'jane',
    ...over,
  };
}
