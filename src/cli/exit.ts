/**
 * Ends the process with `code` once what was written to stdout and stderr has gone out. To a
 * pipe or socket (a parent that spawned us) Node writes asynchronously, and process.exit() would
 * cut a long report short; open handles (store connections) would keep the process alive
 * without an exit.
 */
export function exitAfterOutput(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const flushed = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', flushed);
  process.stderr.write('', flushed);
}
