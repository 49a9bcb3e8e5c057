import { Client, crypto as acmeCrypto, type Authorization } from 'acme-client';
import type { AcmeChallengeType, AcmeConfig } from '../../config/types.js';
import type { Logger } from '../../observe/logger.js';
import type { CertificatePair } from '../certificate.js';
import type { Http01Responder, TlsAlpn01Responder } from './challenges.js';
import type { AcmeStore } from './storage.js';

export interface Responders {
  'http-01'?: Http01Responder;
  'tls-alpn-01'?: TlsAlpn01Responder;
  /** Reused for every TLS-ALPN-01 certificate: a fresh key per challenge would cost time for nothing. */
  alpnKeyPem: string;
}

/**
 * acme-client waits 5 s before its first re-poll of a pending challenge or order (then 10, 20,
 * 30… s). Validation usually completes in well under a second, so start polling at 200 ms and
 * cap at 10 s; 12 polls give the CA about a minute.
 */
const POLLING = { backoffAttempts: 12, backoffMin: 200, backoffMax: 10_000 };

/** Orders one certificate for all of `acme.domains`, trying the challenge types in the configured order. */
export async function orderCertificate(
  acme: AcmeConfig,
  storage: AcmeStore,
  responders: Responders,
  logger: Logger,
): Promise<CertificatePair> {
  const client = await accountClient(acme, storage, logger);
  const commonName = acme.domains[0]!.length <= 64 ? acme.domains[0] : undefined;
  const [keyPem, csr] = await acmeCrypto.createCsr(
    { commonName, altNames: acme.domains },
    await acmeCrypto.createPrivateEcdsaKey('P-256'),
  );
  const types = acme.challenges.filter((type) => responders[type]);
  for (const [i, type] of types.entries()) {
    let reachedChallenge = false;
    try {
      const certPem = await client.auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: [type],
        // auto() would first fetch the challenge itself through system DNS and port 80/443 of
        // this host. That tells nothing the CA's own validation does not, and fails behind
        // split-horizon DNS, NAT or a load balancer; the CA's verdict (logged on failure) counts.
        skipChallengeVerification: true,
        challengeCreateFn: async (authz, challenge, keyAuthorization) => {
          reachedChallenge = true;
          // auto() falls back to another offered type when ours is missing; refuse so the next type gets its own order.
          if (challenge.type !== type) throw new Error(`the CA did not offer ${type} for ${authz.identifier.value}`);
          await respond(type, responders, authz, challenge.token, keyAuthorization);
        },
        challengeRemoveFn: async (authz, challenge) => {
          if (type === 'http-01') responders['http-01']?.delete(challenge.token);
          else responders['tls-alpn-01']?.delete(authz.identifier.value);
        },
      });
      return { certPem, keyPem: keyPem.toString() };
    } catch (err) {
      // Failures before any challenge (account, order, network) would only repeat with the next type.
      const next = types[i + 1];
      if (!next || !reachedChallenge) throw err;
      logger.warn({ err: (err as Error).message, challenge: type, next }, 'acme: challenge failed, trying the next challenge type');
    }
  }
  throw new Error(`no usable challenge type among ${acme.challenges.join(', ')}`);
}

async function respond(
  type: AcmeChallengeType,
  responders: Responders,
  authz: Authorization,
  token: string,
  keyAuthorization: string,
): Promise<void> {
  if (type === 'http-01') {
    await responders['http-01']!.set(token, keyAuthorization);
    return;
  }
  const [, certificate] = await acmeCrypto.createAlpnCertificate(authz, keyAuthorization, responders.alpnKeyPem);
  await responders['tls-alpn-01']!.set(authz.identifier.value, { certPem: certificate.toString(), keyPem: responders.alpnKeyPem });
}

/**
 * A client bound to our account, registering it first when this directory has not seen it. The
 * stored URL is trusted as long as the CA accepts it: re-sending newAccount on every order would
 * re-use External Account Binding credentials that some CAs accept only once.
 */
async function accountClient(acme: AcmeConfig, storage: AcmeStore, logger: Logger): Promise<Client> {
  const account = await storage.account(acme.directoryUrl);
  const client = new Client({
    directoryUrl: acme.directoryUrl,
    accountKey: account.keyPem,
    ...(account.url ? { accountUrl: account.url } : {}),
    ...(acme.eab ? { externalAccountBinding: acme.eab } : {}),
    ...POLLING,
  });
  if (!account.url) {
    await client.createAccount({
      termsOfServiceAgreed: true,
      ...(acme.email ? { contact: [`mailto:${acme.email}`] } : {}),
    });
    await storage.saveAccountUrl(acme.directoryUrl, client.getAccountUrl());
    logger.info({ account: client.getAccountUrl(), directoryUrl: acme.directoryUrl }, 'acme: account registered');
  }
  return client;
}
