"""Password hashing for admin users (scrypt via werkzeug) and the password-strength rule."""

from __future__ import annotations

from werkzeug.security import generate_password_hash

from accessd.errors import Invalid

MIN_LENGTH = 12


def check_strength(password: str) -> None:
    """Raise Invalid unless the password is long enough and not trivially guessable."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"password must be at least {MIN_LENGTH} characters")
    if len(set(password)) < 6:
        raise Invalid("password uses too few distinct characters")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")
