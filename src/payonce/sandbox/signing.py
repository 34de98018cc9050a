"""Alipay's RSA2 signatures: the unsigned string built from parameters, signing and verifying."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# A request's signature covers sign_type; a notification's does not (Alipay's rule).
REQUEST_UNSIGNED_KEYS = frozenset({"sign"})
NOTIFICATION_UNSIGNED_KEYS = frozenset({"sign", "sign_type"})


def unsigned_string(
    params: Mapping[str, str], *, exclude: Iterable[str] = REQUEST_UNSIGNED_KEYS
) -> str:
    """``k=v`` pairs sorted by key and joined by ``&``, values as they are (not url-encoded).

    Empty values and the ``exclude`` keys take no part in the signature.
    """
    skipped = frozenset(exclude)
    return "&".join(
        f"{key}={value}" for key, value in sorted(params.items()) if value and key not in skipped
    )


# Loading checks the key's consistency (tens of milliseconds); a PEM is loaded once.
@functools.cache
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@functools.cache
def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def sign_rsa2(key: rsa.RSAPrivateKey, message: str) -> str:
    """SHA256withRSA (PKCS#1 v1.5) over the UTF-8 message, base64 without line breaks."""
    signature = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify_rsa2(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    # A '+' that reached us unencoded was decoded to a space on the way.
    cleaned = signature.strip().replace(" ", "+")
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def tampered(signature: str) -> str:
    """A base64 signature with its leading bytes flipped: well formed, and it no longer verifies."""
    raw = bytearray(base64.b64decode(signature))
    for index in range(min(8, len(raw))):
        raw[index] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode("ascii")
