#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader, so the installed package
// and a git checkout behave the same and there is no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
