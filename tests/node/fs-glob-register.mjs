// `node --import ./fs-glob-register.mjs …` runs the MCP conformance suite on Node 20: see
// fs-glob-shim.mjs.
import { register } from 'node:module';
register('./fs-glob-loader.mjs', import.meta.url);
