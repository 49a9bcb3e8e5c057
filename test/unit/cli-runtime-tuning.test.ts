import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { youngGenerationSizedByOperator } from '../../src/cli/runtime-tuning.js';

describe('youngGenerationSizedByOperator: V8 keeps growing the young generation only when the operator sized it', () => {
  const table: Array<[string, string[], string | undefined, boolean]> = [
    ['nothing set', [], undefined, false],
    ['other flags only', ['--enable-source-maps'], '--max-old-space-size=512 --dns-result-order=ipv4first', false],
    ['--max-semi-space-size in NODE_OPTIONS', [], '--max-old-space-size=512 --max-semi-space-size=16', true],
    ['--min-semi-space-size on the command line', ['--min-semi-space-size=4'], undefined, true],
    ['underscore spelling', ['--max_semi_space_size=8'], '', true],
    ['--semi-space-growth-factor', [], '--semi-space-growth-factor=2', true],
    ['a longer flag that only starts alike', ['--max-semi-space-size-x=1'], undefined, false],
  ];
  for (const [name, execArgv, nodeOptions, expected] of table) {
    it(name, () => assert.equal(youngGenerationSizedByOperator(execArgv, nodeOptions), expected));
  }
});
