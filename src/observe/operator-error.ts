/**
 * A failure whose message already names the cause and the fix, for the operator: the CLI prints
 * it as it is, one line per problem, without a stack trace. Anything else that ends the process
 * is a failure nobody foresaw, and is reported as such.
 */
export class OperatorError extends Error {
  readonly problems: readonly string[];

  /** exitCode 2: the configuration is at fault; 1: something the proxy depends on. */
  constructor(
    problems: string | readonly string[],
    readonly exitCode: 1 | 2 = 2,
  ) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.join('; '));
    this.problems = list;
  }
}
