#!/usr/bin/env node
// Entry point: runs the compiled CLI (npm run build compiles src/ into dist/).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('voldfs is not built yet: run `bash scripts/setup` (or `npm run build`) first.');
  } else {
    console.error(err);
  }
  process.exit(1);
});
