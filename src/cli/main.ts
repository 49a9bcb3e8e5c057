#!/usr/bin/env node
// The V8 settings first, before the other modules are even loaded: loading them already grows the
// young generation whose growth runtime-tuning.ts turns off.
import './runtime-tuning.js';

await import('./run.js');
