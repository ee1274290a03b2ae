"""Admin passwords: argon2id hashes and the strength rule of NIST SP 800-63B.

The rule: at least 12 characters, no composition rules, and refused when zxcvbn rates it easy to
guess (a score under 3: common passwords, dictionary words, keyboard walks, the user's own name).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from accessd.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 1000  # long passphrases are welcome; megabytes are not
MIN_SCORE = 3  # zxcvbn: 3 = "safely unguessable: moderate protection from offline slow-hash attacks"
# zxcvbn's work grows with length; the first 100 characters decide whether it is guessable
_RATED_LENGTH = 100

# argon2-cffi's defaults are RFC 9106's second recommended option (argon2id, 64 MiB, 3 passes)
_hasher = PasswordHasher()


def check_strength(password: str, user_inputs: tuple[str, ...] = ()) -> None:
    """Raise Invalid with the reason unless ``password`` may be used (``user_inputs``: the
    username and name, which the password must not be built from)."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"the password may be at most {MAX_LENGTH} characters long")
    if not password.isprintable() or any(0xD800 <= ord(c) <= 0xDFFF for c in password):
        raise Invalid("the password may not contain control characters")
    result = zxcvbn(password[:_RATED_LENGTH], user_inputs=[u for u in user_inputs if u])
    if result["score"] < MIN_SCORE:
        feedback = result.get("feedback") or {}
        hint = feedback.get("warning") or "it is built from common words or patterns"
        raise Invalid(f"the password is too easy to guess: {hint.rstrip('.')}. Use a longer passphrase")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; False for a missing or unreadable hash (never raises)."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (rehash at sign-in)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
