"""Joining from a Welcome, against the IETF ``welcome.json`` vectors.

Source: mls-implementations test-vectors ``welcome.json`` (FORMATS.md "Welcome");
suites other than 1 and 3 are skipped (Confide implements only those). Per case:

1. decode ``key_package`` (MLSMessage) and compute its KeyPackageRef,
   RefHash("MLS 1.0 KeyPackage Reference", KeyPackage);
2. find the EncryptedGroupSecrets addressed to it in ``welcome`` (MLSMessage) and
   open GroupSecrets with DecryptWithLabel(init_priv, "Welcome", encrypted_group_info, ...);
3. derive welcome_secret / key / nonce from joiner_secret (no PSKs: psk_secret is
   all zero) and open the GroupInfo;
4. verify the GroupInfo signature with ``signer_pub`` (VerifyWithLabel "GroupInfoTBS");
5. check confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash) with the
   epoch key schedule from joiner_secret and the GroupContext.

Negative checks beside each case: a modified signature, a wrong confirmation tag
and the wrong HPKE private key are all refused.
"""

from __future__ import annotations

import pytest

from crypto.errors import DecryptError, InvalidSignature
from crypto.mls.ciphersuite import get_suite
from crypto.mls.key_package import KeyPackage
from crypto.mls.key_schedule import (
    confirmation_tag,
    epoch_secrets_from_joiner,
    welcome_key_nonce,
    welcome_secret,
)
from crypto.mls.message import MLSMessage
from crypto.mls.welcome import GroupInfo, GroupSecrets, Welcome
from tests.conftest import vector_params


@pytest.mark.parametrize("case", vector_params("mls/welcome.json"))
def test_welcome_vector(case):
    suite = get_suite(case["cipher_suite"])
    init_priv = bytes.fromhex(case["init_priv"])
    signer_pub = bytes.fromhex(case["signer_pub"])
    kp_bytes = bytes.fromhex(case["key_package"])
    welcome_bytes = bytes.fromhex(case["welcome"])

    kp_msg = MLSMessage.from_bytes(kp_bytes)
    welcome_msg = MLSMessage.from_bytes(welcome_bytes)
    assert isinstance(kp_msg.body, KeyPackage) and isinstance(welcome_msg.body, Welcome)
    assert kp_msg.to_bytes() == kp_bytes and welcome_msg.to_bytes() == welcome_bytes
    key_package, welcome = kp_msg.body, welcome_msg.body
    assert welcome.cipher_suite == key_package.cipher_suite == suite.id

    ref = suite.ref_hash("MLS 1.0 KeyPackage Reference", key_package.to_bytes())
    entry = welcome.secrets_for(ref)
    assert entry is not None, "no EncryptedGroupSecrets for this KeyPackage"
    sealed = entry.encrypted_group_secrets
    secrets = GroupSecrets.from_bytes(suite.decrypt_with_label(
        init_priv, "Welcome", welcome.encrypted_group_info, sealed.kem_output, sealed.ciphertext))
    assert secrets.psks == ()

    key, nonce = welcome_key_nonce(suite, welcome_secret(suite, secrets.joiner_secret))
    group_info = GroupInfo.from_bytes(suite.aead_open(key, nonce, b"", welcome.encrypted_group_info))
    suite.verify_with_label(signer_pub, "GroupInfoTBS", group_info.tbs_bytes(), group_info.signature)

    context = group_info.group_context
    epoch = epoch_secrets_from_joiner(suite, secrets.joiner_secret, None, context.to_bytes())
    expected_tag = confirmation_tag(suite, epoch.confirmation_key, context.confirmed_transcript_hash)
    assert group_info.confirmation_tag == expected_tag

    # negative checks: each of these must be refused
    bad_sig = bytes([group_info.signature[0] ^ 1]) + group_info.signature[1:]
    with pytest.raises(InvalidSignature):
        suite.verify_with_label(signer_pub, "GroupInfoTBS", group_info.tbs_bytes(), bad_sig)
    wrong_epoch = epoch_secrets_from_joiner(suite, bytes(suite.hash_len), None, context.to_bytes())
    assert confirmation_tag(suite, wrong_epoch.confirmation_key,
                            context.confirmed_transcript_hash) != group_info.confirmation_tag
    with pytest.raises(DecryptError):
        suite.decrypt_with_label(bytes(31) + b"\x01", "Welcome", welcome.encrypted_group_info,
                                 sealed.kem_output, sealed.ciphertext)
