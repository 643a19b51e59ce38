// The environment for the processes the engine side starts (the engine, the cache writer).
// Node 20 reads and parses every certificate of NODE_EXTRA_CA_CERTS while it boots, before any
// module runs: about 90 ms of CPU per process on the CA bundle of a Debian system, paid again
// by each child that inherits the variable. These processes open no TLS connection (the
// models are local files), so they start without it.
export function childEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _tlsOnly, ...rest } = env;
  return rest;
}
