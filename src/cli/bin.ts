// The `dynamo-cache` executable (package.json "bin"): runs the program with the process's arguments.
import { run } from './main.ts';

process.exitCode = await run(process.argv.slice(2));
