/**
 * Imported first by serve.ts: set before the server's modules load and long before any traffic.
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
 * With the default 16 KiB, every 64 KiB chunk read from the registry made the client's TLS socket
 * report "full": the registry socket was paused and resumed once per chunk (two epoll_ctl calls
 * each) and each chunk went out in its own write. With 256 KiB, chunks queue up and leave in one
 * writev of several: fewer than half the syscalls per GiB downloaded, 6–8% less proxy CPU.
 * The TLS sockets are created by node:tls without a highWaterMark option, so only the default
 * reaches them. Memory bound: a few such buffers per connection.
 */
setDefaultHighWaterMark(false, 256 * 1024);
