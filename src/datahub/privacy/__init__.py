"""Pseudonymisation: normalisers, keyed tokens, keys, the vault, audit log and leak scanner.

Modules:

* :mod:`~datahub.privacy.normalise` — ID numbers, phones, names, pinyin;
* :mod:`~datahub.privacy.tokens` — HMAC-SHA256 tokens ``k<version>_<32 hex>`` per domain;
* :mod:`~datahub.privacy.keys` — the key file, :class:`~datahub.privacy.keys.Keyring`, canaries;
* :mod:`~datahub.privacy.pseudonymise` — :func:`pseudonymise_feed` for one feed frame;
* :mod:`~datahub.privacy.cipher` — AES-SIV for vault originals;
* :mod:`~datahub.privacy.vault` — the re-identification vault and its hash-chained audit log;
* :mod:`~datahub.privacy.leaks` — scanner for raw identifiers in outputs;
* :mod:`~datahub.privacy.rotation` — key rotation (vault + warehouse).

See docs/privacy.md.
"""
