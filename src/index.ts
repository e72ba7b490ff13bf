/** mapvisor's public API. */
export { Sandbox, type SandboxOptions, type SandboxResult, type StdinOption, type StdoutOption } from './sandbox/sandbox.js';
export type { VmStats } from './sandbox/protocol.js';
export { MapvisorError, UsageError, ExecError } from './errors.js';
export { parseSize } from './util/size.js';
export type { ListeningEvent, NetPolicy, Publish } from './kernel/net/network.js';
