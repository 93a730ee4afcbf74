// ts-mls (npm, pinned 1.6.4) behind Confide's MLS driver protocol (spec/mls-driver.md).
//
// One JSON request per line on stdin, one JSON response per line on stdout, in
// order. Bytes are lowercase hex. Test-only: ts-mls is Confide's independent
// peer in the IETF interop scripts, never a runtime dependency.
//
// Supported: cipher suites 1 and 3; every op of the protocol except the external-signer
// family, which answers "unsupported".
// Known limitations of ts-mls 1.6.4 honoured here:
//   - force_path is advisory: ts-mls adds a path exactly when RFC 9420 requires one;
//   - external_join with psks is unsupported (no PSK proposals in external commits);
//   - external_senders (extension 5) is decoded as one ExternalSender, not the RFC 9420
//     vector: creating it is unsupported, and processing a commit that carries one
//     answers "unsupported" (ts-mls's CodecError) rather than "mls_error";
//   - external_pub (extension 4) is written and read as the bare key, without the
//     HPKEPublicKey<V> length prefix of RFC 9420 section 12.4.3.2: group_info signs an
//     RFC-conformant GroupInfo itself, and external_join strips the prefix (see
//     conformantExternalPub) before ts-mls imports the key.

import { createInterface } from "node:readline";
import { webcrypto } from "node:crypto";

import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  createProposal,
  decodeMlsMessage,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  joinGroupExternal,
  makePskIndex,
  mlsExporter,
  processPrivateMessage,
  processPublicMessage,
  proposeAddExternal,
} from "ts-mls";
import { createGroupInfo } from "ts-mls/createCommit.js";
import { makeResumptionPsk, joinGroupFromBranch, joinGroupFromReinit } from "ts-mls/resumption.js";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { signLeafNodeCommit } from "ts-mls/leafNode.js";
import { updateLeafKey } from "ts-mls/privateKeyPath.js";
import { defaultExtensionTypes } from "ts-mls/defaultExtensionType.js";

const SUITES = {
  1: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
  3: "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
};

const OPS = [
  "supported", "create_group", "create_key_package", "join_group", "external_join",
  "group_info", "state_auth", "export", "protect", "unprotect", "store_psk",
  "add_proposal", "update_proposal", "remove_proposal", "external_psk_proposal",
  "resumption_psk_proposal", "group_context_extensions_proposal", "commit",
  "handle_commit", "handle_pending_commit", "free", "new_member_add_proposal",
  "create_branch", "handle_branch", "reinit_proposal", "reinit_commit",
  "handle_pending_reinit_commit", "handle_reinit_commit", "reinit_welcome", "handle_reinit_welcome",
];

class DriverError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// ---------------------------------------------------------------- encoding

function hex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

function unhex(value, field) {
  if (typeof value !== "string" || value.length % 2 !== 0 || !/^[0-9a-f]*$/.test(value)) {
    throw new DriverError("bad_request", `${field} must be lowercase hex`);
  }
  return new Uint8Array(Buffer.from(value, "hex"));
}

function b64(bytes) {
  return Buffer.from(bytes).toString("base64");
}

function need(req, field) {
  if (!(field in req) || req[field] === null || req[field] === undefined) {
    throw new DriverError("bad_request", `missing field ${field}`);
  }
  return req[field];
}

function optHex(req, field) {
  const v = req[field];
  return v === undefined || v === null || v === "" ? undefined : unhex(v, field);
}

function decodeMessage(bytes, field, wireformat) {
  let decoded;
  try {
    decoded = decodeMlsMessage(bytes, 0);
  } catch (e) {
    throw new DriverError("bad_request", `${field}: not an MLSMessage (${e.message})`);
  }
  if (decoded === undefined || decoded[1] !== bytes.length) {
    throw new DriverError("bad_request", `${field}: not an MLSMessage`);
  }
  const msg = decoded[0];
  if (wireformat !== undefined && !wireformat.includes(msg.wireformat)) {
    throw new DriverError("bad_request", `${field}: expected ${wireformat.join(" or ")}, got ${msg.wireformat}`);
  }
  return msg;
}

// ts-mls 1.6.4 decodes the external_senders extension as one ExternalSender, not as
// the vector `ExternalSender external_senders<V>` of RFC 9420 section 12.1.8.1, so it
// rejects (and would mis-encode) any RFC-conformant value: refuse it up front.
function extensionFromJson(e) {
  const number = need(e, "extension_type");
  if (number === 5) {
    throw new DriverError("unsupported",
      "ts-mls 1.6.4 decodes external_senders as a single ExternalSender, not the RFC 9420 vector");
  }
  const name = Object.keys(defaultExtensionTypes).find((k) => defaultExtensionTypes[k] === number);
  return { extensionType: name ?? number, extensionData: unhex(need(e, "extension_data"), "extension_data") };
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// MLS variable-length integer (RFC 9420 section 2.1.2) framing of an opaque<V>.
function varLen(data) {
  const n = data.length;
  let head;
  if (n < 0x40) head = [n];
  else if (n < 0x4000) head = [0x40 | (n >> 8), n & 0xff];
  else head = [0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  return new Uint8Array([...head, ...data]);
}

function unVarLen(data) {
  if (data.length === 0) return undefined;
  const prefix = data[0] >> 6;
  if (prefix === 3) return undefined;
  const size = 1 << prefix;
  if (data.length < size) return undefined;
  let n = data[0] & 0x3f;
  for (let i = 1; i < size; i++) n = n * 256 + data[i];
  return data.length - size === n ? data.subarray(size) : undefined;
}

// The external_pub extension as RFC 9420 section 12.4.3.2 encodes it: HPKEPublicKey<V>.
async function rfcExternalPub(m) {
  const pair = await m.impl.hpke.deriveKeyPair(m.state.keySchedule.externalSecret);
  return varLen(await m.impl.hpke.exportPublicKey(pair.publicKey));
}

// joinGroupExternal hands external_pub's data straight to importPublicKey and also
// verifies the GroupInfo signature over it, so the data cannot be rewritten: give it a
// suite whose importPublicKey unwraps exactly that value.
function conformantExternalPub(groupInfo, impl) {
  const ext = groupInfo.extensions.find((e) => e.extensionType === "external_pub");
  const bare = ext === undefined ? undefined : unVarLen(ext.extensionData);
  if (bare === undefined) return impl;
  const wrapped = ext.extensionData;
  const hpke = new Proxy(impl.hpke, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "importPublicKey") return typeof value === "function" ? value.bind(target) : value;
      return (key) => value.call(target, key === wrapped || equalBytes(key, wrapped) ? bare : key);
    },
  });
  return { ...impl, hpke };
}

// ---------------------------------------------------------------- driver state

const impls = new Map(); // suite number -> CiphersuiteImpl
const signers = new Map(); // `${suite}/${identity hex}` -> {signKey, publicKey}
const states = new Map(); // state_id -> Member
const transactions = new Map(); // transaction_id -> {suite, publicPackage, privatePackage, psks}
const ownProposals = new Map(); // proposal hex -> {ref, entry, leafKey?}
const reinits = new Map(); // reinit_id -> {m (suspended member), suite, publicPackage, privatePackage}
let nextId = 1;

async function suiteImpl(suite) {
  if (!(suite in SUITES)) throw new DriverError("unsupported", `cipher suite ${suite} not supported`);
  if (!impls.has(suite)) impls.set(suite, await getCiphersuiteImpl(getCiphersuiteFromName(SUITES[suite])));
  return impls.get(suite);
}

function suiteOfName(name) {
  const suite = Object.keys(SUITES).map(Number).find((s) => SUITES[s] === name);
  if (suite === undefined) throw new DriverError("unsupported", `cipher suite ${name} not supported`);
  return suite;
}

function capabilities() {
  // Explicit and deterministic (no GREASE): both supported suites, Basic credentials.
  return {
    versions: ["mls10"],
    ciphersuites: [SUITES[1], SUITES[3]],
    extensions: [],
    proposals: [],
    credentials: ["basic"],
  };
}

async function signerFor(suite, identity, impl) {
  const key = `${suite}/${hex(identity)}`;
  if (!signers.has(key)) signers.set(key, await impl.signature.keygen());
  return signers.get(key);
}

async function newKeyPackage(suite, identity) {
  const impl = await suiteImpl(suite);
  const credential = { credentialType: "basic", identity };
  const signer = await signerFor(suite, identity, impl);
  return generateKeyPackageWithKey(credential, capabilities(), defaultLifetime, [], signer, impl);
}

function member(req) {
  const id = need(req, "state_id");
  const m = states.get(id);
  if (m === undefined) throw new DriverError("unknown_state", `no state ${id}`);
  return m;
}

function addMember(m) {
  const id = nextId++;
  states.set(id, m);
  return id;
}

function pskIndex(m) {
  return makePskIndex(m.state, m.psks);
}

function epochAuthenticator(m) {
  return hex(m.state.keySchedule.epochAuthenticator);
}

function wire(message) {
  return hex(encodeMlsMessage(message));
}

function leafIndexOf(state, identity) {
  for (let i = 0; i < state.ratchetTree.length; i += 2) {
    const node = state.ratchetTree[i];
    if (node?.nodeType === "leaf" && node.leaf.credential.credentialType === "basic"
        && equalBytes(node.leaf.credential.identity, identity)) {
      return i / 2;
    }
  }
  throw new DriverError("bad_request", `no member with identity ${hex(identity)}`);
}

function randomBytes(n) {
  return webcrypto.getRandomValues(new Uint8Array(n));
}

// processMessage of ts-mls 1.6.4 hands PrivateMessages an empty PSK index, so a
// PrivateMessage commit with PSK proposals fails there: dispatch by hand instead.
async function processMessage(msg, state, psks, impl) {
  if (msg.wireformat === "mls_public_message") {
    return { ...(await processPublicMessage(state, msg.publicMessage, psks, impl, acceptAll)), kind: "newState" };
  }
  return processPrivateMessage(state, msg.privateMessage, psks, impl, acceptAll);
}

// Re-install exactly the by-reference proposals of a commit, in order, into the
// state's proposal cache: our own from ownProposals, the others by processing them.
async function installProposals(m, proposals) {
  let state = { ...m.state, unappliedProposals: {} };
  let leafKey;
  for (const p of proposals) {
    const own = ownProposals.get(p);
    if (own !== undefined && own.groupId === hex(state.groupContext.groupId)) {
      state = { ...state, unappliedProposals: { ...state.unappliedProposals, [own.ref]: own.entry } };
      if (own.leafKey !== undefined && own.leaf === state.privatePath.leafIndex) leafKey = own.leafKey;
      continue;
    }
    const msg = decodeMessage(unhex(p, "proposal"), "proposal", ["mls_public_message", "mls_private_message"]);
    const result = await processMessage(msg, state, makePskIndex(state, m.psks), m.impl);
    if (result.kind !== "newState") throw new DriverError("bad_request", "by-reference item is not a proposal");
    state = result.newState;
  }
  return { state, leafKey };
}

function proposalFromDescription(m, d) {
  switch (d.proposal_type) {
    case "add": {
      const msg = decodeMessage(unhex(need(d, "key_package"), "key_package"), "key_package", ["mls_key_package"]);
      return { proposalType: "add", add: { keyPackage: msg.keyPackage } };
    }
    case "remove":
      return { proposalType: "remove", remove: { removed: leafIndexOf(m.state, unhex(need(d, "removed_identity"), "removed_identity")) } };
    case "external_psk":
      return externalPsk(m, unhex(need(d, "psk_id"), "psk_id"));
    case "resumption_psk":
      return resumptionPsk(m, need(d, "epoch_id"));
    case "group_context_extensions":
      return { proposalType: "group_context_extensions", groupContextExtensions: { extensions: need(d, "extensions").map(extensionFromJson) } };
    default:
      throw new DriverError("unsupported", `by-value proposal_type ${d.proposal_type} not supported`);
  }
}

function externalPsk(m, pskId) {
  return {
    proposalType: "psk",
    psk: { preSharedKeyId: { psktype: "external", pskId, pskNonce: randomBytes(m.impl.kdf.size) } },
  };
}

function resumptionPsk(m, epoch) {
  return {
    proposalType: "psk",
    psk: {
      preSharedKeyId: {
        psktype: "resumption", usage: "application", pskGroupId: m.state.groupContext.groupId,
        pskEpoch: BigInt(epoch), pskNonce: randomBytes(m.impl.kdf.size),
      },
    },
  };
}

async function sendProposal(m, proposal, extra = {}) {
  const before = new Set(Object.keys(m.state.unappliedProposals));
  const { newState, message } = await createProposal(m.state, !m.encrypt, proposal, m.impl);
  const ref = Object.keys(newState.unappliedProposals).find((k) => !before.has(k));
  m.state = newState;
  const bytes = wire(message);
  if (ref !== undefined) {
    ownProposals.set(bytes, {
      ref, entry: newState.unappliedProposals[ref], groupId: hex(newState.groupContext.groupId),
      leaf: newState.privatePath.leafIndex, ...extra,
    });
  }
  return { proposal: bytes };
}

// A merged ReInit commit: the member's state is suspended; a key package of the new
// suite (same identity, hence same signature key per suite) waits under a reinit_id.
async function suspended(m) {
  const active = m.state.groupActiveState;
  if (active?.kind !== "suspendedPendingReinit") throw new DriverError("mls_error", "the commit carried no ReInit");
  const suite = suiteOfName(active.reinit.cipherSuite);
  const own = m.state.ratchetTree[m.state.privatePath.leafIndex * 2].leaf;
  const { publicPackage, privatePackage } = await newKeyPackage(suite, own.credential.identity);
  const id = nextId++;
  reinits.set(id, { m, suite, publicPackage, privatePackage });
  return {
    reinit_id: id,
    key_package: wire({ version: "mls10", wireformat: "mls_key_package", keyPackage: publicPackage }),
    epoch_authenticator: epochAuthenticator(m),
  };
}

function reinitOf(req) {
  const id = need(req, "reinit_id");
  const r = reinits.get(id);
  if (r === undefined) throw new DriverError("unknown_state", `no reinit ${id}`);
  return r;
}

// ---------------------------------------------------------------- operations

const handlers = {
  async supported() {
    return { cipher_suites: [1, 3], ops: OPS, name: "ts-mls", version: "1.6.4" };
  },

  async create_group(req) {
    const suite = need(req, "cipher_suite");
    const impl = await suiteImpl(suite);
    const identity = unhex(need(req, "identity"), "identity");
    const { publicPackage, privatePackage } = await newKeyPackage(suite, identity);
    const state = await createGroup(unhex(need(req, "group_id"), "group_id"), publicPackage, privatePackage, [], impl);
    return { state_id: addMember({ state, impl, suite, encrypt: !!req.encrypt_handshake, psks: {}, pending: null }) };
  },

  async create_key_package(req) {
    const suite = need(req, "cipher_suite");
    const { publicPackage, privatePackage } = await newKeyPackage(suite, unhex(need(req, "identity"), "identity"));
    const id = nextId++;
    transactions.set(id, { suite, publicPackage, privatePackage, psks: {} });
    return { transaction_id: id, key_package: wire({ version: "mls10", wireformat: "mls_key_package", keyPackage: publicPackage }) };
  },

  async join_group(req) {
    const tid = need(req, "transaction_id");
    const tx = transactions.get(tid);
    if (tx === undefined) throw new DriverError("unknown_state", `no transaction ${tid}`);
    const impl = await suiteImpl(tx.suite);
    const welcome = decodeMessage(unhex(need(req, "welcome"), "welcome"), "welcome", ["mls_welcome"]).welcome;
    const treeBytes = optHex(req, "ratchet_tree");
    const tree = treeBytes === undefined ? undefined : decodeRatchetTree(treeBytes, 0)[0];
    const state = await joinGroup(welcome, tx.publicPackage, tx.privatePackage, makePskIndex(undefined, tx.psks), impl, tree);
    transactions.delete(tid);
    const m = { state, impl, suite: tx.suite, encrypt: !!req.encrypt_handshake, psks: { ...tx.psks }, pending: null };
    return { state_id: addMember(m), epoch_authenticator: epochAuthenticator(m) };
  },

  async external_join(req) {
    if ((req.psks ?? []).length > 0) {
      throw new DriverError("unsupported", "ts-mls 1.6.4 cannot put PSK proposals in an external commit");
    }
    const msg = decodeMessage(unhex(need(req, "group_info"), "group_info"), "group_info", ["mls_group_info"]);
    const suite = suiteOfName(msg.groupInfo.groupContext.cipherSuite);
    const impl = await suiteImpl(suite);
    const { publicPackage, privatePackage } = await newKeyPackage(suite, unhex(need(req, "identity"), "identity"));
    const treeBytes = optHex(req, "ratchet_tree");
    const tree = treeBytes === undefined ? undefined : decodeRatchetTree(treeBytes, 0)[0];
    const { publicMessage, newState } = await joinGroupExternal(
      msg.groupInfo, publicPackage, privatePackage, !!req.remove_prior, conformantExternalPub(msg.groupInfo, impl), tree);
    const m = { state: newState, impl, suite, encrypt: !!req.encrypt_handshake, psks: {}, pending: null };
    return {
      state_id: addMember(m),
      commit: wire({ version: "mls10", wireformat: "mls_public_message", publicMessage }),
      epoch_authenticator: epochAuthenticator(m),
    };
  },

  async group_info(req) {
    const m = member(req);
    const extensions = [{ extensionType: "external_pub", extensionData: await rfcExternalPub(m) }];
    if (!req.external_tree) {
      extensions.push({ extensionType: "ratchet_tree", extensionData: encodeRatchetTree(m.state.ratchetTree) });
    }
    const groupInfo = await createGroupInfo(m.state.groupContext, m.state.confirmationTag, m.state, extensions, m.impl);
    return {
      group_info: wire({ version: "mls10", wireformat: "mls_group_info", groupInfo }),
      ratchet_tree: hex(encodeRatchetTree(m.state.ratchetTree)),
    };
  },

  async state_auth(req) {
    const m = member(req);
    return { epoch_authenticator: epochAuthenticator(m), epoch: Number(m.state.groupContext.epoch) };
  },

  async export(req) {
    const m = member(req);
    const label = new TextDecoder().decode(unhex(need(req, "label"), "label"));
    const secret = await mlsExporter(m.state.keySchedule.exporterSecret, label,
      unhex(need(req, "context"), "context"), need(req, "key_length"), m.impl);
    return { exported_secret: hex(secret) };
  },

  async protect(req) {
    const m = member(req);
    const { newState, privateMessage } = await createApplicationMessage(m.state,
      unhex(need(req, "plaintext"), "plaintext"), m.impl, unhex(need(req, "authenticated_data"), "authenticated_data"));
    m.state = newState;
    return { ciphertext: wire({ version: "mls10", wireformat: "mls_private_message", privateMessage }) };
  },

  async unprotect(req) {
    const m = member(req);
    const msg = decodeMessage(unhex(need(req, "ciphertext"), "ciphertext"), "ciphertext", ["mls_private_message"]);
    const result = await processMessage(msg, m.state, pskIndex(m), m.impl);
    if (result.kind !== "applicationMessage") throw new DriverError("bad_request", "not an application message");
    m.state = result.newState;
    return { authenticated_data: hex(msg.privateMessage.authenticatedData), plaintext: hex(result.message) };
  },

  async store_psk(req) {
    const target = "state_id" in req ? member(req) : transactions.get(need(req, "transaction_id"));
    if (target === undefined) throw new DriverError("unknown_state", `no transaction ${req.transaction_id}`);
    target.psks[b64(unhex(need(req, "psk_id"), "psk_id"))] = unhex(need(req, "psk_secret"), "psk_secret");
    return {};
  },

  async add_proposal(req) {
    const m = member(req);
    return sendProposal(m, proposalFromDescription(m, { proposal_type: "add", key_package: need(req, "key_package") }));
  },

  async update_proposal(req) {
    const m = member(req);
    const leafIndex = m.state.privatePath.leafIndex;
    const current = m.state.ratchetTree[leafIndex * 2].leaf;
    const keys = await m.impl.hpke.generateKeyPair();
    const tbs = {
      hpkePublicKey: await m.impl.hpke.exportPublicKey(keys.publicKey),
      signaturePublicKey: current.signaturePublicKey,
      credential: current.credential,
      capabilities: current.capabilities,
      leafNodeSource: "update",
      extensions: current.extensions,
      groupId: m.state.groupContext.groupId,
      leafIndex,
    };
    const { groupId: _g, leafIndex: _l, ...leafNode } = await signLeafNodeCommit(tbs, m.state.signaturePrivateKey, m.impl.signature);
    const leafKey = await m.impl.hpke.exportPrivateKey(keys.privateKey);
    return sendProposal(m, { proposalType: "update", update: { leafNode } }, { leafKey });
  },

  async remove_proposal(req) {
    const m = member(req);
    return sendProposal(m, proposalFromDescription(m, { proposal_type: "remove", removed_identity: need(req, "removed_identity") }));
  },

  async external_psk_proposal(req) {
    const m = member(req);
    return sendProposal(m, externalPsk(m, unhex(need(req, "psk_id"), "psk_id")));
  },

  async resumption_psk_proposal(req) {
    const m = member(req);
    return sendProposal(m, resumptionPsk(m, need(req, "epoch_id")));
  },

  async group_context_extensions_proposal(req) {
    const m = member(req);
    return sendProposal(m, proposalFromDescription(m, { proposal_type: "group_context_extensions", extensions: need(req, "extensions") }));
  },

  async commit(req) {
    const m = member(req);
    const { state } = await installProposals(m, req.by_reference ?? []);
    const extraProposals = (req.by_value ?? []).map((d) => proposalFromDescription(m, d));
    const result = await createCommit(
      { state, cipherSuite: m.impl, pskIndex: makePskIndex(state, m.psks) },
      { extraProposals, ratchetTreeExtension: !req.external_tree, wireAsPublicMessage: !m.encrypt },
    );
    m.state = state;
    m.pending = result.newState;
    return {
      commit: wire(result.commit),
      welcome: result.welcome === undefined ? null : wire({ version: "mls10", wireformat: "mls_welcome", welcome: result.welcome }),
      ratchet_tree: hex(encodeRatchetTree(result.newState.ratchetTree)),
      epoch_authenticator: hex(result.newState.keySchedule.epochAuthenticator),
    };
  },

  async handle_pending_commit(req) {
    const m = member(req);
    if (m.pending === null) throw new DriverError("bad_request", "no pending commit");
    m.state = m.pending;
    m.pending = null;
    return { state_id: req.state_id, epoch_authenticator: epochAuthenticator(m) };
  },

  async handle_commit(req) {
    const m = member(req);
    const { state, leafKey } = await installProposals(m, req.proposals ?? []);
    const prepared = leafKey === undefined ? state : { ...state, privatePath: updateLeafKey(state.privatePath, leafKey) };
    const msg = decodeMessage(unhex(need(req, "commit"), "commit"), "commit", ["mls_public_message", "mls_private_message"]);
    const result = await processMessage(msg, prepared, makePskIndex(prepared, m.psks), m.impl);
    if (result.kind !== "newState") throw new DriverError("bad_request", "not a commit");
    m.state = result.newState;
    m.pending = null;
    return { state_id: req.state_id, epoch_authenticator: epochAuthenticator(m) };
  },

  async new_member_add_proposal(req) {
    const msg = decodeMessage(unhex(need(req, "group_info"), "group_info"), "group_info", ["mls_group_info"]);
    const suite = suiteOfName(msg.groupInfo.groupContext.cipherSuite);
    const impl = await suiteImpl(suite);
    const { publicPackage, privatePackage } = await newKeyPackage(suite, unhex(need(req, "identity"), "identity"));
    const proposal = await proposeAddExternal(msg.groupInfo, publicPackage, privatePackage, impl);
    const id = nextId++;
    transactions.set(id, { suite, publicPackage, privatePackage, psks: {} });
    return { proposal: wire(proposal), transaction_id: id };
  },

  // ts-mls's branchGroup neither embeds the tree nor takes extensions: compose it here.
  async create_branch(req) {
    const m = member(req);
    const own = m.state.ratchetTree[m.state.privatePath.leafIndex * 2].leaf;
    const { publicPackage, privatePackage } = await newKeyPackage(m.suite, own.credential.identity);
    const fresh = await createGroup(unhex(need(req, "group_id"), "group_id"), publicPackage, privatePackage,
      (req.extensions ?? []).map(extensionFromJson), m.impl);
    const adds = need(req, "key_packages").map((kp) => proposalFromDescription(m, { proposal_type: "add", key_package: kp }));
    const psk = { proposalType: "psk", psk: { preSharedKeyId: makeResumptionPsk(m.state, "branch", m.impl).id } };
    const result = await createCommit(
      { state: fresh, cipherSuite: m.impl, pskIndex: makePskIndex(m.state, {}) },
      { extraProposals: [...adds, psk], ratchetTreeExtension: !req.external_tree, wireAsPublicMessage: !m.encrypt },
    );
    const b = { state: result.newState, impl: m.impl, suite: m.suite, encrypt: m.encrypt, psks: { ...m.psks }, pending: null };
    return {
      state_id: addMember(b),
      welcome: wire({ version: "mls10", wireformat: "mls_welcome", welcome: result.welcome }),
      ratchet_tree: hex(encodeRatchetTree(result.newState.ratchetTree)),
      epoch_authenticator: epochAuthenticator(b),
    };
  },

  async handle_branch(req) {
    const m = member(req);
    const tid = need(req, "transaction_id");
    const tx = transactions.get(tid);
    if (tx === undefined) throw new DriverError("unknown_state", `no transaction ${tid}`);
    const welcome = decodeMessage(unhex(need(req, "welcome"), "welcome"), "welcome", ["mls_welcome"]).welcome;
    const treeBytes = optHex(req, "ratchet_tree");
    const tree = treeBytes === undefined ? undefined : decodeRatchetTree(treeBytes, 0)[0];
    const state = await joinGroupFromBranch(m.state, welcome, tx.publicPackage, tx.privatePackage, tree, m.impl);
    transactions.delete(tid);
    const b = { state, impl: m.impl, suite: m.suite, encrypt: m.encrypt, psks: { ...m.psks }, pending: null };
    return { state_id: addMember(b), epoch_authenticator: epochAuthenticator(b) };
  },

  async reinit_proposal(req) {
    const m = member(req);
    const suite = need(req, "cipher_suite");
    await suiteImpl(suite);
    return sendProposal(m, {
      proposalType: "reinit",
      reinit: {
        groupId: unhex(need(req, "group_id"), "group_id"), version: "mls10", cipherSuite: SUITES[suite],
        extensions: (req.extensions ?? []).map(extensionFromJson),
      },
    });
  },

  async reinit_commit(req) {
    const m = member(req);
    const { state } = await installProposals(m, [need(req, "proposal")]);
    const result = await createCommit(
      { state, cipherSuite: m.impl, pskIndex: makePskIndex(state, m.psks) },
      { wireAsPublicMessage: !m.encrypt },
    );
    m.state = state;
    m.pending = result.newState;
    return { commit: wire(result.commit) };
  },

  async handle_pending_reinit_commit(req) {
    await handlers.handle_pending_commit(req);
    return suspended(member(req));
  },

  async handle_reinit_commit(req) {
    await handlers.handle_commit(req);
    return suspended(member(req));
  },

  // ts-mls's reinitCreateNewGroup cannot embed the tree: compose it as create_branch does.
  async reinit_welcome(req) {
    const r = reinitOf(req);
    const { reinit } = r.m.state.groupActiveState;
    const impl = await suiteImpl(r.suite);
    const fresh = await createGroup(reinit.groupId, r.publicPackage, r.privatePackage, reinit.extensions, impl);
    const adds = need(req, "key_packages").map((kp) => ({
      proposalType: "add",
      add: { keyPackage: decodeMessage(unhex(kp, "key_package"), "key_package", ["mls_key_package"]).keyPackage },
    }));
    const psk = { proposalType: "psk", psk: { preSharedKeyId: makeResumptionPsk(r.m.state, "reinit", impl).id } };
    const result = await createCommit(
      { state: fresh, cipherSuite: impl, pskIndex: makePskIndex(r.m.state, {}) },
      { extraProposals: [...adds, psk], ratchetTreeExtension: !req.external_tree, wireAsPublicMessage: !r.m.encrypt },
    );
    const n = { state: result.newState, impl, suite: r.suite, encrypt: r.m.encrypt, psks: { ...r.m.psks }, pending: null };
    return {
      state_id: addMember(n),
      welcome: wire({ version: "mls10", wireformat: "mls_welcome", welcome: result.welcome }),
      ratchet_tree: hex(encodeRatchetTree(result.newState.ratchetTree)),
      epoch_authenticator: epochAuthenticator(n),
    };
  },

  async handle_reinit_welcome(req) {
    const r = reinitOf(req);
    const welcome = decodeMessage(unhex(need(req, "welcome"), "welcome"), "welcome", ["mls_welcome"]).welcome;
    const treeBytes = optHex(req, "ratchet_tree");
    const tree = treeBytes === undefined ? undefined : decodeRatchetTree(treeBytes, 0)[0];
    const state = await joinGroupFromReinit(r.m.state, welcome, r.publicPackage, r.privatePackage, tree);
    const n = { state, impl: await suiteImpl(r.suite), suite: r.suite, encrypt: r.m.encrypt, psks: { ...r.m.psks }, pending: null };
    return { state_id: addMember(n), epoch_authenticator: epochAuthenticator(n) };
  },

  async free(req) {
    if ("transaction_id" in req) transactions.delete(req.transaction_id);
    if ("state_id" in req) states.delete(req.state_id);
    if ("reinit_id" in req) reinits.delete(req.reinit_id);
    return {};
  },
};

for (const op of ["create_external_signer", "add_external_signer", "external_signer_proposal"]) {
  handlers[op] = async () => {
    throw new DriverError("unsupported", `${op}: external signers live in external_senders, `
      + "which ts-mls 1.6.4 encodes as a single ExternalSender, not the RFC 9420 vector");
  };
}

// ---------------------------------------------------------------- loop

async function answer(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { id: null, ok: false, error: { code: "bad_request", message: `invalid JSON: ${e.message}` } };
  }
  const id = req?.id ?? null;
  const handler = typeof req?.op === "string" && Object.hasOwn(handlers, req.op) ? handlers[req.op] : undefined;
  if (handler === undefined) {
    return { id, ok: false, error: { code: "unsupported", message: `unknown op ${req?.op}` } };
  }
  try {
    return { id, ok: true, ...(await handler(req)) };
  } catch (e) {
    if (e instanceof DriverError) return { id, ok: false, error: { code: e.code, message: e.message } };
    if (e?.name === "CodecError" && /external_senders/.test(e?.message ?? "")) {
      return { id, ok: false, error: { code: "unsupported", message:
        `ts-mls 1.6.4 cannot decode an RFC 9420 external_senders extension (${e.message})` } };
    }
    return { id, ok: false, error: { code: "mls_error", message: `${e?.name ?? "Error"}: ${e?.message ?? e}` } };
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  process.stdout.write(`${JSON.stringify(await answer(line))}\n`);
}
