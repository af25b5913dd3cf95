// Entry of the HandshakeClient worker: registers tsx on this thread, then loads the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./handshake-worker.ts');
