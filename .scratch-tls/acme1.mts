import http from 'node:http';
import fs from 'node:fs';
import { pino } from 'pino';
import { orderCertificate } from '/work/main/src/tls/acme/issuer.js';
import { AcmeStorage } from '/work/main/src/tls/acme/storage.js';
import { Http01Responder } from '/work/main/src/tls/acme/challenges.js';
import { scopeAcmeRequests, tuneAcmeRequestRetries } from '/work/main/src/tls/acme/http.js';
import { crypto as c } from 'acme-client';
const logger = pino();
tuneAcmeRequestRetries();
scopeAcmeRequests('https://127.0.0.1:24000/dir', fs.readFileSync('/tmp/pb/ca.pem', 'utf8'));
const h = new Http01Responder();
const srv = http.createServer((req, res) => { console.log('http01 req', req.url); if (!h.answer(req, res)) { res.statusCode = 500; res.end(); } }).listen(25002, '127.0.0.1');
const storage = new AcmeStorage('/tmp/exp/acmestore'); await storage.init();
const acme = { domains: ['registry.test'], email: null, directoryUrl: 'https://127.0.0.1:24000/dir', challenges: ['http-01' as const], caFile: null, storageDir: '', renewBeforeDays: 30, eab: null };
const t = Date.now();
try {
const pair = await orderCertificate(acme, storage, { 'http-01': h, alpnKeyPem: (await c.createPrivateEcdsaKey()).toString() }, logger);
console.log('ms', Date.now() - t, pair.certPem.slice(0, 100));
} catch (e) { console.log('ERR', (e as Error).message); }
srv.close();
