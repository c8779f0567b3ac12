"""Make a WebAssembly component unique by appending a custom section to it.

A custom section (id 0) may stand anywhere among a component's sections and changes
nothing about what the component does, but it changes its bytes, so its SHA-256 and
therefore the dispatcher's compile (artifacts are keyed by the uploaded bytes' digest).

    python3 bench/custom_section.py IN.wasm OUT.wasm PAYLOAD

As a module: `unique(template_bytes, payload_str) -> bytes`.
"""
import sys

SECTION_NAME = b"bench-tenant"


def leb128(value: int) -> bytes:
    """Unsigned LEB128, the encoding of a section's size and a name's length."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def unique(template: bytes, payload: str) -> bytes:
    """`template` with a custom section `bench-tenant` holding `payload` at its end."""
    assert template[:4] == b"\0asm", "not a WebAssembly binary"
    content = leb128(len(SECTION_NAME)) + SECTION_NAME + payload.encode()
    return template + b"\x00" + leb128(len(content)) + content


if __name__ == "__main__":
    source, target, payload = sys.argv[1:4]
    with open(source, "rb") as f:
        data = f.read()
    with open(target, "wb") as f:
        f.write(unique(data, payload))
