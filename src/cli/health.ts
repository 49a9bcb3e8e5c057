/**
 * `registry-gate health`: exit 0 when the proxy that this config describes answers /healthz.
 * For container HEALTHCHECKs and service managers: the address comes from the same config and
 * REGGATE_* variables as `serve`, so nothing is hard-coded next to it (the image's check once
 * probed a fixed port whatever `listen` said).
 */
import http from 'node:http';
import https from 'node:https';
import { loadConfig } from '../config/load.js';
import { parseListenAddress, urlHostPort, type ListenAddress } from '../config/address.js';

const TIMEOUT_MS = 3_000;

export async function runHealth(configFile: string, out: NodeJS.WritableStream): Promise<number> {
  const { config } = loadConfig(configFile);
  // loadConfig has refused a listen address that does not parse.
  const address = parseListenAddress(config.listen) as ListenAddress;
  if (address.port === 0) {
    out.write('registry-gate health: listen has port 0 (a free port picked at start); give it a fixed port to check it\n');
    return 2;
  }
  const host = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host;
  const secure = config.tls.mode !== 'off';
  const target = `${secure ? 'https' : 'http'}://${urlHostPort({ host, port: address.port })}/healthz`;
  const status = await new Promise<number | string>((resolve) => {
    // Liveness of this process, whatever certificate it serves (an ACME one does not name 127.0.0.1).
    const req = (secure ? https : http).get(target, { timeout: TIMEOUT_MS, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  out.write(`registry-gate health: ${target} ${typeof status === 'number' ? `answered ${status}` : `failed (${status})`}\n`);
  return status === 200 ? 0 : 1;
}
