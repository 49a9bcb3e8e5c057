/**
 * Imported first by the CLI's main.ts (and by serve.ts): set before the other modules load and
 * long before any traffic.
 *
 * Every socket read hands JavaScript a fresh 64 KiB ArrayBuffer, and V8 counts those bytes as
 * external memory. By default the buffers freed by a young-generation GC are subtracted from that
 * count later, by a background sweeper; at several hundred MB/s the count runs ahead of the
 * sweeper, crosses V8's external-memory limit and forces full mark-compact GCs. Once that starts it
 * seems to feed itself (each full GC sets the next limit from a count that is low right after it):
 * the process keeps doing ~50 of them per GiB moved, up to half of its CPU (bench: 2.2–3.4 CPU
 * s/GiB in most processes, 1.2–1.6 in the others). Sweeping the buffers as part of the
 * young-generation GC keeps the count exact and every process in the fast case.
 */
import { setDefaultHighWaterMark } from 'node:stream';
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-concurrent-array-buffer-sweeping');

/*
 * Those buffers are freed by young-generation GCs, which run each time the young generation fills
 * with JavaScript objects. V8 grows it (doubling, to 16–32 MiB by the heap limit) under sustained
 * allocation, and an upload allocates little JavaScript per MB: with it grown, tens of MB of dead
 * buffers wait between GCs, and on Node 24 they cross the external-memory limit again and again
 * (51 full GCs and a 180 MiB peak during a 2 GiB upload, 139 MiB on Node 22). Kept at its starting
 * size the young generation is collected every few hundred KiB of objects: 2 GiB peak 105/120/114
 * MiB on Node 20/22/24, one full GC, the same speed, no cost measured on small requests. Set before
 * the other modules load (main.ts), which would already grow it. An operator who sizes the young
 * generation (--max-semi-space-size, --min-semi-space-size or --semi-space-growth-factor, in
 * NODE_OPTIONS or on the command line) keeps V8's growth.
 */
export function youngGenerationSizedByOperator(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return /(^|\s)--((max|min)[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)(?=[=\s]|$)/.test(`${execArgv.join(' ')} ${nodeOptions ?? ''}`);
}

if (!youngGenerationSizedByOperator(process.execArgv, process.env.NODE_OPTIONS)) setFlagsFromString('--semi-space-growth-factor=1');

/*
 * With the default 16 KiB, every 64 KiB chunk read from the registry made the client's TLS socket
 * report "full": the registry socket was paused and resumed once per chunk (two epoll_ctl calls
 * each) and each chunk went out in its own write. With 256 KiB, chunks queue up and leave in one
 * writev of several: fewer than half the syscalls per GiB downloaded, 6–8% less proxy CPU.
 * The TLS sockets are created by node:tls without a highWaterMark option, so only the default
 * reaches them. Memory bound: a few such buffers per connection.
 */
setDefaultHighWaterMark(false, 256 * 1024);
