"""One interop run: a script played for one suite, one wire format and one assignment,
with the checks the module docstring of :mod:`client.interop` lists."""

from __future__ import annotations

import base64
import contextlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .interop_driver import DriverError, DriverProcess, DriverUnavailable, StepFailure, Unsupported

__all__ = ["RunOutcome", "Run"]


def _hex_text(text: str) -> str:
    return text.encode().hex()


def _extensions(items: list[dict] | None) -> list[dict]:
    return [{"extension_type": e["extension_type"],
             "extension_data": base64.b64decode(e["extension_data"]).hex()} for e in items or []]


# ---------------------------------------------------------------- one run


@dataclass
class RunOutcome:
    """``status`` is "passed", "failed" or "unsupported"; ``detail`` says why."""

    status: str
    detail: str = ""


@dataclass
class Run:
    drivers: dict[str, DriverProcess]
    mapping: dict[str, str]
    suite: int
    encrypt: bool
    steps: list[dict]
    all_suites: Callable[[], list[int]]
    group_id: bytes = field(default_factory=lambda: str(uuid.uuid4()).encode())
    states: dict[str, int] = field(default_factory=dict)
    transactions: dict[str, int] = field(default_factory=dict)
    signers: dict[str, int] = field(default_factory=dict)
    group: list[str] = field(default_factory=list)
    store: list[dict] = field(default_factory=list)

    # -- plumbing

    async def call(self, actor: str, op: str, **fields) -> dict:
        driver = self.drivers[self.mapping[actor]]
        try:
            return await driver.request(op, **fields)
        except DriverError as exc:
            if exc.code == "unsupported":
                raise Unsupported(f"{exc.impl}: {op}: {exc.message}") from exc
            raise

    def item(self, index: int, name: str):
        if not isinstance(index, int) or not 0 <= index < len(self.store):
            raise StepFailure(f"reference to step {index}, which has not run")
        if name not in self.store[index] or self.store[index][name] is None:
            raise StepFailure(f"step {index} has no {name}")
        return self.store[index][name]

    def state(self, actor: str) -> int:
        if actor not in self.states:
            raise StepFailure(f"{actor} has no group state")
        return self.states[actor]

    def set_group(self, *names) -> None:
        self.group = list(dict.fromkeys(n for n in names if n))

    async def identity_fields(self, actor: str) -> dict:
        return {"identity": actor.encode().hex()}

    def by_value(self, desc: dict) -> dict:
        kind = str(desc.get("proposaltype", "")).lower()
        if kind == "add":
            return {"proposal_type": "add", "key_package": self.item(desc["keypackage"], "key_package")}
        if kind == "remove":
            return {"proposal_type": "remove", "removed_identity": desc["removed"].encode().hex()}
        if kind == "externalpsk":
            return {"proposal_type": "external_psk", "psk_id": self.item(desc["pskid"], "psk_id")}
        if kind == "resumptionpsk":
            return {"proposal_type": "resumption_psk", "epoch_id": desc["epochid"]}
        if kind == "groupcontextextensions":
            return {"proposal_type": "group_context_extensions",
                    "extensions": _extensions(desc.get("extensions"))}
        if kind == "reinit":
            group_id = self.group_id + (b"++" if desc.get("changegroupid") else b"")
            return {"proposal_type": "reinit", "group_id": group_id.hex(),
                    "cipher_suite": self.reinit_suite(bool(desc.get("changeciphersuite"))),
                    "extensions": _extensions(desc.get("extensions"))}
        raise StepFailure(f"unknown proposalType {kind!r}")

    def reinit_suite(self, change: bool) -> int:
        if not change:
            return self.suite
        others = [s for s in self.all_suites() if s != self.suite]
        if not others:
            raise Unsupported(f"changeCipherSuite needs a second suite common to {sorted(set(self.mapping.values()))}")
        return min(others)

    async def check_agreement(self, names: list[str], expected: str | None = None,
                              what: str = "epoch authenticator") -> None:
        values = {}
        for name in names:
            resp = await self.call(name, "state_auth", state_id=self.state(name))
            values[name] = resp["epoch_authenticator"]
        if expected is not None:
            values["(expected)"] = expected
        if len(set(values.values())) > 1:
            shown = ", ".join(f"{k}={v[:16]}" for k, v in values.items())
            raise StepFailure(f"{what} disagree: {shown}")

    def expect_ea(self, who: str, got: str | None, want: str | None) -> None:
        if got is not None and want is not None and got != want:
            raise StepFailure(f"{who}: epoch authenticator {got[:16]} != {want[:16]}")

    # -- actions (upstream semantics, see the README)

    async def a_creategroup(self, i: int, s: dict) -> None:
        actor = s["actor"]
        r = await self.call(actor, "create_group", cipher_suite=self.suite, group_id=self.group_id.hex(),
                            encrypt_handshake=self.encrypt, **await self.identity_fields(actor))
        self.states[actor] = r["state_id"]
        self.store[i]["group_id"] = self.group_id.hex()
        members = s.get("members") or []
        if members:
            kps = []
            for m in members:
                k = await self.call(m, "create_key_package", cipher_suite=self.suite,
                                    **await self.identity_fields(m))
                self.transactions[m] = k["transaction_id"]
                kps.append(k["key_package"])
            c = await self.call(actor, "commit", state_id=self.state(actor), by_reference=[],
                                by_value=[{"proposal_type": "add", "key_package": kp} for kp in kps],
                                force_path=False, external_tree=False)
            p = await self.call(actor, "handle_pending_commit", state_id=self.state(actor))
            self.states[actor] = p["state_id"]
            if not c.get("welcome"):
                raise StepFailure("commit adding members returned no welcome")
            for m in members:
                j = await self.call(m, "join_group", transaction_id=self.transactions.pop(m),
                                    welcome=c["welcome"], ratchet_tree=None,
                                    encrypt_handshake=self.encrypt, **await self.identity_fields(m))
                self.states[m] = j["state_id"]
                self.expect_ea(m, j.get("epoch_authenticator"), p.get("epoch_authenticator"))
        self.set_group(actor, *members)

    async def a_createkeypackage(self, i: int, s: dict) -> None:
        actor = s["actor"]
        k = await self.call(actor, "create_key_package", cipher_suite=self.suite,
                            **await self.identity_fields(actor))
        self.transactions[actor] = k["transaction_id"]
        self.store[i]["key_package"] = k["key_package"]

    async def _proposal(self, i: int, actor: str, op: str, **fields) -> None:
        r = await self.call(actor, op, state_id=self.state(actor), **fields)
        self.store[i]["proposal"] = r["proposal"]

    async def a_addproposal(self, i: int, s: dict) -> None:
        await self._proposal(i, s["actor"], "add_proposal", key_package=self.item(s["keypackage"], "key_package"))

    async def a_updateproposal(self, i: int, s: dict) -> None:
        await self._proposal(i, s["actor"], "update_proposal")

    async def a_removeproposal(self, i: int, s: dict) -> None:
        await self._proposal(i, s["actor"], "remove_proposal", removed_identity=s["removed"].encode().hex())

    async def a_externalpskproposal(self, i: int, s: dict) -> None:
        await self._proposal(i, s["actor"], "external_psk_proposal", psk_id=self.item(s["pskid"], "psk_id"))

    async def a_resumptionpskproposal(self, i: int, s: dict) -> None:
        await self._proposal(i, s["actor"], "resumption_psk_proposal", epoch_id=s["epochid"])

    async def a_groupcontextextensionsproposal(self, i: int, s: dict) -> None:
        await self._proposal(i, s["actor"], "group_context_extensions_proposal",
                             extensions=_extensions(s.get("extensions")))

    async def a_installexternalpsk(self, i: int, s: dict) -> None:
        psk_id, psk_secret = secrets.token_bytes(32).hex(), secrets.token_bytes(32).hex()
        for client in s.get("clients") or []:
            if client in self.states:
                target = {"state_id": self.states[client]}
            elif client in self.transactions:
                target = {"transaction_id": self.transactions[client]}
            else:
                raise StepFailure(f"{client} has neither a state nor a pending key package")
            await self.call(client, "store_psk", psk_id=psk_id, psk_secret=psk_secret, **target)
        self.store[i].update(psk_id=psk_id, psk_secret=psk_secret)

    async def a_fullcommit(self, i: int, s: dict) -> None:
        actor = s["actor"]
        by_reference = [self.item(j, "proposal") for j in s.get("byreference") or []]
        by_value = [self.by_value(d) for d in s.get("byvalue") or []]
        external_tree = bool(s.get("external_tree"))
        c = await self.call(actor, "commit", state_id=self.state(actor), by_reference=by_reference,
                            by_value=by_value, force_path=bool(s.get("force_path")),
                            external_tree=external_tree)
        p = await self.call(actor, "handle_pending_commit", state_id=self.state(actor))
        self.states[actor] = p["state_id"]
        ea = p["epoch_authenticator"]
        self.store[i].update(commit=c["commit"], welcome=c.get("welcome"),
                             ratchet_tree=c.get("ratchet_tree"), epoch_authenticator=ea)
        members, joiners = s.get("members") or [], s.get("joiners") or []
        for m in members:
            h = await self.call(m, "handle_commit", state_id=self.state(m), proposals=by_reference,
                                commit=c["commit"])
            self.states[m] = h["state_id"]
            self.expect_ea(m, h.get("epoch_authenticator"), ea)
        if joiners and not c.get("welcome"):
            raise StepFailure("commit with joiners returned no welcome")
        if joiners and external_tree and not c.get("ratchet_tree"):
            raise StepFailure("commit with external_tree returned no ratchet_tree")
        for m in joiners:
            if m not in self.transactions:
                raise StepFailure(f"joiner {m} has no pending key package")
            j = await self.call(m, "join_group", transaction_id=self.transactions.pop(m),
                                welcome=c["welcome"],
                                ratchet_tree=c.get("ratchet_tree") if external_tree else None,
                                encrypt_handshake=self.encrypt, **await self.identity_fields(m))
            self.states[m] = j["state_id"]
            self.expect_ea(m, j.get("epoch_authenticator"), ea)
        self.set_group(actor, *members, *joiners)

    async def a_externaljoin(self, i: int, s: dict) -> None:
        actor, joiner = s["actor"], s["joiner"]
        external_tree = bool(s.get("externaltree"))
        g = await self.call(actor, "group_info", state_id=self.state(actor), external_tree=external_tree)
        psks = [{"psk_id": self.item(j, "psk_id"), "psk_secret": self.item(j, "psk_secret")}
                for j in s.get("psks") or []]
        old = self.states.get(joiner)
        r = await self.call(joiner, "external_join", group_info=g["group_info"],
                            ratchet_tree=g.get("ratchet_tree") if external_tree else None,
                            encrypt_handshake=self.encrypt, remove_prior=bool(s.get("removeprior")),
                            psks=psks, **await self.identity_fields(joiner))
        if old is not None and old != r["state_id"]:
            with contextlib.suppress(DriverError):
                await self.call(joiner, "free", state_id=old)
        self.states[joiner] = r["state_id"]
        ea = r.get("epoch_authenticator")
        self.store[i].update(group_info=g["group_info"], ratchet_tree=g.get("ratchet_tree"),
                             commit=r["commit"], epoch_authenticator=ea)
        members = [m for m in s.get("members") or [] if m != actor]
        for m in [*members, actor]:
            h = await self.call(m, "handle_commit", state_id=self.state(m), proposals=[], commit=r["commit"])
            self.states[m] = h["state_id"]
            self.expect_ea(m, h.get("epoch_authenticator"), ea)
        self.set_group(actor, *members, joiner)

    async def a_protect(self, i: int, s: dict) -> None:
        actor = s["actor"]
        ad, pt = _hex_text(s["authenticateddata"]), _hex_text(s["plaintext"])
        r = await self.call(actor, "protect", state_id=self.state(actor), authenticated_data=ad, plaintext=pt)
        self.store[i].update(authenticated_data=ad, plaintext=pt, ciphertext=r["ciphertext"])
        later = {t.get("actor") for t in self.steps[i + 1:]
                 if t.get("action", "").lower() == "unprotect" and t.get("ciphertext") == i}
        for m in self.group:
            if m != actor and m not in later:
                await self._unprotect(m, i)

    async def _unprotect(self, actor: str, index: int) -> None:
        r = await self.call(actor, "unprotect", state_id=self.state(actor),
                            ciphertext=self.item(index, "ciphertext"))
        want = (self.item(index, "authenticated_data"), self.item(index, "plaintext"))
        got = (r.get("authenticated_data"), r.get("plaintext"))
        if got != want:
            raise StepFailure(f"{actor} unprotected step {index} as {got}, expected {want}")

    async def a_unprotect(self, i: int, s: dict) -> None:
        await self._unprotect(s["actor"], s["ciphertext"])
        self.store[i].update(authenticated_data=self.item(s["ciphertext"], "authenticated_data"),
                             plaintext=self.item(s["ciphertext"], "plaintext"))

    async def a_newmemberaddproposal(self, i: int, s: dict) -> None:
        actor, joiner = s["actor"], s["joiner"]
        g = await self.call(actor, "group_info", state_id=self.state(actor), external_tree=False)
        r = await self.call(joiner, "new_member_add_proposal", group_info=g["group_info"],
                            **await self.identity_fields(joiner))
        self.transactions[joiner] = r["transaction_id"]
        self.store[i]["proposal"] = r["proposal"]

    async def a_addexternalsigner(self, i: int, s: dict) -> None:
        actor, signer = s["actor"], s["signer"]
        e = await self.call(signer, "create_external_signer", cipher_suite=self.suite,
                            **await self.identity_fields(signer))
        self.signers[signer] = e["signer_id"]
        await self._proposal(i, actor, "add_external_signer", external_sender=e["external_sender"])

    async def a_externalsignerproposal(self, i: int, s: dict) -> None:
        actor, member = s["actor"], s["member"]
        if actor not in self.signers:
            raise StepFailure(f"{actor} is not an external signer")
        g = await self.call(member, "group_info", state_id=self.state(member), external_tree=True)
        r = await self.call(actor, "external_signer_proposal", signer_id=self.signers[actor],
                            group_info=g["group_info"], ratchet_tree=g.get("ratchet_tree"),
                            description=self.by_value(s["description"]))
        self.store[i]["proposal"] = r["proposal"]

    async def a_branch(self, i: int, s: dict) -> None:
        actor, members = s["actor"], s.get("members") or []
        external_tree = bool(s.get("external_tree"))
        kps = []
        for m in members:
            k = await self.call(m, "create_key_package", cipher_suite=self.suite, **await self.identity_fields(m))
            self.transactions[m] = k["transaction_id"]
            kps.append(k["key_package"])
        b = await self.call(actor, "create_branch", state_id=self.state(actor),
                            group_id=str(uuid.uuid4()).encode().hex(),
                            extensions=_extensions(s.get("extensions")), key_packages=kps,
                            force_path=bool(s.get("force_path")), external_tree=external_tree)
        self.states[actor] = b["state_id"]
        for m in members:
            old = self.state(m)
            h = await self.call(m, "handle_branch", state_id=old, transaction_id=self.transactions.pop(m),
                                welcome=b["welcome"],
                                ratchet_tree=b.get("ratchet_tree") if external_tree else None)
            self.states[m] = h["state_id"]
            self.expect_ea(m, h.get("epoch_authenticator"), b.get("epoch_authenticator"))
            if old != h["state_id"]:
                with contextlib.suppress(DriverError):
                    await self.call(m, "free", state_id=old)
        self.set_group(actor, *members)

    async def a_reinit(self, i: int, s: dict) -> None:
        proposer, committer, welcomer = s.get("proposer"), s["committer"], s["welcomer"]
        members = s.get("members") or []
        new_suite = self.reinit_suite(bool(s.get("changeciphersuite")))
        group_id = self.group_id + (b"++" if s.get("changegroupid") else b"")
        if proposer:
            r = await self.call(proposer, "reinit_proposal", state_id=self.state(proposer),
                                group_id=group_id.hex(), cipher_suite=new_suite,
                                extensions=_extensions(s.get("extensions")))
            proposal = r["proposal"]
        else:
            proposal = self.item(s["externalreinitproposal"], "proposal")
        everyone = list(dict.fromkeys(n for n in [welcomer, *members, proposer, committer] if n))
        c = await self.call(committer, "reinit_commit", state_id=self.state(committer), proposal=proposal)
        pc = await self.call(committer, "handle_pending_reinit_commit", state_id=self.state(committer))
        reinit_ids, key_packages = {committer: pc["reinit_id"]}, {committer: pc["key_package"]}
        for m in everyone:
            if m == committer:
                continue
            h = await self.call(m, "handle_reinit_commit", state_id=self.state(m), proposals=[proposal],
                                commit=c["commit"])
            self.expect_ea(m, h.get("epoch_authenticator"), pc.get("epoch_authenticator"))
            reinit_ids[m], key_packages[m] = h["reinit_id"], h["key_package"]
        self.suite = new_suite
        external_tree = bool(s.get("externaltree"))
        w = await self.call(welcomer, "reinit_welcome", reinit_id=reinit_ids[welcomer],
                            key_packages=[key_packages[m] for m in everyone if m != welcomer],
                            force_path=bool(s.get("forcepath")), external_tree=external_tree)
        self.states[welcomer] = w["state_id"]
        for m in everyone:
            if m == welcomer:
                continue
            h = await self.call(m, "handle_reinit_welcome", reinit_id=reinit_ids[m], welcome=w["welcome"],
                                ratchet_tree=w.get("ratchet_tree") if external_tree else None)
            self.states[m] = h["state_id"]
            self.expect_ea(m, h.get("epoch_authenticator"), w.get("epoch_authenticator"))
        self.set_group(*everyone)

    # -- driver loop

    async def play(self) -> RunOutcome:
        self.store = [{} for _ in self.steps]
        for i, step in enumerate(self.steps):
            action = str(step.get("action", ""))
            handler = getattr(self, f"a_{action.lower()}", None)
            where = f"step {i} ({action})"
            if handler is None:
                return RunOutcome("unsupported", f"{where}: runner does not know this action")
            try:
                await handler(i, step)
                await self.check_agreement(self.group)
            except Unsupported as exc:
                return RunOutcome("unsupported", f"{where}: {exc}")
            except (DriverError, DriverUnavailable, StepFailure) as exc:
                return RunOutcome("failed", f"{where}: {exc}")
            except (KeyError, TypeError, ValueError) as exc:
                return RunOutcome("failed", f"{where}: malformed step or response: {exc!r}")
        return RunOutcome("passed")

    async def free_all(self) -> None:
        for actor, state_id in self.states.items():
            driver = self.drivers[self.mapping[actor]]
            if driver.alive:
                with contextlib.suppress(DriverError, DriverUnavailable):
                    await driver.request("free", state_id=state_id)

