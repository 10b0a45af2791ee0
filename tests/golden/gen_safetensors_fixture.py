"""Writes tests/golden/fixtures/io/mixed_dtypes.safetensors with the Python
`safetensors` package, so tests/io can check that ptune reads files made by
the reference implementation exactly. Each reduced-precision tensor has an
F32 copy (`*.expected`) computed by torch; I64 values are fixed in the test.

    /work/venv/bin/python tests/golden/gen_safetensors_fixture.py
"""
import pathlib

import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).parent / "fixtures" / "io" / "mixed_dtypes.safetensors"


def main():
    g = torch.Generator().manual_seed(0)
    f16 = (torch.randn(2, 3, 5, generator=g) * 100).to(torch.float16)
    # Specials: signed zero, inf, an f16/bf16 subnormal, the f16 max.
    f16.view(-1)[:4] = torch.tensor([-0.0, float("inf"), 6e-8, 65504.0], dtype=torch.float16)
    bf16 = (torch.randn(7, generator=g) * 1e3).to(torch.bfloat16)
    bf16[:3] = torch.tensor([-0.0, float("-inf"), 1e-40], dtype=torch.bfloat16)
    tensors = {
        "f32.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25 - 1,
        "f16.weight": f16,
        "f16.expected": f16.float(),
        "bf16.weight": bf16,
        "bf16.expected": bf16.float(),
        "i64.ids": torch.tensor([0, 1, -3, 2**40, 50256], dtype=torch.int64),
        "i32.ids": torch.tensor([[7, -7], [2**31 - 1, -(2**31)]], dtype=torch.int32),
        "u8.mask": torch.tensor([1, 0, 255, 3], dtype=torch.uint8),  # unsupported by ptune
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT), metadata={"format": "pt", "source": "gen_safetensors_fixture.py"})
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
