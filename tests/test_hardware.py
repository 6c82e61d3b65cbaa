"""bfloat16 on a CPU without bf16 units is slower than float32: detected from the CPU flags, warned once."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from contrasent import SemanticIndex, SentenceEncoder, hardware

ZEN3 = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
ZEN5 = "processor\t: 0\nflags\t\t: fpu avx avx2 avx512f avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx2 avx512f amx_bf16 amx_tile\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
GRAVITON2 = "processor\t: 0\nFeatures\t: fp asimd atomics\n"


@pytest.mark.parametrize(("cpuinfo", "machine", "native"), [
    (ZEN3, "x86_64", False), (ZEN5, "x86_64", True), (SAPPHIRE_RAPIDS, "x86_64", True),
    (GRAVITON3, "aarch64", True), (GRAVITON2, "aarch64", False), ("", "x86_64", None), (ZEN3, "aarch64", None),
])
def test_native_bfloat16_is_read_from_the_cpu_flags(cpuinfo, machine, native) -> None:
    assert hardware.cpu_flags_have_native_bfloat16(cpuinfo, machine) is native


@pytest.fixture
def emulated_bf16(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_native_bfloat16", lambda: False)
    monkeypatch.setattr(hardware, "_warned", set())


def test_encode_in_bf16_on_an_emulating_cpu_warns_once(tiny_bert_dir, emulated_bf16) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    with pytest.warns(RuntimeWarning, match=r"encode\(dtype='bfloat16'\) runs on a CPU without native bfloat16"):
        encoder.encode(["a b c"], dtype="bfloat16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder.encode(["a b c"], dtype="bfloat16")  # once per process
        encoder.encode(["a b c"])  # float32: nothing to say
    with pytest.warns(RuntimeWarning, match=r"SemanticIndex\(dtype='bfloat16'\)"):
        SemanticIndex(encoder, dtype="bfloat16")


def test_no_warning_where_bf16_is_native(tiny_bert_dir, monkeypatch) -> None:
    monkeypatch.setattr(hardware, "cpu_has_native_bfloat16", lambda: True)
    monkeypatch.setattr(hardware, "_warned", set())
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embeddings = encoder.encode(["a b c"], dtype="bfloat16")
    assert np.isfinite(embeddings).all()


def test_bf16_training_on_an_emulating_cpu_warns(tiny_bert_dir, tmp_path, emulated_bf16) -> None:
    import datasets

    from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments

    data = datasets.Dataset.from_dict({"anchor": ["a", "b"], "positive": ["c", "d"]})
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", bf16=True,
                                        per_device_train_batch_size=2)
    with pytest.warns(RuntimeWarning, match="training with bf16=True runs on a CPU without native bfloat16"):
        ContrastiveTrainer(model=SentenceEncoder.from_pretrained(tiny_bert_dir), args=args, train_dataset=data)
