"""DNS helpers: long TXT records are split into 255-byte strings; DKIM records match their keys."""

import base64
import re

from cryptography.hazmat.primitives import serialization

from mailstack import keys
from mailstack.records import txt_value


def test_long_txt_values_are_split_at_255_bytes():
    value = "v=DKIM1; k=rsa; p=" + "A" * 600
    parts = re.findall(r'"([^"]*)"', txt_value(value))
    assert [len(part) for part in parts] == [255, 255, len(value) - 510]
    assert "".join(parts) == value


def test_dkim_record_carries_the_public_key_and_the_key_is_kept(tmp_path):
    path = keys.dkim_key(tmp_path / "example.com.mail.key", 2048)
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_bytes()
    assert keys.dkim_key(path, 2048).read_bytes() == first  # never silently replaced
    record = keys.dkim_record(path)
    public = serialization.load_der_public_key(base64.b64decode(record.split("p=")[1]))
    private = serialization.load_pem_private_key(first, password=None)
    assert public.public_numbers() == private.public_key().public_numbers()
    assert public.key_size == 2048
