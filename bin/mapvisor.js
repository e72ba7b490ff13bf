#!/usr/bin/env node
// The mapvisor command. The code lives in dist/ (npm run build): dist/bundle/mapvisor.js, the whole
// command in one module (dist/src holds the same code as separate modules, for the API and the tests).
import { main } from '../dist/bundle/mapvisor.js';

process.exitCode = await main(process.argv.slice(2));
