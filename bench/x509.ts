/**
 * Local CA leaf issuance cost: median (and p95) ms per ECDSA P-256 leaf over 500 issues through
 * LocalCaIssuer (key generation + TBS encoding + signature + PEM export), after a warm-up.
 * Target: ≤ 2 ms per leaf. Run: node --import tsx bench/x509.ts
 */
import { generateKeyPairSync } from 'node:crypto';
import { buildCertificate, selfSignedIssuer } from '../src/crypto/x509.js';
import { LocalCaIssuer, type LocalCaStorage } from '../src/issuers/local-ca/index.js';

const ISSUES = 500;
const WARMUP = 100;

const blobs = new Map<string, Buffer>();
const storage: LocalCaStorage = {
  getBlob: async (key) => blobs.get(key),
  putBlob: async (key, data) => void blobs.set(key, Buffer.from(data)),
};

function summary(label: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(3);
  console.log(`${label.padEnd(34)} median ${at(0.5)} ms   p95 ${at(0.95)} ms   (n=${samples.length})`);
}

const issuer = new LocalCaIssuer(storage, { id: 'bench' });
for (let i = 0; i < WARMUP; i++) await issuer.issue({ names: [`warm${i}.example.test`] });
const issue: number[] = [];
for (let i = 0; i < ISSUES; i++) {
  const start = performance.now();
  await issuer.issue({ names: [`leaf${i}.example.test`] });
  issue.push(performance.now() - start);
}
summary('issue ECDSA leaf (full)', issue);

// The X.509 encoding and signature alone, with a key made beforehand.
const root = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = selfSignedIssuer({ commonName: 'bench root' }, root.privateKey);
const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
const build: number[] = [];
for (let i = 0; i < WARMUP + ISSUES; i++) {
  const start = performance.now();
  buildCertificate({
    subject: { commonName: `leaf${i}.example.test` },
    subjectAltNames: [`leaf${i}.example.test`],
    publicKey: leafKey,
    issuer: signer,
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 30 * 86_400_000),
  });
  if (i >= WARMUP) build.push(performance.now() - start);
}
summary('buildCertificate only', build);
