"""scripts/llama_cmake_args.sh: the llama.cpp build flags follow the CPU flags in /proc/cpuinfo."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "llama_cmake_args.sh"
AVX2_CPU = "flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma bmi2 avx2\n"
AVX512_CPU = AVX2_CPU.rstrip("\n") + " avx512f avx512cd avx512vl avx512dq avx512bw avx512_vnni avx512vbmi avx_vnni amx_tile\n"


def _flags(cpuinfo: str, tmp_path: Path, *args: str) -> str:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={"CPUINFO": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_an_avx2_cpu_gets_the_portable_build_without_avx512(tmp_path: Path) -> None:
    flags = _flags(AVX2_CPU, tmp_path)
    assert "-DGGML_AVX2=ON" in flags and "-DGGML_FMA=ON" in flags
    assert "AVX512" not in flags and "AVX_VNNI" not in flags
    assert _flags(AVX2_CPU, tmp_path, "--avx512") == "0"


@pytest.mark.parametrize("extra", ["", " amx_int8 amx_bf16"])
def test_an_avx512_cpu_gets_its_extensions_but_never_amx_or_native(tmp_path: Path, extra: str) -> None:
    flags = _flags(AVX512_CPU.rstrip("\n") + extra + "\n", tmp_path)
    for flag in ("-DGGML_AVX512=ON", "-DGGML_AVX512_VNNI=ON", "-DGGML_AVX512_VBMI=ON", "-DGGML_AVX_VNNI=ON"):
        assert flag in flags
    assert "-DGGML_NATIVE=OFF" in flags and "AMX" not in flags
    assert _flags(AVX512_CPU, tmp_path, "--avx512") == "1"


def test_only_the_libraries_the_project_loads_are_built(tmp_path: Path) -> None:
    flags = _flags(AVX2_CPU, tmp_path)
    for part in ("LLAMA_BUILD_EXAMPLES", "LLAMA_BUILD_TESTS", "LLAMA_BUILD_TOOLS", "LLAMA_BUILD_SERVER", "LLAVA_BUILD"):
        assert f"-D{part}=OFF" in flags
