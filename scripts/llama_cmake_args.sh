#!/usr/bin/env bash
# Print the CMake arguments rag-zh builds llama-cpp-python with on this CPU (install.sh and
# bench_llama_build.sh use them). Only the shared libraries the project loads (no multimodal/llava
# library, examples, tests, tools or server), for the instruction sets /proc/cpuinfo lists:
# AVX2/FMA everywhere, plus AVX-512 (VNNI, VBMI) where present, which reads prompts 1.37x faster
# (benchmarks/llama-build.md). Not GGML_NATIVE: on a VM whose CPU reports AMX, the native build
# crashed (segfault in decode).
# --avx512: print 1 when the build includes AVX-512, else 0. CPUINFO: another cpuinfo file (tests).
set -euo pipefail
cpu_has() { grep -qw "$1" "${CPUINFO:-/proc/cpuinfo}" 2>/dev/null; }
flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
avx512=0
if cpu_has avx512f && cpu_has avx512cd && cpu_has avx512vl && cpu_has avx512dq && cpu_has avx512bw; then
  avx512=1
  flags+=" -DGGML_AVX512=ON"
  if cpu_has avx512_vnni; then flags+=" -DGGML_AVX512_VNNI=ON"; fi
  if cpu_has avx512vbmi; then flags+=" -DGGML_AVX512_VBMI=ON"; fi
fi
if cpu_has avx_vnni; then flags+=" -DGGML_AVX_VNNI=ON"; fi
if [ "${1:-}" = "--avx512" ]; then
  echo "$avx512"
else
  echo "-DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF $flags"
fi
