// ts-mls side of bench/mls_groups.py: the same group scenarios as Confide's, in process.
//
// Usage: node tests/interop/ts_mls_bench.mjs '{"suite": 3, "size": 50, "reps": 5, "messages": 200}'
// Prints one JSON object on stdout: {"name", "version", "node", "size", ...timings}.
// Timings are milliseconds (totals) or microseconds per message (protect_us,
// unprotect_us). Key packages are generated before timing; handshakes are
// PublicMessages, Welcomes embed the ratchet tree (as Confide's defaults).

import { performance } from "node:perf_hooks";

import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  defaultLifetime,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  makePskIndex,
  processPrivateMessage,
  processPublicMessage,
} from "ts-mls";

const SUITES = {
  1: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
  3: "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
};

const config = JSON.parse(process.argv[2] ?? "{}");
const suite = config.suite ?? 3;
const size = config.size ?? 10;
const reps = config.reps ?? 5;
const messages = config.messages ?? 200;
const impl = await getCiphersuiteImpl(getCiphersuiteFromName(SUITES[suite]));
const enc = new TextEncoder();

function capabilities() {
  return { versions: ["mls10"], ciphersuites: [SUITES[suite]], extensions: [], proposals: [], credentials: ["basic"] };
}

async function keyPackages(tag, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const credential = { credentialType: "basic", identity: enc.encode(`${tag}-${i}`) };
    out.push(await generateKeyPackage(credential, capabilities(), defaultLifetime, [], impl));
  }
  return out;
}

async function commit(state, extraProposals) {
  return createCommit({ state, cipherSuite: impl, pskIndex: makePskIndex(state, {}) },
    { extraProposals, ratchetTreeExtension: true, wireAsPublicMessage: true });
}

function adds(kps) {
  return kps.map((kp) => ({ proposalType: "add", add: { keyPackage: kp.publicPackage } }));
}

async function join(welcome, kp) {
  return joinGroup(welcome, kp.publicPackage, kp.privatePackage, makePskIndex(undefined, {}), impl);
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function scenario(size) {
  const result = { name: "ts-mls", version: "1.6.4", node: process.version, size };

  // 1. adds one per commit: the creator commits size-1 times; each new member joins.
  {
    const kps = await keyPackages("each", size);
    let state = await createGroup(enc.encode("bench-each"), kps[0].publicPackage, kps[0].privatePackage, [], impl);
    let commitMs = 0;
    let joinMs = 0;
    for (let i = 1; i < size; i++) {
      const t0 = performance.now();
      const r = await commit(state, adds([kps[i]]));
      state = r.newState;
      const t1 = performance.now();
      await join(r.welcome, kps[i]);
      joinMs += performance.now() - t1;
      commitMs += t1 - t0;
    }
    result.each_commit_ms = commitMs;
    result.each_join_ms = joinMs;
  }

  // 2. adds all at once; then empty commits with path and their processing; messages.
  {
    const kps = await keyPackages("once", size);
    let creator = await createGroup(enc.encode("bench-once"), kps[0].publicPackage, kps[0].privatePackage, [], impl);
    const t0 = performance.now();
    const r = await commit(creator, adds(kps.slice(1)));
    creator = r.newState;
    const t1 = performance.now();
    const members = [];
    for (const kp of kps.slice(1)) members.push(await join(r.welcome, kp));
    result.once_commit_ms = t1 - t0;
    result.once_join_ms = performance.now() - t1;

    let receiver = members.at(-1);
    const commitTimes = [];
    const processTimes = [];
    for (let k = 0; k < reps; k++) {
      const c0 = performance.now();
      const c = await commit(creator, []);
      const c1 = performance.now();
      const p = await processPublicMessage(receiver, c.commit.publicMessage, makePskIndex(receiver, {}), impl, acceptAll);
      const c2 = performance.now();
      creator = c.newState;
      receiver = p.newState;
      commitTimes.push(c1 - c0);
      processTimes.push(c2 - c1);
    }
    if (!equalBytes(creator.keySchedule.epochAuthenticator, receiver.keySchedule.epochAuthenticator)) {
      throw new Error("committer and receiver disagree on the epoch authenticator");
    }
    result.commit_ms = median(commitTimes);
    result.process_ms = median(processTimes);

    const payload = new Uint8Array(1024).map((_, i) => i & 0xff);
    const sent = [];
    const p0 = performance.now();
    for (let k = 0; k < messages; k++) {
      const m = await createApplicationMessage(creator, payload, impl);
      creator = m.newState;
      sent.push(m.privateMessage);
    }
    const p1 = performance.now();
    for (const pm of sent) {
      const out = await processPrivateMessage(receiver, pm, makePskIndex(receiver, {}), impl, acceptAll);
      receiver = out.newState;
      if (!equalBytes(out.message, payload)) throw new Error("unprotect returned another plaintext");
    }
    const p2 = performance.now();
    result.protect_us = ((p1 - p0) * 1000) / messages;
    result.unprotect_us = ((p2 - p1) * 1000) / messages;
  }
  return result;
}

// Warm up the JIT (and the suite's lazy initialisation) on a small group, untimed.
await scenario(Math.min(size, 3));
process.stdout.write(`${JSON.stringify(await scenario(size))}\n`);
