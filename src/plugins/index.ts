/** Plugin cores (SPEC §7): manifest, permissions, packages. */
export * from './manifest.js';
export * from './permissions.js';
export * from './package.js';
