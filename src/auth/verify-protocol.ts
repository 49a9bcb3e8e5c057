/** Messages between the verify pool and its workers. */

export type WorkerRequest =
  | { id: number; op: 'compare'; password: string; hash: string }
  | { id: number; op: 'hash'; password: string; cost: number };

export type WorkerReply =
  | { id: number; ok: true; value: boolean | string }
  | { id: number; ok: false; error: string };
