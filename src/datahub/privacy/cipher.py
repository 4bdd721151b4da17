"""The vault cipher: deterministic AES-SIV (RFC 5297) with the domain as associated data.

Deterministic so that the same original always yields the same ciphertext
(appending is idempotent and prepare can encrypt without reading the vault);
SIV keeps that safe against nonce misuse. The domain is bound as associated
data, so a ciphertext moved to another domain's row fails to decrypt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV


class VaultCipher:
    """AES-SIV encryption of normalised originals (key: 32, 48 or 64 bytes)."""

    def __init__(self, key: bytes) -> None:
        self._siv = AESSIV(key)

    def __repr__(self) -> str:
        return "VaultCipher(<secret>)"

    def encrypt(self, plaintext: bytes, associated_data: Sequence[bytes] = ()) -> bytes:
        """Raw AES-SIV: ``SIV || ciphertext`` (RFC 5297 layout)."""
        return self._siv.encrypt(plaintext, list(associated_data) or None)

    def decrypt(self, ciphertext: bytes, associated_data: Sequence[bytes] = ()) -> bytes:
        """Raw AES-SIV decryption; raises ``ValueError`` if the data or key is wrong."""
        try:
            return self._siv.decrypt(ciphertext, list(associated_data) or None)
        except InvalidTag:
            raise ValueError(
                "vault ciphertext does not authenticate (wrong key or tampered)"
            ) from None

    def seal(self, domain: str, value: str) -> bytes:
        """Encrypt a normalised original of ``domain``."""
        return self.encrypt(value.encode("utf-8"), [domain.encode("ascii")])

    def seal_many(self, domain: str, values: Iterable[str]) -> list[bytes]:
        """:meth:`seal` for many values of one domain (one associated-data list, less overhead)."""
        ad = [domain.encode("ascii")]
        enc = self._siv.encrypt
        return [enc(v.encode("utf-8"), ad) for v in values]

    def open(self, domain: str, ciphertext: bytes) -> str:
        """Decrypt what :meth:`seal` produced for the same domain."""
        return self.decrypt(ciphertext, [domain.encode("ascii")]).decode("utf-8")
