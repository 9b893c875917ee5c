"""Which kernel computes a few-row fp32 linear layer fastest on this CPU (the evidence for
t2t.generation.kernels' choice).

    .venv/bin/python benchmarks/linear_kernels.py            # t5-small and gpt2 decoder shapes
    .venv/bin/python benchmarks/linear_kernels.py --quick    # smoke test: two shapes, few repeats

A decoding step multiplies batch x beams rows by every weight matrix once, and the weights of a whole
model do not fit in the CPU's caches, so each product streams its matrix from memory. To measure that,
each shape is run over enough distinct copies of the matrix to exceed 200 MB (a single matrix, reused,
would sit in cache and show rates the decode loop never sees). Printed: GB/s of weights read (higher is
better) for PyTorch's F.linear (MKL sgemm, x W^T), W @ x^T made contiguous (MKL with the weight as the
left operand), and oneDNN's `_linear_pointwise`; the last column is what `few_row_linear` picks.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from t2t.generation.kernels import few_row_linear

SHAPES = [
    (2048, 512),
    (512, 2048),
    (1536, 512),
    (512, 512),
    (32128, 512),
    (3072, 768),
    (768, 3072),
    (2304, 768),
]
ROWS = [1, 2, 4, 6, 8, 16, 32]


def seconds(run, repeats: int) -> float:  # type: ignore[no-untyped-def]
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kernel_runs(x: torch.Tensor, weights: list[torch.Tensor]) -> dict:  # type: ignore[type-arg]
    """Each kernel's product of x with every weight copy, as a callable."""
    onednn = torch.ops.mkldnn._linear_pointwise
    return {
        "F.linear": lambda: [F.linear(x, w) for w in weights],
        "W@x^T": lambda: [torch.mm(w, x.t()).t().contiguous() for w in weights],
        "oneDNN": lambda: [onednn(x, w, None, "none", [], "") for w in weights],
        "ours": lambda: [few_row_linear(x, w) for w in weights],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    shapes, rows_list, budget, repeats = (
        (SHAPES[:2], [1, 8], 8e6, 1) if args.quick else (SHAPES, ROWS, 200e6, 5)
    )
    print(f"torch {torch.__version__}, 2 threads; GB/s of weights streamed, medians of {repeats}")
    print(f"{'weight':>12} {'rows':>4} {'F.linear':>9} {'W@x^T':>9} {'oneDNN':>9}  few_row_linear")
    for out_features, in_features in shapes:
        copies = max(2, int(budget // (out_features * in_features * 4)))
        weights = [torch.randn(out_features, in_features) for _ in range(copies)]
        gigabytes = copies * out_features * in_features * 4 / 1e9
        for rows in rows_list:
            x = torch.randn(rows, in_features)
            kernels = kernel_runs(x, weights)
            rates = {name: gigabytes / seconds(run, repeats) for name, run in kernels.items()}
            print(
                f"{out_features:>6}x{in_features:<5} {rows:>4} {rates['F.linear']:>9.1f} {rates['W@x^T']:>9.1f} "
                f"{rates['oneDNN']:>9.1f}  {rates['ours']:>6.1f}"
            )


if __name__ == "__main__":
    main()
