/** Reading a password from stdin or a terminal with echo off, for the CLI's commands. */

export class InterruptedError extends Error {}

/**
 * Characters from stdin, served to one prompt after another. One reader for the whole command,
 * because a pipe or a fast typist can deliver both password entries in a single chunk.
 */
export class InputReader {
  private chars: string[] = [];
  private ended = false;
  private wake: (() => void) | null = null;
  private listening = false;

  constructor(private readonly stream: NodeJS.ReadableStream) {}

  private readonly onData = (chunk: string | Buffer) => {
    this.chars.push(...Array.from(typeof chunk === 'string' ? chunk : chunk.toString('utf8')));
    this.notify();
  };

  private readonly onEnd = () => {
    this.ended = true;
    this.notify();
  };

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.stream.setEncoding('utf8');
    this.stream.on('data', this.onData);
    this.stream.on('end', this.onEnd);
    this.stream.on('error', this.onEnd);
    this.stream.resume();
  }

  /** The next character, or null at end of input. */
  private async next(): Promise<string | null> {
    this.listen();
    while (this.chars.length === 0) {
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return this.chars.shift()!;
  }

  /** The first line (trailing CR/LF removed); null when the input is empty. */
  async readLine(maxLength: number): Promise<string | null> {
    let line = '';
    for (;;) {
      const ch = await this.next();
      if (ch === null) return line === '' ? null : line.replace(/\r$/, '');
      if (ch === '\n') return line.replace(/\r$/, '');
      line += ch;
      if (line.length > maxLength) throw new Error('the password is too long');
    }
  }

  /** A line typed with echo off (raw mode handles Enter, Backspace, Ctrl-C and Ctrl-D itself). */
  async readHidden(prompt: NodeJS.WritableStream, label: string, maxLength: number): Promise<string | null> {
    const tty = this.stream as NodeJS.ReadableStream & { setRawMode?: (raw: boolean) => unknown };
    prompt.write(label);
    tty.setRawMode?.(true);
    try {
      let line = '';
      for (;;) {
        const ch = await this.next();
        if (ch === null || ch === '\u0004') {
          if (line === '') throw new InterruptedError();
          return line;
        }
        if (ch === '\r' || ch === '\n') return line;
        if (ch === '\u0003') throw new InterruptedError();
        if (ch === '\u007f' || ch === '\b') line = Array.from(line).slice(0, -1).join('');
        else if (ch >= ' ') line += ch;
        if (line.length > maxLength) throw new Error('the password is too long');
      }
    } finally {
      tty.setRawMode?.(false);
      prompt.write('\n');
    }
  }

  close(): void {
    if (!this.listening) return;
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('error', this.onEnd);
    this.stream.pause();
  }
}
