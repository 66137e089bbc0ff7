"""API 1.0 test keys shared by the auth, config, selection and simulator tests (made up; none is a real key)."""

from __future__ import annotations

import base64

__all__ = ["ACCESS_KEY", "APP_ID", "APP_KEY", "SECRET_KEY", "SECRET_KEY_BYTES", "V1_PARAMETERS"]

APP_ID = "0f1e2d3c-app-id-4b5a"
APP_KEY = "9a8b7c6d-application-key-5e4f"
ACCESS_KEY = "mYtOL3XZCOwG96BOiFTZRmSW8-access_key"
SECRET_KEY_BYTES = b"test-secret-key-bytes-for-hmac-sha1!"
SECRET_KEY = base64.b64encode(SECRET_KEY_BYTES).decode("ascii")

V1_PARAMETERS: dict[str, object] = {
    "auth_method": "api_keys_v1",
    "api_base_url": "https://eu-api.mimecast.com",
    "app_id": APP_ID,
    "app_key": APP_KEY,
    "access_key": ACCESS_KEY,
    "secret_key": SECRET_KEY,
}
"""A complete parameter set for ``auth_method`` ``api_keys_v1``."""
