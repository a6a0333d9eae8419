"""Prompt reading speed (prefill tokens/s) of the installed llama.cpp build on the bundled GGUF.

The first token of an answer waits for the model to read the whole prompt, so this rate and the
prompt length decide the first-token time. Prompts are three 300-character CMRC 2018 passages (as
the answer prompt shows them), read from an empty cache, with flash attention off and on.
Run it once per llama-cpp-python build (the build's instruction sets are recorded) and compare.
Results: benchmarks/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import REPO_ROOT, command_line, log, machine_info, machine_markdown, markdown_table, median, write_results  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.models.generators import llama_settings  # noqa: E402
from rag.models.llm_weights import ensure_bundled_gguf  # noqa: E402

CORPUS = REPO_ROOT.parent / "shared" / "data" / "cmrc2018_dev.corpus.jsonl"


def prompts(count: int) -> list[str]:
    """``count`` prompts of three consecutive 300-character CMRC passages each."""
    with CORPUS.open(encoding="utf-8") as lines:
        texts = [json.loads(line)["text"][:300] for _, line in zip(range(3 * count), lines, strict=False)]
    return [
        "资料：\n" + "\n\n".join(f"[{n + 1}] {text}" for n, text in enumerate(texts[i : i + 3])) + "\n\n问题：这是什么？"
        for i in range(0, 3 * count, 3)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=5, help="prompts per setting; the first is a warm-up")
    parser.add_argument("--name", default="prefill", help="result file name under benchmarks/")
    args = parser.parse_args()
    from llama_cpp import Llama, llama_print_system_info

    gguf = ensure_bundled_gguf(Settings().data_dir)
    build = llama_print_system_info().decode().strip()
    log(f"llama.cpp build: {build}")
    texts = prompts(args.prompts)
    rows = []
    for flash_attn in (False, True):
        llm = Llama(**{**llama_settings(gguf, args.threads), "flash_attn": flash_attn})
        rates = []
        for text in texts:
            tokens = llm.tokenize(text.encode("utf-8"))
            llm.reset()
            started = time.perf_counter()
            llm.eval(tokens)
            rates.append(len(tokens) / (time.perf_counter() - started))
            log(f"flash_attn={flash_attn}: {len(tokens)} tokens, {rates[-1]:.1f} tokens/s")
        rows.append(
            {"flash_attn": flash_attn, "tokens_per_s": [round(r, 1) for r in rates], "median": round(median(rates[1:]), 1)}
        )
        del llm
    machine = machine_info(["llama-cpp-python"])
    result = {"benchmark": "prefill", "command": command_line(), "machine": machine, "llama_cpp_build": build, "rows": rows}
    table = markdown_table(
        ["flash attention", "prefill tokens/s (median, warm-up excluded)"], [[r["flash_attn"], r["median"]] for r in rows]
    )
    markdown = f"# Prompt reading (prefill) speed\n\nllama.cpp build: `{build}`\n\n{table}\n\n" + machine_markdown(
        machine, command_line()
    )
    json_path, md_path = write_results(args.name, result, markdown)
    log(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
